import { strict as assert } from 'node:assert';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import IORedis from 'ioredis';
import { archivesOn, bed, ferry, hostInfo, makeConfig, mustPodman, OUTPUT, podmanOn, removeContainers, runHttpd, startWorkers, stopWorkers, TestConfig, uid, WorkerProc } from '../support/bed';

const MARKER = '/tmp/pwned';

// Every name this file creates carries this tag: the snapshot looks at them (and at anything
// the bad requests could have created), not at other suites' containers on a shared bed.
const TAG = `bad${uid()}`;

// Redis prefixes of the configs this file made: their migrations' ids name the archives
// that count (others' archives on a shared bed come and go).
const prefixes: string[] = [];
function track(cfg: TestConfig): TestConfig {
  prefixes.push(cfg.prefix);
  return cfg;
}

async function ourMigrationIds(): Promise<Set<string>> {
  const b = bed();
  const conn = new IORedis({ host: b.redis.host, port: b.redis.port, password: b.redis.password });
  try {
    const ids = await Promise.all(prefixes.map((p) => conn.zrange(`${p}:migrations`, 0, -1)));
    return new Set(ids.flat());
  } finally {
    conn.disconnect();
  }
}

/** This suite's containers with their ids and states, and its archives, on every host: "nothing changed" is this, unchanged. */
async function snapshot(): Promise<string> {
  const ids = await ourMigrationIds();
  return bed()
    .hosts.map((h) => {
      const list = JSON.parse(podmanOn(h.name, 'ps', '-a', '--format', 'json').stdout || '[]') as { Id: string; Names: string[]; State: string }[];
      const ps = list
        .filter((c) => c.Names.some((n) => n.includes(TAG) || n.includes('pwned') || n.startsWith('nope-')))
        .map((c) => `${c.Names.join('/')}:${c.Id.slice(0, 12)}:${c.State}`)
        .sort()
        .join(',');
      const archives = archivesOn(h.name).filter((f) => ids.has(f.split('.')[0]));
      return `${h.name}: [${ps}] archives=[${archives.join(',')}]`;
    })
    .join('\n');
}

