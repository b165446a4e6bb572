import { createHash } from 'node:crypto';
import { connect, Socket } from 'node:net';
import { coerceError } from '../../src/errors';
import { sleep } from './services';

/** root's password over TCP in the MariaDB test image, set by scripts/images.sh (inside, `mariadb` logs in as root by socket). */
export const ROOT_PASSWORD = 'ferry-test';

// Enough of MariaDB's client protocol for the test (no MySQL client library is installed):
// the handshake with mysql_native_password, and COM_QUERY answered by OK, ERR or text rows.
const CLIENT_LONG_PASSWORD = 0x1;
const CLIENT_PROTOCOL_41 = 0x200;
const CLIENT_TRANSACTIONS = 0x2000;
const CLIENT_SECURE_CONNECTION = 0x8000;
const CLIENT_PLUGIN_AUTH = 0x80000;

export class SqlError extends Error {}

function sha1(...parts: Buffer[]): Buffer {
  const h = createHash('sha1');
  for (const p of parts) h.update(p);
  return h.digest();
}

/** mysql_native_password: SHA1(pw) XOR SHA1(scramble + SHA1(SHA1(pw))). */
function nativePassword(password: string, scramble: Buffer): Buffer {
  const p1 = sha1(Buffer.from(password));
  const p2 = sha1(scramble, sha1(p1));
  return Buffer.from(p1.map((b, i) => b ^ p2[i]));
}

/** A length-encoded integer at `pos`: [value, next position]; null for 0xfb (SQL NULL). */
function lenenc(buf: Buffer, pos: number): [number | null, number] {
  const first = buf[pos];
  if (first < 0xfb) return [first, pos + 1];
  if (first === 0xfb) return [null, pos + 1];
  if (first === 0xfc) return [buf.readUInt16LE(pos + 1), pos + 3];
  if (first === 0xfd) return [buf.readUIntLE(pos + 1, 3), pos + 4];
  return [Number(buf.readBigUInt64LE(pos + 1)), pos + 9];
}

function sqlError(p: Buffer): SqlError {
  // 0xff, code (2), '#' and SQLSTATE (5), message.
  return new SqlError(`MariaDB error ${p.readUInt16LE(1)}: ${p.toString('utf8', p[3] === 0x23 ? 9 : 3)}`);
}

/** One connection as root; one query at a time. Any error or timeout kills it. */
export class SqlConnection {
  private buf: Buffer = Buffer.alloc(0);
  private waiter: { resolve: (p: Buffer) => void; reject: (e: Error) => void } | null = null;
  private dead: Error | null = null;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.deliver();
    });
    socket.on('error', (e) => this.fail(e));
    socket.on('close', () => this.fail(new Error('connection closed')));
  }

  static async open(host: string, port: number, timeoutMs = 2000): Promise<SqlConnection> {
    const socket = connect({ host, port });
    socket.setNoDelay(true);
    const conn = new SqlConnection(socket);
    const timer = setTimeout(() => conn.fail(new Error(`connect ${host}:${port}: no handshake within ${timeoutMs} ms`)), timeoutMs);
    try {
      const hello = await conn.packet();
      if (hello[0] === 0xff) throw sqlError(hello);
      let pos = hello.indexOf(0, 1) + 1 + 4; // protocol version, server version, connection id
      const part1 = hello.subarray(pos, pos + 8);
      pos += 8 + 1 + 2 + 1 + 2 + 2 + 1 + 10; // part 1, filler, capabilities, charset, status, capabilities, length, reserved
      const part2 = hello.subarray(pos, pos + 12);
      const user = Buffer.from('root\0');
      const auth = nativePassword(ROOT_PASSWORD, Buffer.concat([part1, part2]));
      const head = Buffer.alloc(32);
      head.writeUInt32LE(CLIENT_LONG_PASSWORD | CLIENT_PROTOCOL_41 | CLIENT_TRANSACTIONS | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH, 0);
      head.writeUInt32LE(1 << 24, 4);
      head[8] = 45; // utf8mb4_general_ci
      conn.send(1, Buffer.concat([head, user, Buffer.from([auth.length]), auth, Buffer.from('mysql_native_password\0')]));
      let reply = await conn.packet();
      if (reply[0] === 0xfe) {
        // Auth switch: the server asks again with a new scramble.
        const plugin = reply.toString('utf8', 1, reply.indexOf(0, 1));
        if (plugin !== 'mysql_native_password') throw new Error(`server wants auth plugin ${plugin}`);
        const scramble = reply.subarray(reply.indexOf(0, 1) + 1, reply.indexOf(0, 1) + 21);
        conn.send(3, nativePassword(ROOT_PASSWORD, scramble));
        reply = await conn.packet();
      }
      if (reply[0] === 0xff) throw sqlError(reply);
      if (reply[0] !== 0x00) throw new Error(`unexpected handshake reply 0x${reply[0].toString(16)}`);
      return conn;
    } catch (e: unknown) {
      conn.close();
      throw coerceError(e);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Runs one statement: rows as strings (null for NULL), [] for a statement without a result set. */
  async query(sql: string, timeoutMs = 2000): Promise<(string | null)[][]> {
    const timer = setTimeout(() => this.fail(new Error(`no reply within ${timeoutMs} ms`)), timeoutMs);
    try {
      this.send(0, Buffer.concat([Buffer.from([0x03]), Buffer.from(sql)]));
      const first = await this.packet();
      if (first[0] === 0xff) throw sqlError(first);
      if (first[0] === 0x00) return [];
      const [columns] = lenenc(first, 0);
      for (let i = 0; i < (columns ?? 0); i++) await this.packet();
      await this.packet(); // EOF after the column definitions
      const rows: (string | null)[][] = [];
      for (;;) {
        const p = await this.packet();
        if (p[0] === 0xfe && p.length < 9) return rows;
        if (p[0] === 0xff) throw sqlError(p);
        const row: (string | null)[] = [];
        let pos = 0;
        while (pos < p.length) {
          const [len, next] = lenenc(p, pos);
          row.push(len === null ? null : p.toString('utf8', next, next + len));
          pos = len === null ? next : next + len;
        }
        rows.push(row);
      }
    } finally {
      clearTimeout(timer);
    }
  }

  close(): void {
    this.fail(new Error('closed by the client'));
  }

  private send(seq: number, payload: Buffer): void {
    const head = Buffer.alloc(4);
    head.writeUIntLE(payload.length, 0, 3);
    head[3] = seq;
    this.socket.write(Buffer.concat([head, payload]));
  }

  private packet(): Promise<Buffer> {
    if (this.dead) return Promise.reject(this.dead);
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.deliver();
    });
  }

  private deliver(): void {
    if (!this.waiter || this.buf.length < 4) return;
    const len = this.buf.readUIntLE(0, 3);
    if (this.buf.length < 4 + len) return;
    const p = this.buf.subarray(4, 4 + len);
    this.buf = this.buf.subarray(4 + len);
    const w = this.waiter;
    this.waiter = null;
    w.resolve(p);
  }

  private fail(e: Error): void {
    if (this.dead) return;
    this.dead = e;
    this.socket.destroy();
    this.waiter?.reject(e);
    this.waiter = null;
  }
}

