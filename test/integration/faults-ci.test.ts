import { faultTests } from '../faults/scenario';
import { KILLS } from '../faults/kills';
import { NETWORK } from '../faults/network';
import { STORAGE } from '../faults/storage';
import { ROLLBACKS } from '../faults/rollbacks';
import { CONFLICTS } from '../faults/conflicts';
import { restartMidBatch } from '../faults/redisFaults';
import { EXTENDED, itExtended } from '../support/tier';

/**
 * The CI subset of the fault suite (test/faults), once each: about 3 minutes. The full
 * suite, every fault, FERRY_FAULT_RUNS times each:
 *   npm run build && FERRY_FAULT_RUNS=3 npx mocha --exit 'dist/test/faults/**\/*.test.js'
 */
const pick = <T extends { where: string }>(list: T[], ...where: RegExp[]) => list.filter((s) => where.some((w) => w.test(s.where)));

describe('fault suite, CI subset (full suite: dist/test/faults)', function () {
  this.timeout(300_000);
  faultTests(
    [
      // Kills before the freeze (preflight) and of the transfer step are in the full suite and
      // among the nemesis's random kills; CI keeps the ones around the freeze and the rollback.
      // npm test: one kill inside the freeze and the double rollback failure (the rest of the
      // exactly-once and rollback paths have their own tests). All of it with FERRY_TEST_EXTENDED=1.
      ...(EXTENDED
        ? [
            ...pick(KILLS, /^checkpoint, right after/, /^checkpoint, 300 ms in/, /^restore, during/, /^rollback/),
            ...pick(NETWORK, /^checkpoint, while/),
            ...pick(STORAGE, /between transfer and restore/, /^restore --import on the destination/, /^checkpoint export \(source\)/),
            ...ROLLBACKS,
            ...CONFLICTS,
          ]
        : [...pick(KILLS, /^checkpoint, 300 ms in/), ...pick(ROLLBACKS, /then rollback \(source\)$/)]),
    ],
    1,
  );
  itExtended('Redis crash (SIGKILL) mid-batch, AOF: every migration still ends right', () => restartMidBatch('SIGKILL'));
});
