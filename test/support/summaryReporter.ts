import Mocha from 'mocha';

/**
 * Mocha's spec reporter plus one plain closing line ("N passed, N failed, N skipped"),
 * the form CI reads to know that tests ran and how they ended.
 */
class SummaryReporter extends Mocha.reporters.Spec {
  constructor(runner: Mocha.Runner, options?: Mocha.MochaOptions) {
    super(runner, options);
    runner.once('end', () => {
      const s = runner.stats;
      process.stdout.write(`\ntests: ${s?.passes ?? 0} passed, ${s?.failures ?? 0} failed, ${s?.pending ?? 0} skipped\n`);
    });
  }
}

export = SummaryReporter;
