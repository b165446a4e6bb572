import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load';
import { checkListen, credentialsFor, DashboardAuth, tokenCookie } from '../../src/dashboard/auth';
import { allowedHostNames, hostName } from '../../src/dashboard/hostCheck';
import { ConfigError } from '../../src/errors';

const dashboard = (patch: Partial<DashboardAuth> = {}): DashboardAuth => ({
  host: '127.0.0.1',
  port: 8377,
  token: '',
  basicAuth: { user: '', password: '' },
  readOnly: false,
  allowedHosts: [],
  bullBoardWrite: false,
  ...patch,
});

describe('dashboard guards', () => {
  it('reads the host name of a Host header or an Origin authority', () => {
    assert.equal(hostName('localhost:8377'), 'localhost');
    assert.equal(hostName('LocalHost.'), 'localhost');
    assert.equal(hostName('[::1]:8377'), '::1');
    assert.equal(hostName('127.0.0.1'), '127.0.0.1');
    assert.equal(hostName('Ferry.Example.com:443'), 'ferry.example.com');
    for (const bad of ['', 'evil.example@localhost', 'localhost/x', 'local host', 'a:b:c', 'localhost:99999']) assert.equal(hostName(bad), undefined, bad);
  });

  it('answers to loopback, its listen address and dashboard.allowedHosts only', () => {
    const names = allowedHostNames('198.18.0.1', ['Ferry.Example.com', '[fd00::5]', 'fd00::6']);
    for (const ok of ['localhost', '127.0.0.1', '::1', '198.18.0.1', 'ferry.example.com', 'fd00::5', 'fd00::6']) assert.ok(names.has(ok), ok);
    for (const no of ['rebind.attacker.example', 'localhost.attacker.example', '0.0.0.0', 'example.com']) assert.ok(!names.has(no), no);
    assert.ok(allowedHostNames('::1', []).has('::1'));
  });

  it('makes a fresh random token only when no credentials are configured', () => {
    const a = credentialsFor(dashboard());
    const b = credentialsFor(dashboard());
    assert.ok(a.generated && a.token.length >= 40 && a.token !== b.token);
    assert.deepEqual(credentialsFor(dashboard({ token: 't' })), { token: 't', basicAuth: { user: '', password: '' }, generated: false });
    const basic = credentialsFor(dashboard({ basicAuth: { user: 'ops', password: 'pw' } }));
    assert.equal(basic.generated, false);
    assert.equal(basic.token, '');
    assert.notEqual(tokenCookie(8377), tokenCookie(8378));
  });

  it('still refuses to listen beyond loopback without configured credentials', () => {
    assert.throws(
      () => checkListen('0.0.0.0', dashboard()),
      (e: unknown) => e instanceof ConfigError && e.message.includes('without credentials'),
    );
    assert.doesNotThrow(() => checkListen('127.0.0.1', dashboard()));
    assert.doesNotThrow(() => checkListen('0.0.0.0', dashboard({ token: 't' })));
  });

  describe('configuration', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-dashboard-test-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const load = (dash: unknown) => {
      const file = join(dir, `${Math.random().toString(36).slice(2)}.json`);
      writeFileSync(file, JSON.stringify({ dashboard: dash }));
      return loadConfig({ file, env: {} });
    };

    it('defaults to no extra host names and a read-only Bull Board', () => {
      const c = load({});
      assert.deepEqual(c.dashboard.allowedHosts, []);
      assert.equal(c.dashboard.bullBoardWrite, false);
      assert.equal(loadConfig({ env: { FERRY_DASHBOARD_BULL_BOARD_WRITE: 'true' } }).dashboard.bullBoardWrite, true);
    });

    it('takes host names, and refuses ports, schemes and other shapes', () => {
      assert.deepEqual(load({ allowedHosts: ['ferry.example.com', '10.0.0.5', '[fd00::1]'] }).dashboard.allowedHosts, ['ferry.example.com', '10.0.0.5', '[fd00::1]']);
      for (const bad of [['ferry.example.com:8377'], ['https://ferry.example.com'], ['*'], [''], [5], [['a']]]) {
        assert.throws(
          () => load({ allowedHosts: bad }),
          (e: unknown) => e instanceof ConfigError && e.message.includes('dashboard.allowedHosts'),
          JSON.stringify(bad),
        );
      }
      // convict reads a string given for a list as JSON: refused, if less clearly.
      assert.throws(() => load({ allowedHosts: 'ferry.example.com' }), ConfigError);
      assert.throws(() => load({ bullBoardWrite: 'yes' }), /dashboard\.bullBoardWrite/);
    });
  });
});
