import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { CONTROL_QUEUE } from '../../src/fleet/schedules';
import { hostQueueName, urgentQueueName } from '../../src/queues';
import { CliResult, REPO, uid } from '../support/bed';
import { startPlainRedis, TlsRedis } from '../support/tlsRedis';

// bin/ferry.js runs dist/; a test compiled elsewhere runs the CLI it was compiled with.
const MAIN = join(__dirname, '..', '..', 'src', 'cli', 'main.js');
const FERRY =
  MAIN === join(REPO, 'dist', 'src', 'cli', 'main.js') ? [join(REPO, 'bin', 'ferry.js')] : ['-e', `require(${JSON.stringify(MAIN)}).main([process.argv[0], 'ferry', ...process.argv.slice(1)]).then((c) => { process.exitCode = c; })`];

/**
 * `node bin/ferry.js ...` as an operator runs it, outside the bed; `ready` ends a run that
 * gets that far (SIGTERM once stdout shows it and `settled`, if given, has resolved).
 */
function ferry(args: string[], opts: { ready?: string; settled?: () => Promise<void>; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    // Nothing from the test's environment (FERRY_REDIS_URL, ...) may point this elsewhere.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FERRY_')));
    const child = spawn(process.execPath, [...FERRY, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    let stopping = false;
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      // Not at the line itself: a worker stopped in the very moment it got ready may hang or
      // crash (a shutdown race of its own, not this test's subject), and its control worker
      // may still be connecting when it says it is ready.
      if (opts.ready && stdout.includes(opts.ready) && !stopping) {
        stopping = true;
        void (opts.settled ?? (() => Promise.resolve()))()
          .catch(() => undefined)
          .then(() => child.kill('SIGTERM'));
      }
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 20_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function explain(r: CliResult): string {
  return `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
}

/**
 * A worker started with a wrong Redis password says so in one line and exits, as `ferry
 * config check` does: no ioredis stack trace before it. Against a redis-server of the test's
 * own on loopback, not the bed's.
 */
describe('worker with a wrong Redis password: one clear line, no stack trace', function () {
  this.timeout(60_000);
  let dir = '';
  let server: TlsRedis | undefined;
  const password = randomBytes(16).toString('hex');
  const wrongPassword = randomBytes(16).toString('hex');

  function writeConfig(name: string, pw: string, prefix = `wauth-${uid()}`): string {
    const config = {
      redis: { url: `redis://127.0.0.1:${server?.port ?? 0}`, password: pw, prefix },
      // The worker never reaches SSH here: start-up stops at Redis, or we stop it once ready.
      hosts: [{ name: 'a', address: '127.0.0.1', ssh: { privateKey: join(dir, 'no-such-key') } }],
      log: { level: 'info' },
    };
    const file = join(dir, `${name}.json`);
    writeFileSync(file, JSON.stringify(config, null, 2), { mode: 0o600 });
    return file;
  }

  function assertNoSecretNoStack(r: CliResult): void {
    for (const secret of [password, wrongPassword]) {
      assert.ok(!r.stdout.includes(secret) && !r.stderr.includes(secret), `a Redis password was printed:\n${explain(r)}`);
    }
    assert.ok(!/^\s+at /m.test(r.stderr) && !/^\s+at /m.test(r.stdout), `a stack trace was printed:\n${explain(r)}`);
    assert.doesNotMatch(r.stderr, /Unhandled error event/, explain(r));
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-worker-auth-'));
    server = await startPlainRedis(dir, password);
  });

  after(async () => {
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /**
   * Until a worker consumes each of the queues (its step queue, its urgent queue, the control
   * queue), as BullMQ sees it in Redis; false if that is not so within `withinMs`.
   */
  async function consumed(prefix: string, queues: string[], withinMs: number): Promise<boolean> {
    const qs = queues.map((name) => new Queue(name, { connection: { host: '127.0.0.1', port: server?.port ?? 0, password }, prefix }));
    try {
      const until = Date.now() + withinMs;
      for (;;) {
        const counts = await Promise.all(qs.map((q) => q.getWorkersCount()));
        if (counts.every((c) => c >= 1)) return true;
        if (Date.now() > until) return false;
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      await Promise.all(qs.map((q) => q.close()));
    }
  }

  it('with the right password the same worker gets ready (so only the password differs below)', async () => {
    const prefix = `wauth-${uid()}`;
    let consuming = false;
    const settled = async () => {
      consuming = await consumed(prefix, [hostQueueName('a'), urgentQueueName('a'), CONTROL_QUEUE], 15_000);
    };
    const r = await ferry(['worker', '--host', 'a', '--config', writeConfig('good', password, prefix)], { ready: 'worker ready', settled, timeoutMs: 30_000 });
    assert.equal(r.code, 0, explain(r));
    assert.match(r.stdout, /worker ready/);
    assert.ok(consuming, `the worker consumed its queues and the control queue before it was stopped:\n${explain(r)}`);
    assertNoSecretNoStack(r);
  });

  it('with a wrong one: exits 2 like config check, names the refused password, no stack trace', async () => {
    const file = writeConfig('wrong-password', wrongPassword);
    const [worker, check] = await Promise.all([ferry(['worker', '--host', 'a', '--config', file]), ferry(['config', 'check', '--config', file])]);
    // A refused password is bad config: exit 2, as `ferry config check` says it.
    assert.equal(check.code, 2, explain(check));
    assert.equal(worker.code, 2, explain(worker));
    assertNoSecretNoStack(worker);
    const line = /^ferry: error: Redis refused the password \((WRONGPASS|NOAUTH).*$/m;
    assert.match(worker.stderr, line, explain(worker));
    // The one line is all it prints to stderr, and it is config check's line, word for word.
    assert.equal(worker.stderr.trim(), line.exec(check.stderr)?.[0], `worker and config check differ:\n${explain(worker)}\n---\n${explain(check)}`);
  });
});
