import { hostInfo, uid } from '../../test/support/bed';
import { now } from '../lib/clock';
import { removeEverywhere, freshPort, startHttpd } from '../lib/containers';
import { startFerry, waitDone } from '../lib/ferry';
import { firstAnswer } from '../lib/http';
import { rawCleanup, rawMigrate } from '../lib/raw';
import { ratios, summarize } from '../lib/stats';
import type { ItemResult } from './types';

/**
 * Items 1 and 2: one httpd migration a→b, Ferry end to end vs the three hand-typed
 * commands, and the downtime of each (frozen → first successful GET on b, polled from
 * outside every 10 ms the same way for both). Order alternates between repetitions.
 */
export async function single(reps: number): Promise<ItemResult[]> {
  const rig = await startFerry(['a', 'b']);
  const ferryE2e: number[] = [];
  const ferryDown: number[] = [];
  const ferryOwnDown: number[] = [];
  const rawE2e: number[] = [];
  const rawDown: number[] = [];
  const rawParts: { checkpointMs: number; copyMs: number; restoreMs: number }[] = [];
  const ferrySteps: Record<string, number[]> = {};
  const b = hostInfo('b').address;
  try {
    // One untimed migration first (not in a one-repetition smoke run): connections, page cache and podman's caches warm up the same for both.
    for (let i = reps > 1 ? -1 : 0; i < reps; i++) {
      for (const which of i % 2 === 0 ? ['ferry', 'raw'] : ['raw', 'ferry']) {
        const name = `bench1-${uid()}`;
        const port = freshPort();
        await startHttpd('a', name, port);
        try {
          const poll = firstAnswer(b, port);
          if (which === 'ferry') {
            const t0 = now();
            const created = await rig.client.migrate({ container: name, from: 'a', to: 'b' });
            const rec = await waitDone(rig.client, created.id);
            if (rec.state !== 'succeeded') throw new Error(`ferry migration ended ${rec.state}: ${rec.error}`);
            const answered = await poll.promise;
            if (i < 0) continue;
            ferryE2e.push((rec.finishedAt ?? now()) - t0);
            if (answered && rec.frozenAt) ferryDown.push(answered - rec.frozenAt);
            if (rec.answeredAt && rec.frozenAt) ferryOwnDown.push(rec.answeredAt - rec.frozenAt);
            for (const h of rec.history) if (h.ok && h.finishedAt) (ferrySteps[h.step] ??= []).push(h.finishedAt - h.startedAt);
          } else {
            const r = await rawMigrate(name, 'a', 'b');
            const answered = await poll.promise;
            if (i < 0) continue;
            rawE2e.push(r.totalMs);
            if (answered) rawDown.push(answered - r.frozenAt);
            rawParts.push(r);
          }
        } finally {
          await rawCleanup(name, 'a', 'b');
          await removeEverywhere([name]);
        }
      }
    }
  } finally {
    await rig.close();
  }
  const steps = Object.fromEntries(Object.entries(ferrySteps).map(([k, v]) => [k, summarize(v)]));
  return [
    {
      item: 1,
      title: 'One httpd migration, end to end: Ferry ÷ raw commands',
      goal: '≤ 1.0',
      ratio: ratios(ferryE2e, rawE2e),
      met: (r) => r <= 1.0,
      details: {
        ferryMs: summarize(ferryE2e),
        rawMs: summarize(rawE2e),
        rawCheckpointMs: summarize(rawParts.map((p) => p.checkpointMs)),
        rawScpMs: summarize(rawParts.map((p) => p.copyMs)),
        rawRestoreMs: summarize(rawParts.map((p) => p.restoreMs)),
        ferryStepMs: steps,
      },
    },
    {
      item: 2,
      title: 'Downtime (frozen → first answer on b): Ferry ÷ raw commands',
      goal: '≤ 1.0',
      ratio: ratios(ferryDown, rawDown),
      met: (r) => r <= 1.0,
      details: { ferryMs: summarize(ferryDown), rawMs: summarize(rawDown), ferrySelfReportedMs: summarize(ferryOwnDown) },
    },
  ];
}
