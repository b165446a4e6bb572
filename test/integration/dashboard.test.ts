import { strict as assert } from 'node:assert';
import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import IORedis from 'ioredis';
import { BrowserContext, chromium, Page } from 'playwright-core';
import { bed, ferry, hostInfo, makeConfig, OUTPUT, removeContainers, runHttpd, startWorkers, stopWorkers, TestConfig, uid, WorkerProc } from '../support/bed';
import { FORWARD_STEPS } from '../../src/engine/steps';

const CHROMIUM = '/usr/bin/chromium';
// The forward chain as the step table defines it (src/engine/steps.ts).
const FORWARD: readonly string[] = FORWARD_STEPS;

interface Dashboard {
  url: string;
  /** The token of the link the dashboard printed at start (made for this run), if it printed one. */
  token: string | undefined;
  /** Headers that authenticate with that token. */
  auth: Record<string, string>;
  child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** The CLI of the build this test was compiled into (dist/ under npm test), so test and dashboard agree. */
const CLI = join(__dirname, '..', '..', 'src', 'cli', 'main.js');
const LAUNCH = `require(${JSON.stringify(CLI)}).main(['node', 'ferry', ...process.argv.slice(1)]).then((c) => { process.exitCode = c; })`;

/** Runs the real `ferry dashboard` (a process of its own, as an operator would) and waits until it listens. */
function startDashboard(cfg: TestConfig, extra: string[] = []): Promise<Dashboard> {
  const child = spawn(process.execPath, ['-e', LAUNCH, '--', '--config', cfg.file, 'dashboard', '--port', '0', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  return new Promise((resolve, reject) => {
    let seen = '';
    child.stderr.on('data', (d: Buffer) => (seen += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      seen += d.toString();
      const m = /dashboard listening on (http:\/\/\S+)/.exec(seen);
      if (!m) return;
      // The link with a token made for this run comes first, so it is here once this line is.
      const token = /\/\?token=([A-Za-z0-9_-]+)/.exec(seen)?.[1];
      resolve({
        url: `${m[1]}/`,
        token,
        auth: token ? { Authorization: `Bearer ${token}` } : {},
        child,
        output: () => seen,
        stop: async () => {
          child.kill('SIGTERM');
          await exited;
        },
      });
    });
    child.on('exit', (code) => reject(new Error(`ferry dashboard exited ${code}: ${seen}`)));
  });
}

/** Opens the dashboard in a page the way its printed link does (the token becomes a cookie). */
async function login(page: Page, d: Dashboard, path = ''): Promise<void> {
  await page.goto(d.token ? `${d.url}${path}?token=${d.token}` : `${d.url}${path}`);
}

/** A request with a Host header of our choosing, as a browser sends after DNS rebinding (fetch may not set Host). */
function rawRequest(url: string, path: string, headers: Record<string, string>, method = 'GET'): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path, method, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`${method} ${path}: no answer`)));
    req.on('error', reject);
    req.end();
  });
}

/** Status of a request; the body is dropped unread (the event stream never ends). */
async function statusOf(url: string, init: RequestInit = {}): Promise<number> {
  const res = await fetch(url, { redirect: 'manual', ...init });
  await res.body?.cancel();
  return res.status;
}

/**
 * Browser-side code is passed as text: the test is compiled without the DOM typings.
 * This one records every state/step a row of the migrations table shows, as it changes.
 */
const RECORD_ROWS = `(() => {
  window.__seen = {};
  const note = () => {
    for (const tr of document.querySelectorAll('#migrations tbody tr[data-id]')) {
      const list = (window.__seen[tr.dataset.id] ??= []);
      const v = tr.dataset.state + '/' + tr.dataset.step;
      if (list[list.length - 1] !== v) list.push(v);
    }
  };
  new MutationObserver(note).observe(document.querySelector('#migrations tbody'), { childList: true, subtree: true, attributes: true });
  note();
})()`;

function inPage<T>(page: Page, js: string): Promise<T> {
  return page.evaluate<T>(js);
}

/** Polls until `ok` holds (the page's CSP forbids Playwright's string predicates). */
async function until(ok: () => Promise<boolean>, what: string, tries = 120): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`gave up waiting: ${what}`);
}

/** How many rows of the migrations table are for this container. */
const rowsForJs = (container: string) => `Array.from(document.querySelectorAll('#migrations tbody tr[data-id]')).filter((t) => t.children[2] && t.children[2].textContent === ${JSON.stringify(container)}).length`;

