import { cpus, release } from 'node:os';
import { mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { OUTPUT } from '../test/support/bed';
import { cliStart } from './items/cliStart';
import { dispatch } from './items/dispatch';
import { drain } from './items/drain';
import { encryptionCost } from './items/encryption';
import { memory } from './items/memory';
import { postCopy } from './items/postcopy';

type Compression = 'none' | 'gzip' | 'zstd';
import { single } from './items/single';
import { transferBench } from './items/transfer';
import { sizeIndependence } from './items/sizes';
import type { ItemResult } from './items/types';
import { fmtRatio } from './lib/stats';

/** Sizes of one bench run: full (the figures in docs/benchmarks.md), quick, or a CI smoke run. */
const MODES = {
  full: { comps: ['zstd', 'none', 'gzip'] as Compression[], reps: 5, memReps: 3, mib: 256, sizes: [256, 1024], drainN: 50, drainReps: 1, xferMiB: 1024, xferReps: 3, dispatchN: 1000, dispatchExactN: 100, dispatchWindowMs: 30_000 },
  quick: { comps: ['zstd', 'none', 'gzip'] as Compression[], reps: 3, memReps: 2, mib: 256, sizes: [256, 1024], drainN: 12, drainReps: 1, xferMiB: 256, xferReps: 2, dispatchN: 300, dispatchExactN: 30, dispatchWindowMs: 15_000 },
  smoke: { comps: ['zstd'] as Compression[], reps: 1, memReps: 1, mib: 16, sizes: [16], drainN: 2, drainReps: 1, xferMiB: 16, xferReps: 1, dispatchN: 20, dispatchExactN: 0, dispatchWindowMs: 5_000 },
};

function parseArgs(argv: string[]): { mode: keyof typeof MODES; only: Set<number> | null } {
  let mode: keyof typeof MODES = process.env.FERRY_BENCH_QUICK === '1' ? 'quick' : 'full';
  let only: Set<number> | null = null;
  for (const a of argv) {
    if (a === '--smoke') mode = 'smoke';
    else if (a === '--quick') mode = 'quick';
    else if (a === '--full') mode = 'full';
    else if (a.startsWith('--only=')) only = new Set(a.slice(7).split(',').map(Number));
    else throw new Error(`unknown argument ${a} (use --smoke, --quick, --full, --only=1,2,...)`);
  }
  return { mode, only };
}

function machine(): Record<string, unknown> {
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    kernel: release(),
    memGiB: Math.round(Number(/MemTotal:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0) / 1048576),
    loadAtStart: readFileSync('/proc/loadavg', 'utf8').trim(),
    shared: 'yes: other engineers run tests on the same machine and bed; only ratios measured side by side in this run are comparable',
  };
}

function row(r: ItemResult): string {
  const ratio = r.ratio;
  const verdict = ratio && r.met ? (r.met(ratio.median) ? 'met' : 'NOT met') : '—';
  const shown = r.item === 7 && ratio ? `${ratio.median.toFixed(0)}/s` : ratio ? fmtRatio(ratio) : '—';
  return `| ${r.item} | ${r.title} | ${r.goal} | ${shown} | ${verdict} |`;
}

async function main(): Promise<void> {
  const { mode, only } = parseArgs(process.argv.slice(2));
  const m = MODES[mode];
  const out = join(OUTPUT, 'bench');
  mkdirSync(out, { recursive: true });
  const memhog = process.env.FERRY_BENCH_MEMHOG ?? join(out, 'memhog');
  const want = (i: number) => !only || only.has(i);
  const results: ItemResult[] = [];
  const errors: string[] = [];
  const started = Date.now();
  const step = async (items: number[], fn: () => Promise<ItemResult[]>) => {
    if (!items.some(want)) return;
    const t = Date.now();
    try {
      const rs = await fn();
      for (const r of rs) if (want(r.item)) results.push(r);
      for (const r of rs) if (want(r.item)) console.log(row(r));
    } catch (e: unknown) {
      errors.push(`items ${items.join(',')}: ${(e as Error).stack ?? String(e)}`);
      console.error(`items ${items.join(',')} failed: ${(e as Error).message}`);
    }
    console.error(`(items ${items.join(',')}: ${((Date.now() - t) / 1000).toFixed(0)} s)`);
  };
  console.log(`mode ${mode}`);
  console.log('| # | what | goal | measured (median, min–max, n) | |\n|---|---|---|---|---|');
  await step([1, 2, 10], () => single(m.reps));
  await step([5], () => transferBench(m.xferMiB, m.xferReps, out));
  await step([3, 6], () => memory(m.memReps, memhog, m.mib, m.comps));
  // What post-copy would give, with CRIU directly: podman 4.3 offers no lazy pages.
  await step([3], () => postCopy(m.memReps, memhog, m.mib));
  // Post-copy's downtime at growing sizes, each against a tiny container (issue #13).
  await step([11, 12], () => sizeIndependence(m.memReps, memhog, m.sizes));
  await step([4], () => drain(m.drainN, m.drainReps));
  await step([8], () => encryptionCost(m.memReps, memhog, m.mib));
  // The command people type: `ferry --help` as a process, start to exit.
  await step([9], () => cliStart(mode === 'smoke' ? 3 : 21));
  // A complete small run gives exact Redis commands per migration; the large one, cut off
  // after a window, the submission rate and the completion rate under load.
  if (m.dispatchExactN > 0) await step([7], () => dispatch(m.dispatchExactN, 4, out));
  if (mode !== 'smoke') await step([7], () => dispatch(m.dispatchN, 16, out, { windowMs: m.dispatchWindowMs, submitParallel: 1 }));
  await step([7], () => dispatch(m.dispatchN, 16, out, { windowMs: m.dispatchWindowMs, submitParallel: 50 }));
  const file = join(out, `results-${mode}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(
    file,
    JSON.stringify({ mode, sizes: m, machine: machine(), totalS: Math.round((Date.now() - started) / 1000), results: results.map((r) => ({ ...r, met: r.ratio && r.met ? r.met(r.ratio.median) : null })), errors }, null, 2),
  );
  console.log(`\nfull results: ${file} (${Math.round((Date.now() - started) / 1000)} s)`);
  if (errors.length) {
    console.error(errors.join('\n\n'));
    process.exitCode = 1;
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
