import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

// The root of the compiled tree this test runs from (dist/, or a private outDir): its
// nearest package.json is the project's, so `require('ferry-migrate')` there is the package
// importing itself by name, through package.json `exports`, as a user's code would.
const ROOT = resolve(__dirname, '..', '..');

// In a fresh process, so that what importing does is all that happens there. Every async
// resource the import creates (socket, timer, file request, even unref'd ones) is recorded,
// and whatever is still alive once the event loop has drained was left open by the import.
// (A dependency of bullmq reads a file asynchronously while it loads: done by then.)
const PROBE = `
const { createHook } = require('node:async_hooks');
const write = process.stdout.write.bind(process.stdout);
const printed = [];
for (const s of [process.stdout, process.stderr]) s.write = (chunk) => (printed.push(String(chunk)), true);
const listeners = () => ['exit', 'beforeExit', 'SIGINT', 'SIGTERM', 'uncaughtException', 'unhandledRejection'].map((e) => process.listenerCount(e));
const live = new Map();
const created = new Set();
let importing = true;
createHook({
  // DNSCHANNEL: node's default resolver, made when anything requires node:dns; it opens nothing.
  init(id, type) {
    if (importing) created.add(type);
    if (importing && type !== 'PROMISE' && type !== 'DNSCHANNEL') live.set(id, type);
  },
  destroy(id) { live.delete(id); },
}).enable();
const listenersBefore = listeners();
const lib = require('ferry-migrate');
importing = false;
const listenersAfter = listeners();
const exports = Object.fromEntries(Object.entries(lib).map(([k, v]) => [k, typeof v]));
process.once('beforeExit', () => {
  write(JSON.stringify({ resolved: require.resolve('ferry-migrate'), exports, listenersBefore, listenersAfter, left: [...live.values()], created: [...created], printed: printed.join('') }));
});
`;

interface Probe {
  resolved: string;
  exports: Record<string, string>;
  listenersBefore: number[];
  listenersAfter: number[];
  left: string[];
  created: string[];
  printed: string;
}

describe('the package, imported by its name', function () {
  this.timeout(30_000);
  let probe: Probe;

  before(() => {
    const r = spawnSync(process.execPath, ['-e', PROBE], { cwd: ROOT, encoding: 'utf8', timeout: 20_000 });
    // The child must end by itself: an import that opened a connection or a timer keeps it alive.
    assert.equal(r.status, 0, `import failed or hung (signal ${r.signal}):\n${r.stderr}`);
    probe = JSON.parse(r.stdout) as Probe;
  });

  it('resolves to the compiled src/index.js, with its type declarations beside it', () => {
    assert.match(probe.resolved, /[/\\]src[/\\]index\.js$/);
    assert.ok(existsSync(join(dirname(probe.resolved), 'index.d.ts')), 'index.d.ts (package.json "types")');
  });

  it('exports the client, config loading, the errors and the host worker', () => {
    const expected: Record<string, string> = {
      FerryClient: 'function',
      HostWorker: 'function',
      loadConfig: 'function',
      redactConfig: 'function',
      findHost: 'function',
      parsePlan: 'function',
      readPlan: 'function',
      parseProbe: 'function',
      FerryError: 'function',
      ConfigError: 'function',
      ValidationError: 'function',
      CommandError: 'function',
      SshError: 'function',
      StepError: 'function',
      ArchiveCryptoError: 'function',
    };
    for (const [name, type] of Object.entries(expected)) assert.equal(probe.exports[name], type, name);
  });

  it('does no work on import: nothing left open, no listener, no output', () => {
    assert.deepEqual(probe.left, []);
    const network = probe.created.filter((t) => /TCP|UDP|TLS|PIPE|GETADDRINFO|QUERY|HTTP/.test(t));
    assert.deepEqual(network, [], 'not even a connection attempt');
    assert.deepEqual(probe.listenersAfter, probe.listenersBefore);
    assert.equal(probe.printed, '');
  });
});
