import { strict as assert } from 'node:assert';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Job, Queue } from 'bullmq';
import fc from 'fast-check';
import { main } from '../../src/cli/main';
import { loadConfig } from '../../src/config/load';
import { STEP_NAMES } from '../../src/engine/steps';
import { createRedis } from '../../src/redis';
import { keys } from '../../src/store/keys';
import { newMigrationId } from '../../src/store/migrationStore';
import { containerState, ferry, mustPodman, onHost, OUTPUT, startWorkers, stopWorkers, uid, WorkerProc } from '../support/bed';
import { cleanHosts, clientFor, counterAt, faultConfig, filesIn, HOSTS, runBigCounter, Watch } from '../support/faults';

/**
 * Hostile input, generated (fast-check, fixed seed: FERRY_FUZZ_SEED to change it) across CLI
 * arguments, config files, plan files and raw job payloads put straight on a host queue.
 * Each must end with a clear error; afterwards the worker still serves real work and
 * nothing changed on any host. Shell metacharacter cases try to create MARKER: it must
 * never appear, in the root namespace or in any bed host.
 */
const SEED = Number(process.env.FERRY_FUZZ_SEED ?? 20261125);
const MARKER = `/tmp/ferry-pwned-${uid()}`;
const NAME_OK = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

const INJECTIONS = [
  `x; touch ${MARKER}`,
  `$(touch ${MARKER})`,
  `\`touch ${MARKER}\``,
  `x && touch ${MARKER}`,
  `x || touch ${MARKER}`,
  `x | touch ${MARKER}`,
  `x\ntouch ${MARKER}`,
  `'; touch ${MARKER}; '`,
  `"; touch ${MARKER}; "`,
  `x > ${MARKER}`,
  `x$IFS;touch$IFS${MARKER}`,
  `\${x:-$(touch ${MARKER})}`,
  `-o ProxyCommand=touch ${MARKER}`,
  `x & touch ${MARKER} &`,
];
const TRAVERSAL = ['..', '../x', '../../etc/passwd', '/etc/passwd', 'a/../../b', './x', 'x/', '%2e%2e%2f', '..\\..\\x', 'x\0y'];

const sample = <T>(arb: fc.Arbitrary<T>, n: number, salt: number): T[] => fc.sample(arb, { numRuns: n, seed: SEED + salt });

/** Strings podman or Ferry must refuse as a container or host name. */
function badNames(n: number, salt: number): string[] {
  const meta = fc.constantFrom(...';&|$`\'"<>(){}[]*?!#~\\ \t\n/:=,%@^'.split(''));
  const arb = fc.oneof(
    fc.tuple(fc.string({ maxLength: 12 }), meta, fc.string({ maxLength: 12 })).map(([a, m, b]) => `${a}${m}${b}`),
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 20 }),
    fc.integer({ min: 129, max: 200_000 }).map((k) => 'a'.repeat(k)),
    fc.constantFrom('', '.', '-', '_x', '.hidden', '-rf', 'é', 'ｗｅｂ', 'web\u200b', 'Ωmega', '🐳', 'x\u202Eexe'),
  );
  return sample(arb, n * 3, salt)
    .filter((s) => s.length > 128 || !NAME_OK.test(s))
    .slice(0, n);
}

interface Outcome {
  code: number;
  out: string;
}

/** The real CLI code (src/cli/main.ts), in this process: no spawn per case, so hundreds stay quick. */
async function cli(args: string[]): Promise<Outcome> {
  let out = '';
  const io = { out: (s: string) => (out += `${s}\n`), err: (s: string) => (out += `${s}\n`) };
  const code = await main(['node', 'ferry', ...args], io);
  return { code, out };
}

/** A clear message: short, one of Ferry's own, no stack trace. */
function assertClear(o: Outcome, expect: RegExp, what: string): void {
  assert.equal(o.code, 2, `${what}: exit ${o.code}, expected 2 (bad input):\n${o.out.slice(0, 600)}`);
  assert.match(o.out, expect, `${what}: unclear message:\n${o.out.slice(0, 600)}`);
  assert.ok(!/\n\s+at .*\(.*:\d+:\d+\)/.test(o.out), `${what}: stack trace in the output`);
  assert.ok(o.out.length < 4000, `${what}: ${o.out.length} characters of output`);
}

function markerAppeared(): string | null {
  if (existsSync(MARKER)) return 'root namespace';
  for (const h of HOSTS) if (onHost(h, ['test', '-e', MARKER]).code === 0) return `host ${h}`;
  return null;
}

