import { strict as assert } from 'node:assert';
import { makePlan, type Plan } from './plan';
import { planTitle, runOne } from './run';
import { EXTENDED } from '../support/tier';

/**
 * Failures the randomized nemesis found, each pinned down as a fixed plan (no randomness
 * left but timing), so it is checked on every run and not only when a seed happens to hit it.
 */
const REGRESSIONS: { name: string; foundBy: string; plan: Plan; settleMs: number; open?: string; extended?: boolean }[] = [
  {
    // Found by seeds 9011 (cleanup job drained while the source worker was down: `running`
    // forever, locks held, source copy and archives kept) and 7005 (a preflight job removed:
    // `queued` forever with its locks).
    name: 'a step job removed from the queue (as Bull Board can) still lets the migration end',
    foundBy: 'seeds 9011, 7005',
    plan: {
      seed: 0,
      mb: 0,
      src: 'a',
      dst: 'b',
      third: 'c',
      // While verify runs on b, cleanup will be queued on a: the paused queue holds it for removal.
      moment: { event: 'step-started', step: 'verify', delayMs: 0 },
      faults: [{ fault: { kind: 'queue-admin', role: 'src', action: 'remove-waiting', holdMs: 8000 }, afterMs: 0 }],
    },
    settleMs: 60_000,
  },
  {
    // Found by seed 7020 (run with the AOF-losing crash): the crash rewound the record to
    // preflight and lost the checkpoint job, its frozenAt mark and the deadline job, while
    // podman had already frozen the container; preflight ran again, found it "not running"
    // and ended the migration `failed`, leaving the container exited on the source: lost.
    name: 'a Redis crash that loses the last second during checkpoint never leaves the container frozen',
    foundBy: 'seed 7020',
    plan: {
      seed: 0,
      mb: 16,
      src: 'c',
      dst: 'b',
      third: 'a',
      moment: { event: 'progress', step: 'checkpoint', delayMs: 100 },
      faults: [{ fault: { kind: 'redis-crash', downMs: 400 }, afterMs: 0 }],
    },
    settleMs: 60_000,
  },
  {
    // Found by seed 200000: the migration had ended well (cleanup removed the source copy)
    // when a Redis crash lost the last second, rewinding the record to checkpoint; the
    // checkpoint found no container and rollback took the running destination copy away.
    name: 'a Redis crash that rewinds a finished migration never takes the destination copy away',
    foundBy: 'seed 200000',
    plan: {
      seed: 0,
      mb: 0,
      src: 'b',
      dst: 'a',
      third: 'c',
      moment: { event: 'step-started', step: 'cleanup', delayMs: 150 },
      faults: [{ fault: { kind: 'redis-crash', downMs: 600 }, afterMs: 0 }],
    },
    settleMs: 60_000,
  },
  {
    // Found by seed 302031: the source's worker was killed without its children while
    // podman was dumping; podman then waited for ever to open the export pipe that nobody
    // read, holding the container's lock, and the rollback hung behind it: frozen for good.
    name: 'a worker killed without its children during checkpoint leaves no podman export holding the container',
    foundBy: 'seed 302031',
    plan: {
      seed: 0,
      mb: 16,
      src: 'c',
      dst: 'a',
      third: 'b',
      frozenMs: 4000,
      moment: { event: 'progress', step: 'checkpoint', delayMs: 42 },
      faults: [
        { fault: { kind: 'kill', role: 'src', tree: false, downMs: 2668 }, afterMs: 0 },
        { fault: { kind: 'cancel' }, afterMs: 2072 },
      ],
    },
    settleMs: 90_000,
  },
  {
    // Found by seed 102036: a Redis crash during cleanup rewound the record to before the
    // freeze, and a cancel then ended it "cancelled before the container was touched" while
    // the container ran on the destination. A checkpoint retry would even have restored it
    // on the source. The source's marker now counts, and the destination is asked first.
    name: 'a Redis crash that rewinds a moved container to before the freeze neither doubles it nor calls it untouched',
    foundBy: 'seed 102036',
    // It used to end needing attention, with the stopped copy kept on the source, when the
    // crash rewound the record to before the freeze: the container runs on the destination
    // with its own podman ID, so the migration now goes on from verify (AlreadyMovedError).
    plan: {
      seed: 0,
      mb: 0,
      src: 'b',
      dst: 'a',
      third: 'c',
      moment: { event: 'step-started', step: 'cleanup', delayMs: 0 },
      faults: [
        { fault: { kind: 'redis-crash', downMs: 1482 }, afterMs: 0 },
        { fault: { kind: 'cancel' }, afterMs: 1509 },
      ],
    },
    settleMs: 90_000,
  },
  {
    // Found by seed 305002: the source's queue was paused and drained, and a Redis crash
    // lost the checkpoint's completion (and with it, maybe, the resume): the container
    // stayed frozen with nothing left to run. A missing or half-lost step job is queued
    // again (under a repair id when its own cannot be removed), and a pause that keeps a
    // container frozen past its deadline is lifted.
    name: 'a drained source queue and a Redis crash during checkpoint never leave the container frozen',
    foundBy: 'seeds 305002, 410022',
    // The crash kept the pause and lost the resume: queue c stayed paused, with the deadline
    // job in it. The repair loop now resumes its own queue while a container is frozen for a
    // live migration (engine/repair.ts, repairPaused): not only past the deadline, which is
    // 15 minutes by default (seed 410022 ran with it).
    plan: {
      seed: 0,
      mb: 0,
      src: 'c',
      dst: 'b',
      third: 'a',
      moment: { event: 'step-started', step: 'checkpoint', delayMs: 0 },
      faults: [
        { fault: { kind: 'queue-admin', role: 'src', action: 'drain', holdMs: 1500 }, afterMs: 0 },
        { fault: { kind: 'redis-crash', downMs: 1702 }, afterMs: 1066 },
      ],
    },
    settleMs: 90_000,
  },
  {
    // Found by seed 730014: a cancel took the frozen container back while podman was
    // exporting (CRIU had dumped and stopped it; podman never marked it checkpointed), and a
    // Redis crash rewound the record to before the freeze. The checkpoint's retry and then
    // rollback found an exited container the record did not know was frozen: "stopped on its
    // own", "holds no checkpoint", needs-attention with the container down. This host's
    // frozen marker now counts as much as the record's frozenAt.
    name: 'a cancel during the export and a Redis crash that forgets the freeze still bring the container back',
    foundBy: 'seed 730014',
    extended: false,
    plan: makePlan(730014),
    settleMs: 90_000,
  },
];

describe('nemesis regressions: what randomized runs found, as fixed plans', function () {
  this.timeout(300_000);
  for (const r of REGRESSIONS) {
    // npm test runs the one marked `extended: false` (the latest); FERRY_TEST_EXTENDED=1 runs every one.
    (r.open || (r.extended !== false && !EXTENDED) ? it.skip : it)(`${r.name} (${r.foundBy}; ${planTitle(r.plan)})`, async () => {
      const rec = await runOne(r.plan, { settleMs: r.settleMs });
      assert.equal(rec.verdict, 'ok', `${rec.verdict} (${rec.outcome})\n  ${rec.problems.join('\n  ')}\n  notes: ${rec.notes.join('; ')}\n  evidence: ${rec.evidence}`);
    });
  }
});