export async function openWhenReady(address: string, port: number, withinMs: number): Promise<SqlConnection> {
  const until = Date.now() + withinMs;
  for (;;) {
    try {
      const conn = await SqlConnection.open(address, port);
      await conn.query('SELECT 1');
      return conn;
    } catch (e: unknown) {
      if (Date.now() > until) throw e;
    }
    await sleep(250);
  }
}

export async function answers(address: string, port: number): Promise<boolean> {
  try {
    const conn = await SqlConnection.open(address, port, 1000);
    const ok = await conn.query('SELECT 1').then(
      () => true,
      () => false,
    );
    conn.close();
    return ok;
  } catch {
    return false;
  }
}

export interface SqlAck {
  id: number;
  at: number;
  host: string;
}

/**
 * A client that inserts row after row, each its own autocommitted INSERT of a fresh id, and
 * records which the server acknowledged (OK means committed: InnoDB flushed its log). A write
 * whose reply was lost is never retried under the same id, so a row applied twice would show
 * as two rows with one id. It stays on the address that answers and moves on at any error.
 */
export class SqlWriter {
  readonly acks: SqlAck[] = [];
  readonly unknown: number[] = [];
  readonly errors: string[] = [];
  connects = 0;
  private nextId = 1;
  private current = 0;
  private stopped = false;
  private loop: Promise<void> | null = null;
  private conn: SqlConnection | null = null;

  constructor(private readonly opts: { addresses: string[]; port: number; replyTimeoutMs: number }) {}

  start(): void {
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    this.conn?.close();
  }

  get attempted(): number {
    return this.nextId - 1;
  }

  longestGap(): number {
    let best = 0;
    for (let i = 1; i < this.acks.length; i++) best = Math.max(best, this.acks[i].at - this.acks[i - 1].at);
    return best;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const host = this.opts.addresses[this.current];
      if (!this.conn) {
        try {
          this.conn = await SqlConnection.open(host, this.opts.port, 1000);
          this.connects++;
        } catch (e: unknown) {
          this.failed(coerceError(e));
          await sleep(50);
          continue;
        }
      }
      const id = this.nextId++;
      try {
        await this.conn.query(`INSERT INTO ferry.w (id) VALUES (${id})`, this.opts.replyTimeoutMs);
        this.acks.push({ id, at: Date.now(), host });
      } catch (e: unknown) {
        this.unknown.push(id);
        this.failed(coerceError(e));
      }
    }
  }

  private failed(e: Error): void {
    this.conn?.close();
    this.conn = null;
    this.current = (this.current + 1) % this.opts.addresses.length;
    if (!this.errors.includes(e.message)) this.errors.push(e.message);
  }
}