describe('bad input: a clear message, a non-zero exit, nothing changed on any host', function () {
  this.timeout(120_000);
  let cfg: TestConfig;
  let workers: WorkerProc[] = [];
  const web = `${TAG}-web`;
  const stopped = `${TAG}-stopped`;
  // Runs on a, and b has a (stopped) container of the same name: preflight asks b for both
  // the name and the image in one command.
  const taken = `${TAG}-taken`;
  let baseline: string;

  before(async () => {
    cfg = track(makeConfig({ top: { retry: { backoffMs: 200, attempts: { preflight: 2 } } } }));
    workers = await startWorkers(['a', 'b'], cfg);
    runHttpd('a', web, 18000 + Math.floor(Math.random() * 1000));
    mustPodman('a', 'create', '--name', stopped, bed().image, 'sleep', '1000');
    mustPodman('a', 'run', '-d', '--name', taken, bed().image, 'sleep', '1000');
    mustPodman('b', 'create', '--name', taken, bed().image, 'sleep', '1000');
    baseline = await snapshot();
  });

  afterEach(async () => {
    assert.equal(await snapshot(), baseline, 'hosts changed');
    assert.ok(!existsSync(MARKER), `${MARKER} appeared: a name reached a shell`);
  });

  after(async () => {
    await stopWorkers(workers);
    removeContainers([web, stopped, taken]);
  });

  const cases: { title: string; args: () => string[]; code: number; message: RegExp }[] = [
    { title: 'unknown destination host', args: () => ['migrate', web, '--from', 'a', '--to', 'nowhere'], code: 2, message: /unknown destination host "nowhere"/ },
    { title: 'unknown source host', args: () => ['migrate', web, '--from', 'zz', '--to', 'b'], code: 2, message: /unknown source host "zz"/ },
    { title: 'source equals destination', args: () => ['migrate', web, '--from', 'a', '--to', 'a'], code: 2, message: /same host/ },
    { title: 'unknown container', args: () => ['migrate', `nope-${uid()}`, '--from', 'a', '--to', 'b', '--wait'], code: 1, message: /does not exist on host a/ },
    { title: 'container not running', args: () => ['migrate', stopped, '--from', 'a', '--to', 'b', '--wait'], code: 1, message: /is not running \(state: (created|exited)\)/ },
    {
      title: 'the destination already has a container of that name',
      args: () => ['migrate', taken, '--from', 'a', '--to', 'b', '--wait'],
      code: 1,
      message: /host b already has a container named "[^"]+-taken" \(state: (created|configured)\)/,
    },
    { title: 'shell metacharacters in the container name', args: () => ['migrate', `web; touch ${MARKER}`, '--from', 'a', '--to', 'b'], code: 2, message: /invalid container name "web; touch \/tmp\/pwned"/ },
    { title: 'command substitution in the container name', args: () => ['migrate', `$(touch ${MARKER})`, '--from', 'a', '--to', 'b'], code: 2, message: /invalid container name/ },
    { title: 'shell metacharacters in a host name', args: () => ['migrate', web, '--from', 'a', '--to', `b;touch ${MARKER}`], code: 2, message: /invalid host name/ },
    { title: 'path traversal as a name', args: () => ['migrate', '../../etc/passwd', '--from', 'a', '--to', 'b'], code: 2, message: /invalid container name/ },
    { title: 'bad probe', args: () => ['migrate', web, '--from', 'a', '--to', 'b', '--probe', 'tcp:0'], code: 2, message: /not a port number/ },
  ];

  for (const c of cases) {
    it(c.title, async () => {
      const res = await ferry(cfg, c.args());
      assert.equal(res.code, c.code, `exit code; stdout:\n${res.stdout}\nstderr:\n${res.stderr}`);
      assert.match(res.stderr + res.stdout, c.message);
    });
  }

  it('malformed config file', async () => {
    const file = join(OUTPUT, `bad-${uid()}.json`);
    writeFileSync(file, JSON.stringify({ hosts: [{ name: 'a', address: '198.18.0.11', ssh: { privateKey: '/k' }, podmn: ['podman'] }] }));
    const res = await ferry({ ...cfg, file }, ['migrate', web, '--from', 'a', '--to', 'b']);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /hosts\[0\] \(a\)\.podmn: unknown key/);
  });

  it('raw job payloads put straight on a host queue are refused and the worker keeps serving', async () => {
    const conn = new IORedis({ host: bed().redis.host, port: bed().redis.port, password: bed().redis.password, maxRetriesPerRequest: null });
    const q = new Queue('host-a', { connection: conn, prefix: cfg.prefix });
    try {
      const payloads: unknown[] = [
        { migrationId: `x; touch ${MARKER}`, step: 'preflight' },
        { migrationId: 'm-1-0123abcd', step: `preflight; touch ${MARKER}` },
        { migrationId: 'm-1-0123abcd', step: 'preflight' },
        'just a string',
        [1, 2, 3],
        { step: 'rollback', migrationId: 'm-zzzz-deadbeef', extra: '$(reboot)' },
      ];
      const jobs = await Promise.all(payloads.map((p, i) => q.add(`bad-${i}`, p as object)));
      for (const job of jobs) {
        for (let i = 0; i < 100; i++) {
          const state = await job.getState();
          if (state === 'failed') break;
          await new Promise((r) => setTimeout(r, 100));
        }
        const fresh = await q.getJob(job.id ?? '');
        assert.equal(await fresh?.getState(), 'failed', `job ${job.name} should fail`);
        assert.match(fresh?.failedReason ?? '', /malformed job payload|unknown migration/);
      }
      // The worker still serves real work after all that.
      const ok = await ferry(cfg, ['migrate', `nope-${uid()}`, '--from', 'a', '--to', 'b', '--wait']);
      assert.equal(ok.code, 1);
      assert.match(ok.stderr + ok.stdout, /does not exist on host a/);
    } finally {
      await q.close();
      conn.disconnect();
    }
  });
});

