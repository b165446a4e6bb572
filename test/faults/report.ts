import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { OUTPUT } from '../support/bed';

/**
 * Turns test-output/fault-results.jsonl (one line per fault run, written by the suite)
 * into the Markdown table of docs/reliability.md:
 *   node dist/test/faults/report.js [results.jsonl]
 */
interface Run {
  fault: string;
  where: string;
  ok: boolean;
  outcome: string;
  note?: string;
  ms: number;
}

const file = process.argv[2] ?? join(OUTPUT, 'fault-results.jsonl');
if (!existsSync(file)) {
  process.stderr.write(`no results at ${file}: run the fault suite first\n`);
  process.exit(1);
}
const runs = readFileSync(file, 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((l) => JSON.parse(l) as Run);
const groups = new Map<string, Run[]>();
for (const r of runs) {
  const k = `${r.fault}\u0000${r.where}`;
  groups.set(k, [...(groups.get(k) ?? []), r]);
}
const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
// Ids, hashes and counter values differ per run; without them equal outcomes group together.
const norm = (s: string) =>
  s
    .replace(/counter \d+→\d+/g, 'counter went on')
    .replace(/m-[a-z0-9]+-[a-f0-9]{8}/g, '<id>')
    .replace(/\b[a-f0-9]{64}\b/g, '<sha256>')
    .replace(/flt-[a-z0-9]+/g, '<name>')
    .replace(/ \| runs on c, counter went on/g, '');
const counted = (xs: string[]) => {
  const m = new Map<string, number>();
  for (const x of xs) m.set(x, (m.get(x) ?? 0) + 1);
  return [...m].map(([x, n]) => (m.size > 1 || n > 1 ? `${x} (×${n})` : x));
};
const lines = ['| fault | where injected | runs | invariant held | outcome | notes |', '|---|---|---|---|---|---|'];
for (const [, list] of groups) {
  const ok = list.filter((r) => r.ok).length;
  const outcomes = counted(list.map((r) => norm(r.outcome))).join('; ');
  const notes = counted(list.map((r) => norm(r.note ?? '').slice(0, 200)).filter(Boolean)).join('; ');
  lines.push(`| ${cell(list[0].fault)} | ${cell(list[0].where)} | ${list.length} | ${ok}/${list.length} | ${cell(outcomes)} | ${cell(notes)} |`);
}
process.stdout.write(`${lines.join('\n')}\n\n${groups.size} fault/place combinations, ${runs.length} runs, ${runs.filter((r) => !r.ok).length} with the invariant broken or the test in error.\n`);
