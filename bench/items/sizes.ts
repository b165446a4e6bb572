import { ratios, summarize } from '../lib/stats';
import { ferryRun, Run } from './memory';
import type { ItemResult } from './types';

/** The small container every size is compared with: memhog holding 1 MiB beside its httpd. */
const TINY_MIB = 1;

/**
 * Items 11 and 12 (issue #13): does `ferry migrate --memory-copy post-copy` keep the downtime
 * flat as memory grows? The same memhog workload (rewriting 10 %/s) at 1 MiB, then at each of
 * `sizes`, downtime polled from outside the same way; each size's ratio is taken against the
 * tiny run of the same repetition index. Details give CRIU's own freeze and the risk window.
 */
export async function sizeIndependence(reps: number, memhog: string, sizes: readonly number[]): Promise<ItemResult[]> {
  const tiny = await ferryRun('zstd', reps, memhog, TINY_MIB, undefined, 'post-copy');
  const out: ItemResult[] = [];
  for (const [i, mib] of sizes.entries()) {
    const runs = await ferryRun('zstd', reps, memhog, mib, undefined, 'post-copy');
    out.push({
      item: 11 + i,
      title: `post-copy downtime, ${mib} MiB dirtying container ÷ ${TINY_MIB} MiB (size independence)`,
      goal: '≤ 1.5',
      ratio: ratios(
        runs.map((r) => r.downMs),
        tiny.map((r) => r.downMs),
      ),
      met: (r) => r <= 1.5,
      details: { [`${mib}MiB`]: describe(runs), [`${TINY_MIB}MiB`]: describe(tiny) },
    });
  }
  return out;
}

function describe(runs: Run[]) {
  return {
    downtimeMs: summarize(runs.map((r) => r.downMs)),
    criuFrozenMs: summarize(runs.map((r) => r.criuFrozenMs ?? NaN)),
    checkpointStepMs: summarize(runs.map((r) => r.steps?.checkpoint ?? NaN)),
    allPagesMs: summarize(runs.map((r) => r.allPagesMs ?? NaN)),
  };
}
