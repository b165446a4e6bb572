import { uid } from '../../test/support/bed';
import { now } from '../lib/clock';
import { freshPort, removeEverywhere, startHttpd } from '../lib/containers';
import { startFerry, waitDone } from '../lib/ferry';
import { rawCleanup, rawLoopScript } from '../lib/raw';
import { inHostShell, must } from '../lib/shell';
import { summarize } from '../lib/stats';
import type { ItemResult } from './types';

async function startMany(prefix: string, n: number): Promise<string[]> {
  const names = Array.from({ length: n }, (_, i) => `${prefix}-${i}-${uid()}`);
  for (const name of names) await startHttpd('a', name, freshPort());
  return names;
}

/**
 * Item 4: drain host a of `n` small httpd containers, half to b and half to c. Ferry:
 * all submitted at once through FerryClient.migrate(), workers on a, b and c at their
 * default concurrency: the engine's own pipelining, without a batch's per-host cap (which
 * `ferry drain` adds by default). Raw: the sequential shell loop a user would write.
 */
export async function drain(n: number, reps: number): Promise<ItemResult[]> {
  const ferryMs: number[] = [];
  const rawMs: number[] = [];
  const failures: string[] = [];
  const rig = await startFerry(['a', 'b', 'c']);
  try {
    for (let r = 0; r < reps; r++) {
      const targets = Array.from({ length: n }, (_, i) => (i % 2 ? 'c' : 'b'));
      // Raw loop
      let names = await startMany('bench4r', n);
      try {
        const t0 = now();
        await must(inHostShell('a', rawLoopScript(names, targets)));
        rawMs.push(now() - t0);
      } finally {
        for (const [i, name] of names.entries()) await rawCleanup(name, 'a', targets[i]);
        await removeEverywhere(names);
      }
      // Ferry
      names = await startMany('bench4f', n);
      try {
        const t0 = now();
        const ids = [];
        for (const [i, name] of names.entries()) ids.push((await rig.client.migrate({ container: name, from: 'a', to: targets[i] })).id);
        const recs = await Promise.all(ids.map((id) => waitDone(rig.client, id, 900_000)));
        ferryMs.push(Math.max(...recs.map((x) => x.finishedAt ?? now())) - t0);
        for (const x of recs) if (x.state !== 'succeeded') failures.push(`${x.container}: ${x.state} ${x.error ?? ''}`);
      } finally {
        await removeEverywhere(names);
      }
    }
  } finally {
    await rig.close();
  }
  const ratio = summarize(ferryMs.map((f, i) => f / rawMs[i]));
  return [
    {
      item: 4,
      title: `Drain of ${n} small containers a → b, c: Ferry ÷ sequential raw loop`,
      goal: '≤ 0.5',
      ratio,
      met: (x) => x <= 0.5,
      details: { ferryMs: summarize(ferryMs), rawMs: summarize(rawMs), perContainerFerryMs: summarize(ferryMs.map((f) => f / n)), perContainerRawMs: summarize(rawMs.map((f) => f / n)), workerConcurrency: 4 },
      notes: failures.length ? [`${failures.length} Ferry migrations did not succeed: ${failures.slice(0, 3).join('; ')}`] : undefined,
    },
  ];
}
