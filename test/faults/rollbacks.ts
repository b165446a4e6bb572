import { strict as assert } from 'node:assert';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { onHost } from '../support/bed';
import { archiveKeyOnHosts } from '../support/archiveKey';
import { FERRY_BIN, hostFile } from '../support/faults';
import type { Scenario } from './scenario';

const BROKEN = 'injected: OCI runtime broken on this host';

/** Restore failing on the destination, and then on the source during rollback too. */
export const ROLLBACKS: Scenario[] = [
  {
    fault: 'destination restore fails (broken runtime)',
    where: 'restore (destination) → rollback',
    podman: { dst: { failOn: 'container restore', message: BROKEN } },
    async inject() {
      return undefined;
    },
    expect: ['failed-rolled-back'],
    message: /restore failed on host c: .*injected: OCI runtime broken/,
  },
  {
    fault: 'destination restore fails AND the source cannot restore during rollback',
    where: 'restore (destination), then rollback (source)',
    top: { retry: { backoffMs: 200, attempts: { restore: 2, rollback: 3 } } },
    podman: { dst: { failOn: 'container restore', message: BROKEN }, src: { failOn: 'container restore', message: BROKEN } },
    async inject() {
      return undefined;
    },
    expect: ['needs-attention'],
    message: /checkpoint archive is kept on a at \/\S+: restore it there with `podman (--runtime-flag \S+ )?container restore --import \/\S+`/,
    keptArchive: 'src',
    // What the message tells a person to do, done here as they would: the container must come back whole.
    async operator(ctx, rec) {
      const m = /`(podman (?:--runtime-flag \S+ )?container restore --import (\/\S+))`/.exec(rec.error ?? '');
      assert.ok(m, `no command in: ${rec.error}`);
      const mode = (statSync(hostFile(ctx.host.src, m[2])).mode & 0o777).toString(8);
      const r = onHost(ctx.host.src, m[1].split(' '));
      assert.equal(r.code, 0, `operator restore failed: ${r.stderr}`);
      return `operator ran \`${m[1].replace(/\/\S+\//, '…/')}\` (archive mode ${mode}): container back`;
    },
  },
  {
    fault: 'destination restore fails AND the source cannot restore during rollback, archive encrypted',
    where: 'restore (destination), then rollback (source); archive.encryption aes-256-gcm',
    top: { retry: { backoffMs: 200, attempts: { restore: 2, rollback: 3 } } },
    podman: { dst: { failOn: 'container restore', message: BROKEN }, src: { failOn: 'container restore', message: BROKEN } },
    async prepare(cfg, undo) {
      const key = archiveKeyOnHosts(cfg.prefix, ['a', 'c']);
      undo(() => key.remove());
      const c = cfg.config;
      c.archive = { encryption: 'aes-256-gcm', keyFile: key.path };
      writeFileSync(cfg.file, JSON.stringify(c, null, 2), { mode: 0o600 });
      return cfg;
    },
    async inject() {
      return undefined;
    },
    expect: ['needs-attention'],
    message: /encrypted checkpoint archive is kept on a at \/\S+\.enc: restore it there with `ferry archive decrypt \/\S+ \/\S+` then `podman (--runtime-flag \S+ )?container restore --import \/\S+`, and delete the plain copy/,
    keptArchive: 'src',
    // The by-hand recovery the message describes, with the CLI as installed on the host.
    async operator(ctx, rec) {
      const d = /`ferry archive decrypt (\/\S+) (\/\S+)`/.exec(rec.error ?? '');
      const r = /`(podman (?:--runtime-flag \S+ )?container restore --import (\/\S+))`/.exec(rec.error ?? '');
      assert.ok(d && r, `no commands in: ${rec.error}`);
      const head = readFileSync(hostFile(ctx.host.src, d[1])).subarray(0, 8).toString('latin1');
      const dec = onHost(ctx.host.src, [process.execPath, FERRY_BIN, '--config', ctx.cfg.file, 'archive', 'decrypt', d[1], d[2]]);
      assert.equal(dec.code, 0, `ferry archive decrypt failed: ${dec.stderr}`);
      const res = onHost(ctx.host.src, r[1].split(' '));
      assert.equal(res.code, 0, `operator restore failed: ${res.stderr}`);
      onHost(ctx.host.src, ['rm', '-f', '--', d[2]]);
      return `kept archive starts "${head}"; operator ran \`ferry archive decrypt\` then \`podman container restore --import\`: container back`;
    },
  },
];
