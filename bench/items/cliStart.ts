import { FERRY_CLI } from '../lib/cli';
import { timed } from '../lib/clock';
import { run } from '../lib/shell';
import { summarize } from '../lib/stats';
import type { ItemResult } from './types';

const BUDGET_MS = 150;

/**
 * Item 9: `ferry --help` as a process, start to exit, against the 150 ms budget; a bare
 * `node -e 0` is timed in the same repetitions, as the floor no CLI can go below.
 */
export async function cliStart(reps: number): Promise<ItemResult[]> {
  const helpMs: number[] = [];
  const nodeMs: number[] = [];
  // One untimed run of each first: the files are in the page cache for every timed one.
  for (let i = -1; i < reps; i++) {
    const help = await timed(() => run([process.execPath, ...FERRY_CLI, '--help']));
    if (help.value.code !== 0) throw new Error(`ferry --help exited ${help.value.code}: ${help.value.stderr.trim()}`);
    const bare = await timed(() => run([process.execPath, '-e', '0']));
    if (i < 0) continue;
    helpMs.push(help.ms);
    nodeMs.push(bare.ms);
  }
  return [
    {
      item: 9,
      title: '`ferry --help`, wall clock ÷ 150 ms',
      goal: '≤ 1.0',
      ratio: summarize(helpMs.map((ms) => ms / BUDGET_MS)),
      met: (r) => r <= 1.0,
      details: { helpMs: summarize(helpMs), bareNodeMs: summarize(nodeMs) },
    },
  ];
}
