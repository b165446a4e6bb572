import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { connect, Socket } from 'node:net';
import { join } from 'node:path';
import { coerceError } from '../../src/errors';
import { mustPodman, REPO } from './bed';

/** Built from Debian packages by scripts/images.sh and loaded on every bed host with one image ID. */
export const REDIS_IMAGE = 'localhost/ferry-redis:latest';

/** Runs scripts/images.sh (a no-op when every host has the images; about a minute when cold). */
export function ensureServiceImages(): void {
  const r = spawnSync('bash', [join(REPO, 'scripts', 'images.sh')], { encoding: 'utf8', timeout: 900_000 });
  if (r.status !== 0) throw new Error(`scripts/images.sh exited ${r.status}: ${r.stderr}`);
}

/** A redis-server container publishing `port`, with extra podman options (mounts, labels); `args` replace the image's redis-server options. */
export function runRedis(host: string, name: string, port: number, opts: { podman?: string[]; args?: string[] } = {}): void {
  const cmd = opts.args ? ['redis-server', '--protected-mode', 'no', ...opts.args] : [];
  mustPodman(host, 'run', '-d', '--name', name, '-p', `${port}:6379`, ...(opts.podman ?? []), REDIS_IMAGE, ...cmd);
}

export type RespValue = string | number | null | RespValue[] | RespError;

export class RespError extends Error {}

class NeedMore extends Error {}

/** Parses one RESP2 value at `pos`; throws NeedMore when the buffer ends first. */
function parseResp(buf: Buffer, pos: number): [RespValue, number] {
  const eol = buf.indexOf('\r\n', pos);
  if (eol < 0) throw new NeedMore();
  const type = String.fromCharCode(buf[pos]);
  const line = buf.toString('utf8', pos + 1, eol);
  const next = eol + 2;
  switch (type) {
    case '+':
      return [line, next];
    case '-':
      return [new RespError(line), next];
    case ':':
      return [Number(line), next];
    case '$': {
      const len = Number(line);
      if (len < 0) return [null, next];
      if (buf.length < next + len + 2) throw new NeedMore();
      return [buf.toString('utf8', next, next + len), next + len + 2];
    }
    case '*': {
      const n = Number(line);
      if (n < 0) return [null, next];
      const items: RespValue[] = [];
      let p = next;
      for (let i = 0; i < n; i++) {
        const [v, after] = parseResp(buf, p);
        items.push(v);
        p = after;
      }
      return [items, p];
    }
    default:
      throw new Error(`not RESP: ${JSON.stringify(buf.toString('utf8', pos, Math.min(buf.length, pos + 40)))}`);
  }
}

function encode(args: readonly (string | number)[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(String(a))}\r\n${a}\r\n`).join('')}`;
}

/**
 * One raw RESP connection: every reply is matched to its command in order, so the caller
 * knows exactly which writes Redis acknowledged. Any error or timeout kills the connection.
 */
