import { strict as assert } from 'node:assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FerryConfig, loadConfig, redactConfig } from '../../src/config/load';
import type { MigrationRecord } from '../../src/engine/model';
import { ConfigError } from '../../src/errors';
import type { CommandRunner, RunOptions } from '../../src/exec/runner';
import { cutoverPayload } from '../../src/hooks/payload';
import { describeHook, runHook } from '../../src/hooks/run';

const dir = mkdtempSync(join(tmpdir(), 'ferry-hooks-test-'));
function file(content: unknown): string {
  const p = join(dir, `${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(p, JSON.stringify(content));
  return p;
}
const hosts = [
  { name: 'a', address: '198.18.0.11', ssh: { privateKey: '/k' } },
  { name: 'b', address: '198.18.0.12', ssh: { privateKey: '/k' } },
];
const load = (hooks: unknown, top: Record<string, unknown> = {}): FerryConfig => loadConfig({ file: file({ hosts, hooks, ...top }), env: {} });

describe('cut-over hooks: configuration', () => {
  it('defaults to no hooks and rolling back on a failure', () => {
    const c = loadConfig({ file: file({ hosts }), env: {} });
    assert.deepEqual(c.hooks, { cutover: [], onFailure: 'rollback' });
  });

  it('fills each hook’s defaults', () => {
    const c = load({
      cutover: [
        { kind: 'command', host: 'b', argv: ['tee', '/tmp/x'] },
        { kind: 'http', url: 'https://lb.example/cutover' },
      ],
      onFailure: 'continue',
    });
    assert.deepEqual(c.hooks, {
      cutover: [
        { kind: 'command', host: 'b', argv: ['tee', '/tmp/x'], timeoutMs: 30_000 },
        { kind: 'http', url: 'https://lb.example/cutover', method: 'POST', headers: {}, timeoutMs: 30_000 },
      ],
      onFailure: 'continue',
    });
  });

  it('names the path and the value of every bad hook', () => {
    const cases: [unknown, RegExp][] = [
      [{ cutover: [{ kind: 'command', host: 'z', argv: ['x'] }] }, /hooks\.cutover\[0\]\.host: host "z" is not in the inventory \(hosts: a, b\)/],
      [{ cutover: [{ kind: 'command', host: 'a;b', argv: ['x'] }] }, /hooks\.cutover\[0\]\.host: invalid host name "a;b"/],
      [{ cutover: [{ kind: 'command', host: 'a', argv: [] }] }, /hooks\.cutover\[0\]\.argv: must be a non-empty array of strings, got \[\]/],
      [{ cutover: [{ kind: 'command', host: 'a', argv: 'tee /x' }] }, /hooks\.cutover\[0\]\.argv: must be a non-empty array of strings, got "tee \/x"/],
      [{ cutover: [{ kind: 'command', host: 'a', argv: ['x', 'a\0b'] }] }, /hooks\.cutover\[0\]\.argv\[1\]: must not contain NUL/],
      [{ cutover: [{ kind: 'http', url: 'ftp://x/' }] }, /hooks\.cutover\[0\]\.url: must be an http:\/\/ or https:\/\/ URL, got "ftp:\/\/x\/"/],
      [{ cutover: [{ kind: 'http', url: 'http://x/', method: 'GET' }] }, /hooks\.cutover\[0\]\.method: must be POST, PUT or PATCH .*got "GET"/],
      [{ cutover: [{ kind: 'http', url: 'http://x/', headers: { 'a b': 'x' } }] }, /hooks\.cutover\[0\]\.headers\.a b: "a b" is not a header name/],
      [{ cutover: [{ kind: 'http', url: 'http://x/', headers: { x: 'a\r\nEvil: 1' } }] }, /hooks\.cutover\[0\]\.headers\.x: must not contain NUL or line breaks/],
      [{ cutover: [{ kind: 'http', url: 'http://x/', body: '{}' }] }, /hooks\.cutover\[0\]\.body: unknown key \(allowed: kind, url, method, headers, timeoutMs\)/],
      [{ cutover: [{ kind: 'http', url: 'http://x/', timeoutMs: 0 }] }, /hooks\.cutover\[0\]\.timeoutMs: must be an integer from 1 to 3600000, got 0/],
      [{ cutover: [{ kind: 'smoke' }] }, /hooks\.cutover\[0\]\.kind: must be an object with kind "command" or "http"/],
      [{ cutover: ['curl http://x'] }, /hooks\.cutover\[0\]: must be an object with kind "command" or "http", got "curl http:\/\/x"/],
      [{ cutover: { kind: 'http', url: 'http://x/' } }, /hooks\.cutover: must be an array of hooks, got object/],
      [{ onFailure: 'ignore' }, /hooks\.onFailure: must be one of the possible values/],
      [{ cutover: [], extra: 1 }, /hooks\.extra/],
    ];
    for (const [hooks, re] of cases) {
      assert.throws(
        () => load(hooks),
        (e: unknown) => e instanceof ConfigError && re.test(e.message),
        `expected ${re} for ${JSON.stringify(hooks)}`,
      );
    }
  });

  it('refuses hooks whose time limits do not fit in the step’s', () => {
    const hooks = {
      cutover: [
        { kind: 'http', url: 'http://x/', timeoutMs: 50_000 },
        { kind: 'command', host: 'a', argv: ['true'], timeoutMs: 50_000 },
      ],
    };
    assert.throws(() => load(hooks, { timeouts: { step: { cutover: 90_000 } } }), /hooks\.cutover: the hooks' time limits add up to 100000 ms, not less than timeouts\.step\.cutover \(90000 ms\)/);
    assert.equal(load(hooks, { timeouts: { step: { cutover: 100_001 } } }).hooks.cutover.length, 2);
  });

  it('hides header values and URL passwords from the printed config', () => {
    const c = load({ cutover: [{ kind: 'http', url: 'https://u:secret@lb.example/x', headers: { Authorization: 'Bearer s3cr3t' } }] });
    const shown = JSON.stringify(redactConfig(c));
    assert.ok(!shown.includes('s3cr3t') && !shown.includes('secret@'), shown);
    assert.match(shown, /"Authorization":"<hidden>"/);
  });
});

describe('cut-over hooks: payload', () => {
  const config = load({ cutover: [] });
  const rec = {
    id: 'm-abc-0123abcd',
    container: 'web',
    from: 'a',
    to: 'b',
    source: { id: 'f'.repeat(64), image: 'img', imageId: 'i', ports: [{ hostPort: 8080, protocol: 'tcp' }] },
  } as MigrationRecord;

  it('says which container moved where, with addresses, ports and the attempt', () => {
    assert.deepEqual(cutoverPayload(rec, config, 2), {
      migrationId: 'm-abc-0123abcd',
      container: 'web',
      from: 'a',
      to: 'b',
      fromAddress: '198.18.0.11',
      toAddress: '198.18.0.12',
      ports: [{ hostPort: 8080, protocol: 'tcp' }],
      attempt: 2,
    });
  });

  it('has no ports for a container that publishes none, and refuses a host it does not know', () => {
    assert.deepEqual(cutoverPayload({ ...rec, source: undefined }, config, 1).ports, []);
    assert.throws(() => cutoverPayload({ ...rec, to: 'zz' }, config, 1), /host "zz" is not in this worker's inventory/);
  });
});

describe('cut-over hooks: running one', () => {
  const payload = { migrationId: 'm-abc-0123abcd', container: 'web', from: 'a', to: 'b', fromAddress: '198.18.0.11', toAddress: '198.18.0.12', ports: [], attempt: 1 };
  const never = new AbortController().signal;
  let server: Server;
  let url = '';
  const seen: { method?: string; type?: string; auth?: string; body: string }[] = [];
  let status = 200;

  before(async () => {
    server = createServer((req: IncomingMessage, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        seen.push({ method: req.method, type: req.headers['content-type'], auth: req.headers.authorization, body });
        if (req.url === '/slow') return;
        res.writeHead(status, { 'content-type': 'text/plain' });
        res.end(status === 200 ? 'ok' : 'backend pool "web" is locked');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(() => {
    server.closeAllConnections();
    server.close();
  });

  it('POSTs the details as JSON with the configured headers', async () => {
    status = 200;
    const failure = await runHook({ kind: 'http', url: `${url}/cut`, method: 'POST', headers: { Authorization: 'Bearer t' }, timeoutMs: 2000 }, payload, { runnerFor: () => assert.fail('no runner'), signal: never });
    assert.equal(failure, null);
    const last = seen[seen.length - 1];
    assert.deepEqual({ method: last.method, type: last.type, auth: last.auth }, { method: 'POST', type: 'application/json', auth: 'Bearer t' });
    assert.deepEqual(JSON.parse(last.body), payload);
  });

  it('reports an answer other than 2xx with its status and what it said', async () => {
    status = 500;
    const failure = await runHook({ kind: 'http', url: `${url}/cut`, method: 'PUT', headers: {}, timeoutMs: 2000 }, payload, { runnerFor: () => assert.fail('no runner'), signal: never });
    assert.equal(failure, 'HTTP 500 Internal Server Error: backend pool "web" is locked');
  });

  it('reports a hook that does not answer in time, and one that cannot be reached', async () => {
    const slow = await runHook({ kind: 'http', url: `${url}/slow`, method: 'POST', headers: {}, timeoutMs: 200 }, payload, { runnerFor: () => assert.fail('no runner'), signal: never });
    assert.equal(slow, 'no answer within 200 ms');
    const gone = createServer();
    await new Promise<void>((r) => gone.listen(0, '127.0.0.1', r));
    const port = (gone.address() as AddressInfo).port;
    await new Promise((r) => gone.close(r));
    const down = await runHook({ kind: 'http', url: `http://127.0.0.1:${port}/`, method: 'POST', headers: {}, timeoutMs: 2000 }, payload, { runnerFor: () => assert.fail('no runner'), signal: never });
    assert.match(down ?? '', /fetch failed.*ECONNREFUSED/);
  });

  it('throws, instead of reporting, when the step attempt itself is stopped', async () => {
    const stop = new AbortController();
    const running = runHook({ kind: 'http', url: `${url}/slow`, method: 'POST', headers: {}, timeoutMs: 5000 }, payload, { runnerFor: () => assert.fail('no runner'), signal: stop.signal });
    setTimeout(() => stop.abort(new Error('step cutover took longer than its time limit')), 100);
    await assert.rejects(running, /took longer than its time limit/);
  });

  it('runs a command as an argument vector with the details on its stdin', async () => {
    const calls: { argv: readonly string[]; opts?: RunOptions }[] = [];
    const runner = (code: number): CommandRunner => ({
      where: 'host b (198.18.0.12)',
      run: async (argv, opts) => {
        calls.push({ argv, opts });
        return { code, stdout: '', stderr: code ? 'lb: no such backend\n' : '' };
      },
    });
    const hook = { kind: 'command' as const, host: 'b', argv: ['lb-switch', '--to', 'b; rm -rf /'], timeoutMs: 1000 };
    assert.equal(await runHook(hook, payload, { runnerFor: () => runner(0), signal: never }), null);
    assert.deepEqual(calls[0].argv, ['lb-switch', '--to', 'b; rm -rf /']);
    const stdin = calls[0].opts?.stdin;
    assert.equal(typeof stdin, 'string');
    assert.deepEqual(JSON.parse(stdin as string), payload);
    assert.equal(calls[0].opts?.timeoutMs, 1000);
    assert.equal(await runHook(hook, payload, { runnerFor: () => runner(3), signal: never }), 'exited 3 on host b (198.18.0.12): lb: no such backend');
  });

  it('describes a hook without its URL’s credentials or query', () => {
    assert.equal(describeHook({ kind: 'http', url: 'https://u:p@lb.example/x?token=s', method: 'POST', headers: {}, timeoutMs: 1 }), 'http POST https://lb.example/x');
    assert.equal(describeHook({ kind: 'command', host: 'c', argv: ['tee', '/tmp/a b'], timeoutMs: 1 }), "command on c: tee '/tmp/a b'");
  });
});
