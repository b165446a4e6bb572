import { strict as assert } from 'node:assert';
import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BrowserContext, chromium, Page } from 'playwright-core';
import {
  bed, ferry, hostInfo, makeConfig, OUTPUT, REPO, removeContainers, runHttpd, startWorkers, stopWorkers, TestConfig, uid, WorkerProc,
} from '../support/bed';

const CHROMIUM = '/usr/bin/chromium';
const FORWARD = ['preflight', 'checkpoint', 'transfer', 'restore', 'verify', 'cleanup'];

interface Dashboard {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** Runs the real `ferry dashboard` (a process of its own, as an operator would) and waits until it listens. */
function startDashboard(cfg: TestConfig, extra: string[] = []): Promise<Dashboard> {
  const child = spawn(process.execPath, [join(REPO, 'bin', 'ferry.js'), '--config', cfg.file, 'dashboard', '--port', '0', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  return new Promise((resolve, reject) => {
    let seen = '';
    child.stderr.on('data', (d: Buffer) => (seen += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      seen += d.toString();
      const m = /dashboard listening on (http:\/\/\S+)/.exec(seen);
      if (m) resolve({ url: `${m[1]}/`, child, stop: async () => { child.kill('SIGTERM'); await exited; } });
    });
    child.on('exit', (code) => reject(new Error(`ferry dashboard exited ${code}: ${seen}`)));
  });
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
  return page.evaluate(js) as Promise<T>;
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
const rowsForJs = (container: string) =>
  `Array.from(document.querySelectorAll('#migrations tbody tr[data-id]')).filter((t) => t.children[2] && t.children[2].textContent === ${JSON.stringify(container)}).length`;

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
    await page.goto(dash.url);
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
    assert.deepEqual(order, [...order].sort((x, y) => x - y), `steps appear in order: ${seen.join(' ')}`);
    assert.match(seen[seen.length - 1], /^succeeded\//, `ends as succeeded: ${seen.join(' ')}`);
    assert.equal(await page.textContent('#counts [data-count="done"] b'), '1');

    await page.click(row);
    await page.waitForSelector(`#detail[data-id="${id}"]`);
    const steps = await inPage<string[]>(page, `Array.from(document.querySelectorAll('#detail table.steps tbody tr[data-step]')).map((t) => t.dataset.step + ':' + t.querySelector('.pill').textContent)`);
    assert.deepEqual(steps, FORWARD.map((s) => `${s}:ok`));
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
      await p.goto(ro.url);
      await p.waitForSelector('#readonly:not([hidden])');
      await p.waitForSelector('#migrations tbody button[data-retry]');
      assert.ok(await inPage<boolean>(p, `Array.from(document.querySelectorAll('#migrations tbody button[data-retry]')).every((b) => b.disabled)`), 'retry buttons are disabled');
      await p.screenshot({ path: join(OUTPUT, 'dashboard-readonly.png') });
      await p.close();
      const ov = (await (await fetch(`${ro.url}api/overview`)).json()) as { migrations: { id: string; state: string }[] };
      const failed = ov.migrations.find((m) => m.state === 'failed');
      assert.ok(failed);
      const res = await fetch(`${ro.url}api/migrations/${failed.id}/retry`, { method: 'POST', headers: { 'X-Ferry-Confirm': failed.id } });
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
      assert.match(viaLink.headers.get('set-cookie') ?? '', /ferry_token=.*HttpOnly/);
      const shown = await ferry({ ...cfg, file }, ['config', 'check', '--offline']);
      assert.ok(!shown.stdout.includes(token) && /"token": "<hidden>"/.test(shown.stdout), 'the token is redacted from the effective config');
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
});
