import { writeFileSync } from 'node:fs';
import Mocha from 'mocha';

/**
 * Mocha's spec reporter plus one plain closing line ("N passed, N failed, N skipped"),
 * the form CI reads to know that tests ran and how they ended. A lane of scripts/test.sh
 * (FERRY_TEST_STATS set) writes its counts to that file instead: the script prints one
 * line for all lanes, so CI never reads one lane's count as the suite's.
 */
class SummaryReporter extends Mocha.reporters.Spec {
  constructor(runner: Mocha.Runner, options?: Mocha.MochaOptions) {
    super(runner, options);
    runner.once('end', () => {
      const counts = { passed: runner.stats?.passes ?? 0, failed: runner.stats?.failures ?? 0, skipped: runner.stats?.pending ?? 0 };
      const statsFile = process.env.FERRY_TEST_STATS;
      if (statsFile) writeFileSync(statsFile, JSON.stringify(counts));
      else process.stdout.write(`\ntests: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped\n`);
    });
  }
}

export = SummaryReporter;
