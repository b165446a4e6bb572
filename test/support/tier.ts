/**
 * `npm test` is what CI runs, and must stay well inside its time budget on a 2-core machine.
 * Scenarios that repeat, with another service, fault or size, what a test in the default set
 * already proves are "extended": they run with FERRY_TEST_EXTENDED=1 (`npm run test:extended`),
 * and show as pending otherwise, so nobody mistakes a skipped scenario for a passing one.
 */
export const EXTENDED = process.env.FERRY_TEST_EXTENDED === '1';

/** `it` in the extended set: pending unless FERRY_TEST_EXTENDED=1. */
export const itExtended = EXTENDED ? it : it.skip;

/** `describe` in the extended set: pending unless FERRY_TEST_EXTENDED=1 (its hooks do not run). */
export const describeExtended = EXTENDED ? describe : describe.skip;
