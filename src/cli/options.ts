import { InvalidArgumentError } from 'commander';

/**
 * The parser of every numeric option: a whole number from min to max, or commander reports
 * "option '--limit <n>' argument 'abc' is invalid" and the CLI exits 2 (Number() alone took
 * "abc" as NaN and "0" as "no limit").
 */
export function intOption(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d{1,15}$/.test(value) || n < min || n > max) throw new InvalidArgumentError(`Use a whole number from ${min} to ${max}.`);
    return n;
  };
}

/** Migrations at once (--max-parallel, --per-host), the range plan files accept too. */
export const parallelOption = intOption(1, 1000);
