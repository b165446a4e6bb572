import { strict as assert } from 'node:assert';
import { statSync } from 'node:fs';
import { onHost } from '../support/bed';
import { hostFile } from '../support/faults';
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
    message: /checkpoint archive is kept on a at \/\S+: restore it there with `podman container restore --import \/\S+`/,
    keptArchive: 'src',
    // What the message tells a person to do, done here as they would: the container must come back whole.
    async operator(ctx, rec) {
      const m = /`(podman container restore --import (\/\S+))`/.exec(rec.error ?? '');
      assert.ok(m, `no command in: ${rec.error}`);
      const mode = (statSync(hostFile(ctx.host.src, m[2])).mode & 0o777).toString(8);
      const r = onHost(ctx.host.src, m[1].split(' '));
      assert.equal(r.code, 0, `operator restore failed: ${r.stderr}`);
      return `operator ran \`${m[1].replace(/\/\S+\//, '…/')}\` (archive mode ${mode}): container back`;
    },
  },
];