describe('dashboard in a real headless Chromium', function () {
  this.timeout(110_000);
  let cfg: TestConfig;
  let workers: WorkerProc[] = [];
  let dash: Dashboard;
  let browser: BrowserContext;
  let page: Page;
  let profile: string;
  const names: string[] = [];

  before(async () => {
    cfg = makeConfig();
    workers = await startWorkers(['a', 'b'], cfg);
    dash = await startDashboard(cfg);
    profile = mkdtempSync(join(tmpdir(), 'ferry-chromium-'));
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1400, height: 820 },
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    page = await browser.newPage();
    page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
  });

  after(async () => {
    await browser?.close();
    await dash?.stop();
    await stopWorkers(workers);
    removeContainers(names);
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it('shows a migration started during the test, moving through its steps, ending as done', async () => {
    await login(page, dash);
    await page.waitForSelector('#counts .count');
    await page.waitForSelector('#live.on');
    await inPage(page, RECORD_ROWS);
    await page.screenshot({ path: join(OUTPUT, 'dashboard-empty.png') });

    const name = `dash-${uid()}`;
    names.push(name);
    runHttpd('a', name, 18000 + Math.floor(Math.random() * 1000));
    const started = await ferry(cfg, ['migrate', name, '--from', 'a', '--to', 'b']);
    assert.equal(started.code, 0, started.stderr);
    const id = started.stdout.trim();

    const row = `#migrations tbody tr[data-id="${id}"]`;
    await page.waitForSelector(row);
    await page.screenshot({ path: join(OUTPUT, 'dashboard-running.png') });
    await page.waitForSelector(`${row}[data-state="succeeded"]`, { timeout: 90_000 });

    const seen = await inPage<string[]>(page, `window.__seen[${JSON.stringify(id)}] || []`);
    const running = seen.filter((s) => s.startsWith('running/')).map((s) => s.split('/')[1]);
    assert.ok(new Set(running).size >= 2, `the page showed the migration at several steps: ${seen.join(' ')}`);
    const order = running.map((s) => FORWARD.indexOf(s));
    assert.deepEqual(
      order,
      [...order].sort((x, y) => x - y),
      `steps appear in order: ${seen.join(' ')}`,
    );
    assert.match(seen[seen.length - 1], /^succeeded\//, `ends as succeeded: ${seen.join(' ')}`);
    assert.equal(await page.textContent('#counts [data-count="done"] b'), '1');

    await page.click(row);
    await page.waitForSelector(`#detail[data-id="${id}"]`);
    const steps = await inPage<string[]>(page, `Array.from(document.querySelectorAll('#detail table.steps tbody tr[data-step]')).map((t) => t.dataset.step + ':' + t.querySelector('.pill').textContent)`);
    assert.deepEqual(
      steps,
      FORWARD.map((s) => `${s}:ok`),
    );
    assert.match((await page.textContent('#detail')) ?? '', /CRIU checkpoint[\s\S]*frozen/);
    await page.screenshot({ path: join(OUTPUT, 'dashboard-migration.png'), fullPage: true });

    await page.click('nav a[data-view="hosts"]');
    await page.waitForSelector('#hosts [data-host="b"]');
    assert.match((await page.textContent('#hosts [data-host="b"]')) ?? '', new RegExp(`worker alive[\\s\\S]*${name}`));
    assert.match((await page.textContent('#hosts [data-host="c"]')) ?? '', /no worker/);
    await page.screenshot({ path: join(OUTPUT, 'dashboard-hosts.png'), fullPage: true });

    await page.click('nav a[data-view="fleet"]');
    await page.waitForSelector('#view-fleet:not([hidden]) #drains .none');
    assert.equal(await page.textContent('#schedules'), 'none');
    await page.screenshot({ path: join(OUTPUT, 'dashboard-fleet.png') });

    await page.goto(`${dash.url}queues/`);
    await page.waitForSelector('text=host-a');
    await page.screenshot({ path: join(OUTPUT, 'dashboard-queues.png') });
  });

  it('retries a failed migration only after confirmation, as a new migration', async () => {
    await page.goto(`${dash.url}#migrations`);
    const name = `ghost-${uid()}`;
    const started = await ferry(cfg, ['migrate', name, '--from', 'a', '--to', 'b', '--probe', 'none']);
    assert.equal(started.code, 0, started.stderr);
    const id = started.stdout.trim();
    const button = `#migrations tbody tr[data-id="${id}"] button[data-retry]`;
    await page.waitForSelector(`#migrations tbody tr[data-id="${id}"][data-state="failed"]`, { timeout: 60_000 });
    const rowsFor = () => inPage<number>(page, rowsForJs(name));

    await page.click(button);
    await page.waitForSelector('#confirm[open]');
    assert.match((await page.textContent('#confirm-text')) ?? '', new RegExp(`${name} from a to b`));
    await page.screenshot({ path: join(OUTPUT, 'dashboard-retry-confirm.png') });
    await page.click('#confirm button[value="cancel"]');
    await page.waitForSelector('#confirm', { state: 'hidden' });
    assert.equal(await rowsFor(), 1);

    await page.click(button);
    await page.click('#confirm-ok');
    await until(async () => (await rowsFor()) === 2, 'the retried migration shows up on the page');
    const list = JSON.parse((await ferry(cfg, ['history', '--all', '--json'])).stdout) as { id: string; container: string; from: string; to: string }[];
    const retried = list.filter((r) => r.container === name);
    // Had the cancelled dialog started one, it would have been sent first and be here too.
    assert.equal(retried.length, 2, 'one new migration of the same container, none from the cancelled dialog');
    assert.ok(retried.every((r) => r.from === 'a' && r.to === 'b'));
    assert.notEqual(retried[0].id, retried[1].id);
  });

  it('read-only mode shows everything but acts on nothing', async () => {
    const ro = await startDashboard(cfg, ['--read-only']);
    try {
      const p = await browser.newPage();
      await login(p, ro);
      await p.waitForSelector('#readonly:not([hidden])');
      await p.waitForSelector('#migrations tbody button[data-retry]');
      assert.ok(await inPage<boolean>(p, `Array.from(document.querySelectorAll('#migrations tbody button[data-retry]')).every((b) => b.disabled)`), 'retry buttons are disabled');
      await p.screenshot({ path: join(OUTPUT, 'dashboard-readonly.png') });
      await p.close();
      const ov = (await (await fetch(`${ro.url}api/overview`, { headers: ro.auth })).json()) as { migrations: { id: string; state: string }[] };
      const failed = ov.migrations.find((m) => m.state === 'failed');
      assert.ok(failed);
      const res = await fetch(`${ro.url}api/migrations/${failed.id}/retry`, { method: 'POST', headers: { ...ro.auth, 'X-Ferry-Confirm': failed.id } });
      assert.equal(res.status, 403);
    } finally {
      await ro.stop();
    }
  });

  it('needs credentials when set, and refuses to listen beyond loopback without them', async () => {
    const refused = await ferry(cfg, ['dashboard', '--host', hostInfo('a').address, '--port', '0'], { timeoutMs: 20_000 });
    assert.equal(refused.code, 2, refused.stdout + refused.stderr);
    assert.match(refused.stderr, /refusing to serve the dashboard .* without credentials/);

    const token = `t-${uid()}`;
    const file = join(OUTPUT, `${cfg.prefix}-token.json`);
    writeFileSync(file, JSON.stringify({ ...cfg.config, dashboard: { token } }), { mode: 0o600 });
    const locked = await startDashboard({ ...cfg, file });
    try {
      assert.equal((await fetch(`${locked.url}api/overview`)).status, 401);
      assert.equal((await fetch(`${locked.url}metrics`)).status, 401);
      assert.equal((await fetch(`${locked.url}api/overview`, { headers: { Authorization: `Bearer ${token}` } })).status, 200);
      const viaLink = await fetch(`${locked.url}?token=${token}`, { redirect: 'manual' });
      assert.equal(viaLink.status, 302, 'the token in the link is swapped for a cookie');
      // Named after the port: two dashboards on one machine (say, a read-only one beside the
      // full one) keep their own cookies.
      assert.match(viaLink.headers.get('set-cookie') ?? '', /ferry_token_\d+=[^;]+;.*HttpOnly/);
      assert.ok(!locked.output().includes(token), 'a configured token is never printed');
      const shown = await ferry({ ...cfg, file }, ['config', 'check', '--offline']);
      assert.ok(!shown.stdout.includes(token) && shown.stdout.includes('"token": "<hidden>"'), 'the token is redacted from the effective config');
    } finally {
      await locked.stop();
    }

    // Beyond loopback with basic auth: allowed, and asks for it.
    const basicFile = join(OUTPUT, `${cfg.prefix}-basic.json`);
    writeFileSync(basicFile, JSON.stringify({ ...cfg.config, dashboard: { basicAuth: { user: 'ops', password: token } } }), { mode: 0o600 });
    const open = await startDashboard({ ...cfg, file: basicFile }, ['--host', bed().bridgeAddress]);
    try {
      const anon = await fetch(`${open.url}api/overview`);
      assert.equal(anon.status, 401);
      assert.match(anon.headers.get('www-authenticate') ?? '', /^Basic/);
      const auth = `Basic ${Buffer.from(`ops:${token}`).toString('base64')}`;
      assert.equal((await fetch(`${open.url}api/overview`, { headers: { Authorization: auth } })).status, 200);
      assert.equal((await fetch(`${open.url}api/overview`, { headers: { Authorization: `Basic ${Buffer.from('ops:wrong').toString('base64')}` } })).status, 401);
    } finally {
      await open.stop();
    }
  });

  it('answers nothing without credentials, even on loopback with none configured: 401 on the page, the API, Bull Board and /metrics', async () => {
    const missing = 'm-abc-0123abcd';
    const routes: [string, string][] = [
      ['GET', ''],
      ['GET', 'index.html'],
      ['GET', 'app.js'],
      ['GET', 'api/overview'],
      ['GET', `api/migrations/${missing}`],
      ['GET', 'api/events'],
      ['POST', `api/migrations/${missing}/retry`],
      ['GET', 'queues/'],
      ['GET', 'queues/api/queues'],
      ['PUT', 'queues/api/queues/host-c/pause'],
      ['GET', 'metrics'],
    ];
    const wrong: Record<string, string>[] = [{}, { Authorization: 'Bearer wrong' }, { Cookie: 'ferry_token=wrong' }];
    const answers: string[] = [];
    for (const [method, path] of routes) {
      for (const headers of wrong) answers.push(`${method} /${path} ${JSON.stringify(headers)}: ${await statusOf(`${dash.url}${path}`, { method, headers: { ...headers, 'X-Ferry-Confirm': missing } })}`);
      answers.push(`${method} /${path}?token=wrong: ${await statusOf(`${dash.url}${path}?token=wrong`, { method })}`);
    }
    assert.deepEqual(
      answers.filter((a) => !a.endsWith(': 401')),
      [],
      'every route refuses a request without the right credentials',
    );
    assert.equal(await statusOf(`${dash.url}healthz`), 200, 'the health check says only "ok" and needs none');

    assert.ok(dash.token, `without a configured token or basic auth, ferry dashboard prints a link with a token made for this run: ${dash.output()}`);
    assert.equal(dash.output().split(dash.token).length - 1, 1, 'the token is printed once');
    assert.match(dash.output(), new RegExp(`http://127\\.0\\.0\\.1:\\d+/\\?token=${dash.token}`));
    assert.equal(await statusOf(`${dash.url}api/overview`, { headers: dash.auth }), 200);
    assert.equal(await statusOf(`${dash.url}metrics`, { headers: dash.auth }), 200, 'Prometheus can send it as a bearer token');
    const viaLink = await fetch(`${dash.url}?token=${dash.token}`, { redirect: 'manual' });
    assert.equal(viaLink.status, 302);
    const cookie = (viaLink.headers.get('set-cookie') ?? '').split(';')[0];
    assert.equal(await statusOf(`${dash.url}queues/api/queues`, { headers: { Cookie: cookie } }), 200, 'the cookie from the link opens everything');
    const other = await startDashboard(cfg);
    try {
      assert.ok(other.token && other.token !== dash.token, 'each run makes its own token');
      assert.equal(await statusOf(`${other.url}api/overview`, { headers: dash.auth }), 401, "another run's token opens nothing");
    } finally {
      await other.stop();
    }
  });

  it('refuses requests for a host name it does not know (DNS rebinding)', async () => {
    const port = new URL(dash.url).port;
    const refused: string[] = [];
    for (const path of ['/', '/api/overview', '/metrics', '/queues/api/queues']) {
      for (const host of [`rebind.attacker.example:${port}`, 'rebind.attacker.example', `localhost.attacker.example:${port}`]) {
        const r = await rawRequest(dash.url, path, { ...dash.auth, Host: host });
        if (r.status !== 421) refused.push(`${host}${path}: ${r.status}`);
        else assert.match(r.body, /dashboard\.allowedHosts/, 'the answer says what to do');
      }
    }
    assert.deepEqual(refused, [], 'a foreign Host header is answered 421, credentials or not');
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, 'localhost']) {
      assert.equal((await rawRequest(dash.url, '/api/overview', { ...dash.auth, Host: host })).status, 200, host);
    }

    const file = join(OUTPUT, `${cfg.prefix}-hosts.json`);
    writeFileSync(file, JSON.stringify({ ...cfg.config, dashboard: { allowedHosts: ['ferry.example.test'] } }), { mode: 0o600 });
    const named = await startDashboard({ ...cfg, file });
    try {
      const p = new URL(named.url).port;
      assert.equal((await rawRequest(named.url, '/api/overview', { ...named.auth, Host: 'ferry.example.test' })).status, 200, 'a name in dashboard.allowedHosts is answered');
      assert.equal((await rawRequest(named.url, '/api/overview', { ...named.auth, Host: `FERRY.example.test:${p}` })).status, 200, 'in any case, with a port');
      assert.equal((await rawRequest(named.url, '/api/overview', { ...named.auth, Host: 'other.example.test' })).status, 421);
      assert.equal((await rawRequest(named.url, '/api/overview', { Host: 'ferry.example.test' })).status, 401, 'an allowed name still needs credentials');
    } finally {
      await named.stop();
    }
  });

  it('keeps Bull Board read-only unless dashboard.bullBoardWrite: no pause, empty, clean, obliterate or pre-created job', async () => {
    const conn = new IORedis({ host: bed().redis.host, port: bed().redis.port, password: bed().redis.password, maxRetriesPerRequest: null });
    // host-c has no worker here: a job put there stays waiting, where pause and empty would hit it.
    const q = new Queue('host-c', { connection: conn, prefix: cfg.prefix });
    try {
      const job = await q.add('probe', { note: 'left alone by the dashboard' }, { jobId: `keep-${uid()}`, removeOnComplete: true });
      const planted = `planted-${uid()}`;
      const base = `${dash.url}queues/api/queues`;
      const actions: [string, string, unknown?][] = [
        ['PUT', `${base}/host-c/pause`],
        ['PUT', `${base}/pause`],
        ['PUT', `${base}/host-c/empty`],
        ['PUT', `${base}/host-c/clean/waiting`],
        ['PUT', `${base}/host-c/clean/completed`],
        ['PUT', `${base}/host-c/obliterate`],
        ['PUT', `${base}/host-c/${job.id}/clean`],
        ['PATCH', `${base}/host-c/${job.id}/update-data`, { data: { note: 'changed' } }],
        ['POST', `${base}/host-c/add`, { name: 'preflight', data: {}, options: { jobId: planted } }],
      ];
      const answered: string[] = [];
      for (const [method, url, body] of actions) {
        const status = await statusOf(url, { method, headers: { ...dash.auth, 'Content-Type': 'application/json' }, body: JSON.stringify(body ?? {}) });
        if (status !== 403) answered.push(`${method} ${url.slice(dash.url.length - 1)}: ${status}`);
      }
      assert.deepEqual(answered, [], 'every Bull Board action is refused (403) by default');
      assert.equal(await q.isPaused(), false, 'the queue is not paused');
      assert.equal(await q.getWaitingCount(), 1, 'the waiting job is still there');
      assert.deepEqual((await q.getJob(job.id ?? ''))?.data, { note: 'left alone by the dashboard' });
      assert.equal(await q.getJob(planted), undefined, 'no job id was pre-created');
      assert.equal(await statusOf(`${base}/host-c/${job.id}`, { headers: dash.auth }), 200, 'reading stays possible');

      // --read-only wins over --bull-board-write.
      const ro = await startDashboard(cfg, ['--read-only', '--bull-board-write']);
      try {
        assert.equal(await statusOf(`${ro.url}queues/api/queues/host-c/pause`, { method: 'PUT', headers: ro.auth }), 403);
        assert.equal(await q.isPaused(), false);
      } finally {
        await ro.stop();
      }

      // Explicitly enabled: writable, but only with credentials and only from its own pages.
      const rw = await startDashboard(cfg, ['--bull-board-write']);
      try {
        const pause = `${rw.url}queues/api/queues/host-c/pause`;
        assert.match(rw.output(), /Bull Board writable/);
        assert.equal(await statusOf(pause, { method: 'PUT' }), 401);
        assert.equal(await statusOf(pause, { method: 'PUT', headers: { ...rw.auth, Origin: 'http://rebind.attacker.example' } }), 403, 'a cross-site request is refused');
        assert.equal(await q.isPaused(), false);
        assert.equal(await statusOf(pause, { method: 'PUT', headers: { ...rw.auth, Origin: new URL(rw.url).origin } }), 200);
        assert.equal(await q.isPaused(), true, 'paused through Bull Board once enabled');
        assert.equal(await statusOf(`${rw.url}queues/api/queues/host-c/resume`, { method: 'PUT', headers: rw.auth }), 200);
        assert.equal(await q.isPaused(), false);
      } finally {
        await rw.stop();
      }
      await job.remove();
    } finally {
      await q.close();
      conn.disconnect();
    }
  });
});