describe('fuzz: 200+ generated bad inputs each end with a clear error and change nothing', function () {
  this.timeout(300_000);
  const cfg = faultConfig({ top: { retry: { backoffMs: 200 } } });
  const sentinel = `fz-${uid()}`;
  let sentinelId = '';
  let workers: WorkerProc[] = [];
  let total = 0;

  before(async () => {
    workers = await startWorkers(['a', 'c'], cfg);
    runBigCounter('a', sentinel, 0);
    await counterAt('a', sentinel, 2);
    sentinelId = mustPodman('a', 'container', 'inspect', '--format', '{{.Id}}', sentinel);
  });

  afterEach(function () {
    const where = markerAppeared();
    assert.equal(where, null, `${MARKER} appeared in ${where}: input reached a shell`);
    // Nothing changed on any host: the sentinel still runs on a (same container), nowhere
    // else, and no archive was written in this test's work dir.
    assert.equal(mustPodman('a', 'container', 'inspect', '--format', '{{.Id}} {{.State.Status}}', sentinel), `${sentinelId} running`);
    for (const h of ['b', 'c']) assert.equal(containerState(h, sentinel), null, `sentinel appeared on ${h}`);
    for (const h of HOSTS) assert.deepEqual(filesIn(h, cfg.workDir), [], `files in ${cfg.workDir} on ${h}`);
    if (this.currentTest?.state === 'passed') process.stdout.write(`      (${total} bad inputs so far)\n`);
  });

  after(async () => {
    await stopWorkers(workers);
    cleanHosts([sentinel], cfg.workDir);
  });

  it('CLI: bad container names (metacharacters, unicode, traversal, huge, empty)', async () => {
    const names = [...INJECTIONS, ...TRAVERSAL, ...badNames(70, 1)];
    for (const n of names) {
      assertClear(await cli(['--config', cfg.file, 'migrate', '--from', 'a', '--to', 'c', '--', n]), /invalid container name/, `name ${JSON.stringify(n.slice(0, 40))}`);
    }
    total += names.length;
  });

  it('CLI: bad host names for --from and --to', async () => {
    const names = [...INJECTIONS.slice(0, 6), ...badNames(30, 2)];
    for (const [i, n] of names.entries()) {
      const args = i % 2 ? ['--from', 'a', '--to', n] : ['--from', n, '--to', 'c'];
      assertClear(await cli(['--config', cfg.file, 'migrate', ...args, '--', sentinel]), /invalid host name|unknown (source|destination) host/, `host ${JSON.stringify(n.slice(0, 40))}`);
    }
    total += names.length;
  });

  it('CLI: bad --probe specs', async () => {
    const arb = fc.oneof(
      fc.string({ maxLength: 30 }).filter((s) => !/^(auto|none|tcp:|http:|exec:)/.test(s)),
      fc
        .oneof(fc.string({ maxLength: 8 }), fc.integer({ min: 65536, max: 1e9 }).map(String), fc.constant('0'), fc.constant('-1'))
        .filter((s) => !/^\d{1,5}$/.test(s) || Number(s) < 1 || Number(s) > 65535)
        .map((p) => `tcp:${p}`),
      fc.constantFrom('http:80/a b', 'http:x/', 'exec:', 'exec:   ', 'http:99999/', 'tcp:', `http:80/${'a'.repeat(3000)}`),
    );
    const specs = sample(arb, 25, 3).filter((s) => s !== 'auto' && s !== 'none');
    for (const s of specs) {
      assertClear(await cli(['--config', cfg.file, 'migrate', '--from', 'a', '--to', 'c', '--probe', s, '--', sentinel]), /health probe|unknown health probe/, `probe ${JSON.stringify(s.slice(0, 40))}`);
    }
    total += specs.length;
  });

  it('config files: wrong types, unknown keys, bad names and paths, huge strings, not JSON', async () => {
    const good = JSON.parse(JSON.stringify(cfg.config)) as Record<string, unknown> & { hosts: Record<string, unknown>[] };
    const host0 = good.hosts[0];
    const mutations: [string, (c: typeof good) => unknown][] = [
      ['redis not an object', (c) => ({ ...c, redis: 'redis://x' })],
      ['redis.url a number', (c) => ({ ...c, redis: { ...(c.redis as object), url: 6379 } })],
      ['redis.prefix with a space', (c) => ({ ...c, redis: { ...(c.redis as object), prefix: 'a b' } })],
      ['redis.prefix with a colon glob', (c) => ({ ...c, redis: { ...(c.redis as object), prefix: 'x:*' } })],
      ['redis.prefix huge', (c) => ({ ...c, redis: { ...(c.redis as object), prefix: 'p'.repeat(100_000) } })],
      ['hosts[0] a string', (c) => ({ ...c, hosts: ['a'] })],
      ['duplicate host', (c) => ({ ...c, hosts: [host0, host0] })],
      ['host without address', (c) => ({ ...c, hosts: [{ ...host0, address: undefined }] })],
      ['address with a space', (c) => ({ ...c, hosts: [{ ...host0, address: '1.2.3.4 -oProxyCommand=x' }] })],
      ['ssh.port a string', (c) => ({ ...c, hosts: [{ ...host0, ssh: { ...(host0.ssh as object), port: '22' } }] })],
      ['ssh.port 0', (c) => ({ ...c, hosts: [{ ...host0, ssh: { ...(host0.ssh as object), port: 0 } }] })],
      ['ssh.port 70000', (c) => ({ ...c, hosts: [{ ...host0, ssh: { ...(host0.ssh as object), port: 70000 } }] })],
      ['ssh.privateKey relative', (c) => ({ ...c, hosts: [{ ...host0, ssh: { ...(host0.ssh as object), privateKey: 'id_ed25519' } }] })],
      ['ssh unknown key', (c) => ({ ...c, hosts: [{ ...host0, ssh: { ...(host0.ssh as object), StrictHostKeyChecking: 'no' } }] })],
      ['workDir relative', (c) => ({ ...c, hosts: [{ ...host0, workDir: 'archives' }] })],
      ['workDir with a newline', (c) => ({ ...c, hosts: [{ ...host0, workDir: '/var/lib/ferry\n/x' }] })],
      ['podman empty', (c) => ({ ...c, hosts: [{ ...host0, podman: [] }] })],
      ['podman a string', (c) => ({ ...c, hosts: [{ ...host0, podman: 'podman --log-level debug' }] })],
      ['podman with a number', (c) => ({ ...c, hosts: [{ ...host0, podman: ['podman', 3] }] })],
      ['capacity negative', (c) => ({ ...c, hosts: [{ ...host0, capacity: { containers: -1 } }] })],
      ['retry.attempts a string', (c) => ({ ...c, retry: { attempts: { transfer: 'many' } } })],
      ['retry.backoffMs negative', (c) => ({ ...c, retry: { backoffMs: -5 } })],
      ['timeouts.step unknown step', (c) => ({ ...c, timeouts: { step: { teleport: 5 } } })],
      ['checkpoint.compression unknown', (c) => ({ ...c, checkpoint: { compression: 'rar' } })],
      ['log.level unknown', (c) => ({ ...c, log: { level: 'loud' } })],
      ['unknown top-level key', (c) => ({ ...c, sudo: true })],
      ['a JSON array', () => []],
      ['a JSON string', () => 'ferry'],
      ['null', () => null],
    ];
    // Generated: every host name that podman would refuse, as an inventory entry.
    for (const n of badNames(20, 4)) mutations.push([`host name ${JSON.stringify(n.slice(0, 20))}`, (c) => ({ ...c, hosts: [{ ...host0, name: n }] })]);
    const texts: [string, string][] = [
      ['empty file', ''],
      ['not JSON', 'redis: {url: x}'],
      ['truncated JSON', JSON.stringify(good).slice(0, 50)],
      ['JSON with a BOM and garbage', '\uFEFF{"redis": }'],
      ['huge garbage', '{'.repeat(200_000)],
    ];
    const cases: [string, string][] = [...mutations.map(([t, f]) => [t, JSON.stringify(f(JSON.parse(JSON.stringify(good)) as typeof good))] as [string, string]), ...texts];
    for (const [title, text] of cases) {
      const file = join(OUTPUT, `fuzz-config-${uid()}.json`);
      writeFileSync(file, text, { mode: 0o600 });
      assertClear(await cli(['--config', file, 'config', 'check', '--offline']), /invalid configuration|config file .*(not valid JSON|must hold a JSON object)|cannot read config/, `config: ${title}`);
    }
    total += cases.length;
  });

  // Known loader bugs (reported, src/config/load.ts): convict coerces any string to a Boolean,
  // so "no", "off" and "0" mean true; and an object where the host list belongs is merged
  // into the empty default list (a silent empty inventory) or fails with a TypeError.
  it('config files: string booleans and an object as the host list are refused', async () => {
    const good = JSON.parse(JSON.stringify(cfg.config)) as Record<string, unknown>;
    const cases: [string, unknown][] = [];
    // "0"/"1" and "true"/"false" are read for what they say (environment variables are
    // strings too); words that convict used to turn into true are refused.
    for (const v of ['no', 'off', 'yes', 'nope']) {
      cases.push([`redis.tls.enabled "${v}"`, { ...good, redis: { ...(good.redis as object), tls: { enabled: v } } }]);
      cases.push([`checkpoint.tcpEstablished "${v}"`, { ...good, checkpoint: { tcpEstablished: v } }]);
    }
    cases.push(['hosts an object {"a": 1}', { ...good, hosts: { a: 1 } }]);
    cases.push(['hosts an object {"0": {...}}', { ...good, hosts: { 0: (good.hosts as unknown[])[0] } }]);
    const accepted: string[] = [];
    for (const [title, c] of cases) {
      const file = join(OUTPUT, `fuzz-config-${uid()}.json`);
      writeFileSync(file, JSON.stringify(c), { mode: 0o600 });
      const o = await cli(['--config', file, 'config', 'check', '--offline']);
      if (o.code !== 2) accepted.push(`${title}: accepted (exit ${o.code})`);
      else if (!o.out.includes('invalid configuration')) accepted.push(`${title}: unclear error: ${o.out.trim().slice(0, 120)}`);
    }
    const zero = join(OUTPUT, `fuzz-config-${uid()}.json`);
    writeFileSync(zero, JSON.stringify({ ...good, checkpoint: { tcpEstablished: '0' } }), { mode: 0o600 });
    const z = await cli(['--config', zero, 'config', 'check', '--offline']);
    assert.match(z.out, /"tcpEstablished": false/, '"0" means false');
    total += cases.length;
    assert.deepEqual(accepted, [], 'string booleans must be refused');
  });

  it('plan files: bad entries, wrong types, unknown keys, not JSON/YAML', async () => {
    const entry = { container: sentinel, from: 'a', to: 'c' };
    const fixed: unknown[] = [
      [],
      {},
      { migrations: [] },
      { migrations: 'all' },
      { migrations: [entry], maxParallel: 0 },
      { migrations: [entry], maxParallel: 'lots' },
      { migrations: [entry], perHost: 1.5 },
      { migrations: [entry], extra: 1 },
      [entry, entry],
      [{ ...entry, container: undefined }],
      [{ ...entry, from: 7 }],
      [{ ...entry, to: null }],
      [{ ...entry, probe: 5 }],
      [{ ...entry, probe: 'tcp:99999' }],
      [{ ...entry, cmd: 'rm -rf /' }],
      ['a->c'],
      [null],
    ];
    const generated = [...INJECTIONS, ...badNames(25, 5)].map((n, i) => [{ ...entry, [['container', 'from', 'to'][i % 3]]: n }]);
    const texts = ['{', 'migrations: [', ': : :', '\t- x: [}', '{"migrations": [1,2,'];
    const cases = [...fixed.map((p) => JSON.stringify(p)), ...generated.map((p) => JSON.stringify(p)), ...texts];
    for (const [i, text] of cases.entries()) {
      const file = join(OUTPUT, `fuzz-plan-${uid()}.${i % 2 ? 'yaml' : 'json'}`);
      writeFileSync(file, text);
      assertClear(await cli(['--config', cfg.file, 'batch', file]), /^ferry: error: plan /m, `plan ${text.slice(0, 60)}`);
    }
    total += cases.length;
  });

  it('raw job payloads put straight on the host queue fail with a clear reason; the worker keeps serving', async () => {
    const conf = loadConfig({ file: cfg.file, env: {} });
    const conn = createRedis(conf);
    const q = new Queue('host-a', { connection: conn, prefix: conf.redis.prefix });
    try {
      const ids = fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom(...INJECTIONS, ...TRAVERSAL), fc.integer(), fc.constant(null), fc.array(fc.string(), { maxLength: 3 }));
      const steps = fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom('PREFLIGHT', 'preflight ', 'rollback;', `cleanup; touch ${MARKER}`, '__proto__'), fc.integer());
      const arb = fc.oneof(
        fc.jsonValue({ maxDepth: 3 }),
        fc.record({ migrationId: ids, step: steps }),
        fc.record({ migrationId: ids, step: fc.constantFrom('preflight', 'rollback', 'cleanup') }),
        fc.record({ migrationId: fc.constant('m-lq2x3y4z-0123abcd'), step: fc.constant('cleanup'), extra: fc.jsonValue({ maxDepth: 1 }) }, { requiredKeys: ['migrationId', 'step', 'extra'] }),
        // Well-formed ids of migrations that do not exist.
        fc.tuple(fc.stringMatching(/^[a-z0-9]{1,16}$/), fc.stringMatching(/^[a-f0-9]{8}$/), fc.constantFrom(...STEP_NAMES)).map(([t, r, step]) => ({ migrationId: `m-${t}-${r}`, step })),
        fc.integer({ min: 1000, max: 200_000 }).map((k) => ({ migrationId: 'm'.repeat(k), step: 'preflight' })),
      );
      const payloads = sample(arb, 70, 6);
      const jobs: Job[] = [];
      for (const [i, p] of payloads.entries()) jobs.push(await q.add(`fuzz-${i}`, p, { attempts: 1 }));
      for (const job of jobs) {
        let state = '';
        for (let i = 0; i < 300 && state !== 'failed' && state !== 'completed'; i++) {
          state = await job.getState();
          if (state !== 'failed' && state !== 'completed') await new Promise((r) => setTimeout(r, 100));
        }
        const fresh = await q.getJob(job.id ?? '');
        assert.equal(state, 'failed', `payload ${JSON.stringify(job.data).slice(0, 100)} ended ${state}`);
        assert.match(fresh?.failedReason ?? '', /^(malformed job payload|unknown migration)/, `payload ${JSON.stringify(job.data).slice(0, 100)}: ${fresh?.failedReason}`);
      }
      total += payloads.length;
    } finally {
      await q.close();
      conn.disconnect();
    }
  });

  it('forged migration records (names a shell would run) are refused by the worker before any command', async () => {
    const conf = loadConfig({ file: cfg.file, env: {} });
    const conn = createRedis(conf);
    const q = new Queue('host-a', { connection: conn, prefix: conf.redis.prefix });
    const k = keys(conf.redis.prefix);
    try {
      const forged: Record<string, unknown>[] = [
        ...INJECTIONS.slice(0, 8).map((n) => ({ container: n, from: 'a', to: 'c' })),
        { container: sentinel, from: 'a', to: `c; touch ${MARKER}` },
        { container: sentinel, from: 'a', to: 'nowhere' },
        { container: '../../etc', from: 'a', to: 'c' },
        { container: 'x'.repeat(5000), from: 'a', to: 'c' },
      ];
      const ids: string[] = [];
      for (const [i, f] of forged.entries()) {
        const now = Date.now() + i;
        const id = newMigrationId(now);
        await conn.set(k.migration(id), JSON.stringify({ id, state: 'queued', step: 'preflight', createdAt: now, updatedAt: now, probe: { kind: 'none' }, history: [], warnings: [], ...f }));
        await q.add('forged', { migrationId: id, step: 'preflight' }, { jobId: `${id}.preflight`, attempts: 1 });
        ids.push(id);
      }
      const client = clientFor(cfg);
      try {
        for (const id of ids) {
          const rec = await new Watch(client, id, 60_000).final;
          assert.equal(rec.state, 'failed', `${id}: ${rec.state}`);
          assert.match(rec.error ?? '', /(invalid container name|invalid host name|unknown host|not in this worker.s inventory)/);
          assert.equal(rec.history.filter((h) => h.ok).length, 0, `${id}: a step ran`);
        }
      } finally {
        await client.close();
      }
      total += forged.length;
    } finally {
      await q.close();
      conn.disconnect();
    }
  });

  it('the real binary, too: injection names through `ferry migrate` never reach a shell', async () => {
    for (const n of INJECTIONS.slice(0, 6)) {
      const r = await ferry(cfg, ['migrate', '--from', 'a', '--to', 'c', '--', n]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /invalid container name/);
    }
    total += 6;
  });

  it(`after all that (200+ inputs), the worker still migrates a real container`, async () => {
    assert.ok(total >= 200, `only ${total} bad inputs`);
    const name = `fz-ok-${uid()}`;
    runBigCounter('a', name, 0);
    try {
      await counterAt('a', name, 2);
      const client = clientFor(cfg);
      try {
        const rec = await client.migrate({ container: name, from: 'a', to: 'c', probe: { kind: 'none' } });
        const final = await new Watch(client, rec.id).final;
        assert.equal(final.state, 'succeeded', final.error);
        assert.equal(containerState('c', name), 'running');
      } finally {
        await client.close();
      }
    } finally {
      cleanHosts([name], cfg.workDir);
    }
  });
});