describe('bad hosts: unreachable destination, wrong SSH key', function () {
  this.timeout(120_000);
  const web = `${TAG}-ssh`;
  let baseline: string;

  before(async () => {
    runHttpd('a', web, 18000 + Math.floor(Math.random() * 1000));
    baseline = await snapshot();
  });
  after(() => removeContainers([web]));
  afterEach(async () => assert.equal(await snapshot(), baseline, 'hosts changed'));

  async function migrateWith(cfg: TestConfig, to: string) {
    track(cfg);
    const workers = await startWorkers(['a'], cfg);
    try {
      return await ferry(cfg, ['migrate', web, '--from', 'a', '--to', to, '--wait']);
    } finally {
      await stopWorkers(workers);
    }
  }

  it('destination unreachable', async () => {
    const b = bed();
    const cfg = makeConfig({
      extraHosts: [{ name: 'gone', address: '198.18.0.250', ssh: { privateKey: b.ssh.key, knownHosts: b.ssh.knownHosts } }],
      top: { retry: { backoffMs: 100, attempts: { preflight: 2 } }, timeouts: { sshConnectMs: 2000 } },
    });
    const res = await migrateWith(cfg, 'gone');
    assert.equal(res.code, 1, res.stdout + res.stderr);
    assert.match(res.stdout, /cannot reach host/);
    assert.match(res.stdout, /state:\s+failed/);
  });

  it('wrong SSH key', async () => {
    const cfg = makeConfig({ hosts: { b: { ssh: { privateKey: bed().ssh.wrongKey, knownHosts: bed().ssh.knownHosts } } } });
    const res = await migrateWith(cfg, 'b');
    assert.equal(res.code, 1, res.stdout + res.stderr);
    assert.match(res.stdout, /SSH authentication failed with key .*wrong/);
  });

  it('unknown host key: refused until trusted explicitly', async () => {
    const known = join(OUTPUT, `known-${uid()}`);
    writeFileSync(known, '');
    const cfg = makeConfig({ hosts: { b: { ssh: { privateKey: bed().ssh.key, knownHosts: known } } } });
    const res = await migrateWith(cfg, 'b');
    assert.equal(res.code, 1, res.stdout + res.stderr);
    assert.match(res.stdout, /host key is not in .*refusing to connect.*ferry hosts trust b/);
    const shown = await ferry(cfg, ['hosts', 'trust', 'b']);
    assert.equal(shown.code, 1, 'without --fingerprint nothing is trusted');
    const fp = /SHA256:[A-Za-z0-9+/]+/.exec(shown.stdout)?.[0] ?? '';
    assert.equal(readFileSync(known, 'utf8'), '');
    const trusted = await ferry(cfg, ['hosts', 'trust', 'b', '--fingerprint', fp]);
    assert.equal(trusted.code, 0, trusted.stderr);
    assert.ok(readFileSync(known, 'utf8').startsWith(`${hostInfo('b').address} ssh-ed25519 `), 'b is trusted by its address');
  });

  it('changed host key: refused, with a warning', async () => {
    const known = join(OUTPUT, `known-${uid()}`);
    // b's address filed with a's key: what a replaced host or a man in the middle looks like.
    const aKey = readFileSync(bed().ssh.knownHosts, 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`${hostInfo('a').address} `))!;
    writeFileSync(known, `${aKey.replace(hostInfo('a').address, hostInfo('b').address)}\n`);
    const cfg = makeConfig({ hosts: { b: { ssh: { privateKey: bed().ssh.key, knownHosts: known } } } });
    const res = await migrateWith(cfg, 'b');
    assert.equal(res.code, 1, res.stdout + res.stderr);
    assert.match(res.stdout, /host key does NOT match/);
  });
});
