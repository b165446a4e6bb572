import { hostInfo, uid } from '../../test/support/bed';
import { now } from '../lib/clock';
import { removeEverywhere, freshPort, startHttpd } from '../lib/containers';
import { FERRY_CLI } from '../lib/cli';
import { startFerry, waitDone } from '../lib/ferry';
import { firstAnswer } from '../lib/http';
import { rawCleanup, rawMigrate } from '../lib/raw';
import { run } from '../lib/shell';
import { ratios, summarize } from '../lib/stats';
import type { ItemResult } from './types';

const ORDER = ['ferry', 'raw', 'cli'] as const;

/**
 * Items 1 and 2: one httpd migration a→b, Ferry end to end vs the three hand-typed
 * commands, and the downtime of each (frozen → first successful GET on b, polled from
 * outside every 10 ms the same way for both). Item 10: the command a user types,
 * `ferry migrate NAME --from a --to b --wait`, timed as a process from start to exit, against
 * the same raw commands. The order rotates between repetitions.
 */
export async function single(reps: number): Promise<ItemResult[]> {
  const rig = await startFerry(['a', 'b']);
  const ferryE2e: number[] = [];
  const ferryDown: number[] = [];
  const ferryOwnDown: number[] = [];
  const cliE2e: number[] = [];
  const cliRecordMs: number[] = [];
  const rawE2e: number[] = [];
  const rawDown: number[] = [];
  const rawParts: { checkpointMs: number; copyMs: number; restoreMs: number }[] = [];
  const ferrySteps: Record<string, number[]> = {};
  const b = hostInfo('b').address;
  try {
    // One untimed migration first (not in a one-repetition smoke run): connections, page cache and podman's caches warm up the same for both.
    for (let i = reps > 1 ? -1 : 0; i < reps; i++) {
      const k = ((i % ORDER.length) + ORDER.length) % ORDER.length;
      for (const which of [...ORDER.slice(k), ...ORDER.slice(0, k)]) {
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
          } else if (which === 'cli') {
            const t0 = now();
            const out = await run([process.execPath, ...FERRY_CLI, 'migrate', name, '--from', 'a', '--to', 'b', '--wait'], { env: { ...process.env, FERRY_CONFIG: rig.cfg.file } });
            const ms = now() - t0;
            const id = /^migration (\S+):/m.exec(out.stdout)?.[1];
            const rec = id ? await rig.client.get(id) : undefined;
            if (out.code !== 0 || rec?.state !== 'succeeded') throw new Error(`ferry migrate exited ${out.code} (${rec?.state ?? 'no record'}): ${out.stderr.trim()}`);
            await poll.promise;
            if (i < 0) continue;
            cliE2e.push(ms);
            if (rec.finishedAt) cliRecordMs.push(rec.finishedAt - rec.createdAt);
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
    {
      item: 10,
      title: '`ferry migrate --wait` as a process, start to exit ÷ raw commands',
      goal: '≤ 1.0',
      ratio: ratios(cliE2e, rawE2e),
      met: (r) => r <= 1.0,
      details: { cliMs: summarize(cliE2e), rawMs: summarize(rawE2e), recordMs: summarize(cliRecordMs) },
    },
  ];
}
