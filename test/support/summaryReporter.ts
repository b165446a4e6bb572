import { writeFileSync } from 'node:fs';
import Mocha from 'mocha';

/**
 * Mocha's spec reporter plus one plain closing line ("N passed, N failed, N skipped"),
 * the form CI reads to know that tests ran and how they ended. A lane of scripts/test.sh
 * (FERRY_TEST_STATS set) writes its counts to that file instead: the script prints one
 * line for all lanes, so CI never reads one lane's count as the suite's.
 */
class SummaryReporter extends Mocha.reporters.Spec {
  /** The closing line, in the one form CI reads; scripts/test.sh prints it for its lanes' sum. */
  static line(c: { passed: number; failed: number; skipped: number }): string {
    return `\ntests: ${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped\n`;
  }

  constructor(runner: Mocha.Runner, options?: Mocha.MochaOptions) {
    super(runner, options);
    // Each file's wall time, hooks included (where a lane's minutes go; docs/testbed.md).
    const files: Record<string, number> = {};
    const started = new Map<Mocha.Suite, number>();
    runner.on('suite', (suite) => {
      if (suite.parent?.root) started.set(suite, Date.now());
    });
    runner.on('suite end', (suite) => {
      const t0 = started.get(suite);
      const file = suite.file?.replace(/^.*\/dist\/test\//, '') ?? suite.title;
      if (t0 !== undefined) files[file] = (files[file] ?? 0) + Date.now() - t0;
    });
    runner.once('end', () => {
      const counts = { passed: runner.stats?.passes ?? 0, failed: runner.stats?.failures ?? 0, skipped: runner.stats?.pending ?? 0 };
      const statsFile = process.env.FERRY_TEST_STATS;
      if (statsFile) writeFileSync(statsFile, JSON.stringify({ ...counts, files }));
      else process.stdout.write(SummaryReporter.line(counts));
    });
  }
}

export = SummaryReporter;