export class RespConnection {
  private buf: Buffer = Buffer.alloc(0);
  private readonly waiting: { resolve: (v: RespValue) => void; reject: (e: Error) => void }[] = [];
  private dead: Error | null = null;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', (e) => this.fail(e));
    socket.on('close', () => this.fail(new Error('connection closed')));
  }

  static open(host: string, port: number, timeoutMs = 1000): Promise<RespConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connect ${host}:${port} timed out`));
      }, timeoutMs);
      socket.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.setNoDelay(true);
        resolve(new RespConnection(socket));
      });
    });
  }

  /** Sends the commands in one write and resolves with their replies (a RespError is a value). */
  pipeline(cmds: readonly (readonly (string | number)[])[], timeoutMs = 1000): Promise<RespValue[]> {
    if (this.dead) return Promise.reject(this.dead);
    const replies = cmds.map(
      () =>
        new Promise<RespValue>((resolve, reject) => {
          this.waiting.push({ resolve, reject });
        }),
    );
    this.socket.write(cmds.map(encode).join(''));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const e = new Error(`no reply within ${timeoutMs} ms`);
        this.fail(e);
        reject(e);
      }, timeoutMs);
    });
    return Promise.race([Promise.all(replies), timeout]).finally(() => clearTimeout(timer));
  }

  async command(args: readonly (string | number)[], timeoutMs = 1000): Promise<RespValue> {
    const [reply] = await this.pipeline([args], timeoutMs);
    if (reply instanceof RespError) throw reply;
    return reply ?? null;
  }

  close(): void {
    this.fail(new Error('closed by the client'));
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length > 0 ? Buffer.concat([this.buf, d]) : d;
    let pos = 0;
    try {
      while (pos < this.buf.length && this.waiting.length > 0) {
        const [v, next] = parseResp(this.buf, pos);
        pos = next;
        this.waiting.shift()!.resolve(v);
      }
    } catch (e: unknown) {
      if (!(e instanceof NeedMore)) this.fail(coerceError(e));
    }
    this.buf = this.buf.subarray(pos);
  }

  private fail(e: Error): void {
    if (this.dead) return;
    this.dead = e;
    this.socket.destroy();
    for (const w of this.waiting.splice(0)) w.reject(e);
  }
}

/** The value of data key n: deterministic, so the destination's copy can be checked byte for byte. */
export function dataValue(n: number, size: number): string {
  const seed = createHash('sha256').update(`ferry-${n}`).digest('hex');
  return seed.repeat(Math.ceil(size / seed.length)).slice(0, size);
}

/** Loads `keys` keys d:<n> of `size` bytes, pipelined in batches. */
export async function loadData(conn: RespConnection, keys: number, size: number): Promise<void> {
  const batch = 500;
  for (let start = 0; start < keys; start += batch) {
    const cmds: string[][] = [];
    for (let n = start; n < Math.min(keys, start + batch); n++) cmds.push(['SET', `d:${n}`, dataValue(n, size)]);
    const replies = await conn.pipeline(cmds, 30_000);
    const bad = replies.find((r) => r !== 'OK');
    if (bad !== undefined) throw new Error(`SET failed: ${String(bad)}`);
  }
}

/** How many data keys differ from what loadData wrote (missing or other content). */
export async function countDataMismatches(conn: RespConnection, keys: number, size: number): Promise<number> {
  const batch = 500;
  let bad = 0;
  for (let start = 0; start < keys; start += batch) {
    const ns: number[] = [];
    for (let n = start; n < Math.min(keys, start + batch); n++) ns.push(n);
    const [values] = await conn.pipeline([['MGET', ...ns.map((n) => `d:${n}`)]], 30_000);
    if (!Array.isArray(values)) throw new Error(`MGET answered ${String(values)}`);
    ns.forEach((n, i) => {
      if (values[i] !== dataValue(n, size)) bad++;
    });
  }
  return bad;
}

export interface Ack {
  id: number;
  at: number;
  /** The address that acknowledged it. */
  host: string;
  /** Redis's reply to INCR total inside the same transaction: the write's place in the order Redis applied them. */
  total: number;
}

export interface WriterOptions {
  /** Where the service may be: the writer stays on the one that answers and moves to the next on any error. */
  addresses: string[];
  port: number;
  /** No reply within this long counts as an error: the connection is dropped and a new one opened. */
  replyTimeoutMs: number;
  /** A new connection for every write (as many short-lived clients do), instead of one kept open. */
  connectionPerWrite: boolean;
  pauseMs: number;
}

/**
 * A client that writes continuously and records what Redis acknowledged. Write `id` is one
 * transaction: INCR w:<id> and INCR total. Ids are never reused (a write whose reply was lost
 * is not retried), so a write applied twice shows as w:<id> = 2, and `total` must equal the
 * number of w:* keys.
 */
export class Writer {
  readonly acks: Ack[] = [];
  /** Writes sent whose reply never came (applied or not: only the server can tell). */
  readonly unknown: number[] = [];
  /** Distinct error messages, in the order first seen. */
  readonly errors: string[] = [];
  connects = 0;
  private nextId = 1;
  private current = 0;
  private stopped = false;
  private loop: Promise<void> | null = null;
  private conn: RespConnection | null = null;

  constructor(private readonly opts: WriterOptions) {}

  start(): void {
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    this.conn?.close();
  }

  /** How many writes this writer sent: ids 1..attempted. */
  get attempted(): number {
    return this.nextId - 1;
  }

  /** The longest time between two acknowledged writes (the downtime as this client saw it), and when it began. */
  longestGap(): { ms: number; from: number } {
    let best = { ms: 0, from: 0 };
    for (let i = 1; i < this.acks.length; i++) {
      const ms = this.acks[i].at - this.acks[i - 1].at;
      if (ms > best.ms) best = { ms, from: this.acks[i - 1].at };
    }
    return best;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const host = this.opts.addresses[this.current];
      if (!this.conn) {
        try {
          this.conn = await RespConnection.open(host, this.opts.port, 1000);
          this.connects++;
        } catch (e: unknown) {
          this.failed(coerceError(e));
          await sleep(50);
          continue;
        }
      }
      const id = this.nextId++;
      try {
        const replies = await this.conn.pipeline([['MULTI'], ['INCR', `w:${id}`], ['INCR', 'total'], ['EXEC']], this.opts.replyTimeoutMs);
        const exec = replies[3];
        if (!Array.isArray(exec) || exec[0] !== 1 || typeof exec[1] !== 'number') throw new Error(`write ${id}: unexpected reply ${JSON.stringify(replies)}`);
        this.acks.push({ id, at: Date.now(), host, total: exec[1] });
      } catch (e: unknown) {
        this.unknown.push(id);
        this.failed(coerceError(e));
        continue;
      }
      if (this.opts.connectionPerWrite) {
        // QUIT first, so the server closes its end and holds no half-closed socket.
        await this.conn.command(['QUIT']).catch(() => undefined);
        this.conn.close();
        this.conn = null;
      }
      if (this.opts.pauseMs > 0) await sleep(this.opts.pauseMs);
    }
  }

  private failed(e: Error): void {
    this.conn?.close();
    this.conn = null;
    this.current = (this.current + 1) % this.opts.addresses.length;
    // Only the distinct messages: a reconnect loop repeats the same one many times.
    if (!this.errors.includes(e.message)) this.errors.push(e.message);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
