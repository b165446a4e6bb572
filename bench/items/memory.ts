import { hostInfo, uid } from '../../test/support/bed';
import { now, sleep } from '../lib/clock';
import { freshPort, removeEverywhere, startMemhog } from '../lib/containers';
import { startFerry, waitDone } from '../lib/ferry';
import { firstAnswer } from '../lib/http';
import { rawCleanup, rawMigrate } from '../lib/raw';
import { inHost, run } from '../lib/shell';
import { ratios, summarize } from '../lib/stats';
import type { ItemResult } from './types';
import type { MemoryCopy, MigrationRecord } from '../../src/engine/model';

type Compression = 'none' | 'gzip' | 'zstd';

export interface Run {
  e2eMs: number;
  downMs: number;
  bytes: number;
  steps?: Record<string, number>;
  /** Post-copy: from the freeze until the destination held every page (the source had to stay up). */
  allPagesMs?: number;
  /** CRIU's own freeze of the dump (`frozen_time` of its stats), when the checkpoint step reported it. */
  criuFrozenMs?: number;
}

function criuFrozenMs(rec: MigrationRecord): number | undefined {
  const us = rec.history.find((h) => h.ok && h.step === 'checkpoint')?.result?.frozenUs;
  return typeof us === 'number' ? us / 1000 : undefined;
}

export async function ferryRun(compression: Compression, reps: number, memhog: string, mib: number, archive?: Record<string, unknown>, memoryCopy: MemoryCopy = 'plain'): Promise<Run[]> {
  const rig = await startFerry(['a', 'b'], { compression, archive });
  const out: Run[] = [];
  try {
    for (let i = 0; i < reps; i++) {
      const name = `bench3-${uid()}`;
      const port = freshPort();
      try {
        await startMemhog('a', name, port, memhog, mib);
        await sleep(2000); // memhog fills its memory first
        const poll = firstAnswer(hostInfo('b').address, port);
        const t0 = now();
        const created = await rig.client.migrate({ container: name, from: 'a', to: 'b', memoryCopy });
        const rec = await waitDone(rig.client, created.id);
        const answered = await poll.promise;
        if (rec.state !== 'succeeded') throw new Error(`ferry (${compression}, ${memoryCopy}) ended ${rec.state}: ${rec.error}`);
        if (memoryCopy === 'post-copy' && rec.postCopy?.mode !== 'lazy') throw new Error(`ferry post-copy moved memory plain: ${rec.memoryCopyReason}`);
        out.push({
          e2eMs: (rec.finishedAt ?? now()) - t0,
          downMs: answered && rec.frozenAt ? answered - rec.frozenAt : NaN,
          bytes: rec.archive?.bytes ?? NaN,
          allPagesMs: rec.postCopy?.allPagesAt && rec.frozenAt ? rec.postCopy.allPagesAt - rec.frozenAt : undefined,
          criuFrozenMs: criuFrozenMs(rec),
          steps: Object.fromEntries(rec.history.filter((h) => h.ok && h.finishedAt).map((h) => [h.step, (h.finishedAt ?? 0) - h.startedAt])),
        });
      } finally {
        await removeEverywhere([name]);
      }
    }
  } finally {
    await rig.close();
  }
  return out;
}

async function rawRun(reps: number, memhog: string, mib: number): Promise<Run[]> {
  const out: Run[] = [];
  for (let i = 0; i < reps; i++) {
    const name = `bench3r-${uid()}`;
    const port = freshPort();
    try {
      await startMemhog('a', name, port, memhog, mib);
      await sleep(2000);
      const poll = firstAnswer(hostInfo('b').address, port);
      const r = await rawMigrate(name, 'a', 'b');
      const answered = await poll.promise;
      const size = await run(inHost('b', ['stat', '-c', '%s', `/var/lib/ferry/archives/raw-${name}.tar`]));
      out.push({ e2eMs: r.totalMs, downMs: answered ? answered - r.frozenAt : NaN, bytes: Number(size.stdout.trim()) });
    } finally {
      await rawCleanup(name, 'a', 'b');
      await removeEverywhere([name]);
    }
  }
  return out;
}

/** What pre-copy says on this host: the exact refusal, kept in the report. */
async function tryPreCopy(memhog: string): Promise<string> {
  const name = `bench3p-${uid()}`;
  try {
    await startMemhog('a', name, freshPort(), memhog, 16);
    const dirty = await run(inHost('a', ['criu', 'check', '--feature', 'mem_dirty_track']));
    const uffd = await run(inHost('a', ['criu', 'check', '--feature', 'uffd-noncoop']));
    const pre = await run(inHost('a', ['podman', 'container', 'checkpoint', '--pre-checkpoint', '--export', `/var/lib/ferry/archives/pre-${name}.tar`, name]));
    await run(inHost('a', ['rm', '-f', `/var/lib/ferry/archives/pre-${name}.tar`]));
    const line = (r: { code: number | null; stdout: string; stderr: string }) => `exit ${r.code}: ${(r.stderr + r.stdout).trim().split('\n').slice(-1)[0] ?? ''}`;
    return `criu check --feature mem_dirty_track → ${line(dirty)}; criu check --feature uffd-noncoop → ${line(uffd)}; podman container checkpoint --pre-checkpoint → ${line(pre)}`;
  } finally {
    await removeEverywhere([name]);
  }
}

/**
 * Items 3 and 6: a container holding and dirtying `mib` MiB. Downtime and end-to-end time
 * with each compression through Ferry (which streams the archive while it is written),
 * the hand-typed sequence (write, then scp, then restore) as the plain-checkpoint
 * baseline, and what pre-copy / post-copy can do on this host.
 */
export async function memory(reps: number, memhog: string, mib: number, compressions: Compression[] = ['zstd', 'none', 'gzip']): Promise<ItemResult[]> {
  const preCopy = await tryPreCopy(memhog);
  const raw = await rawRun(reps, memhog, mib);
  const byComp: Record<Compression, Run[]> = { none: [], gzip: [], zstd: [] };
  for (const c of compressions) byComp[c] = await ferryRun(c, reps, memhog, mib);
  const lazy = await ferryRun('zstd', reps, memhog, mib, undefined, 'post-copy');
  const pick = (rs: Run[], k: 'e2eMs' | 'downMs' | 'bytes') => rs.map((r) => r[k]);
  const table = Object.fromEntries(
    compressions.map((c) => [
      c,
      {
        stepMs: Object.fromEntries(['checkpoint', 'transfer', 'restore', 'verify'].map((k) => [k, summarize(byComp[c].map((r) => r.steps?.[k] ?? NaN))])),
        archiveBytes: summarize(pick(byComp[c], 'bytes')),
        e2eMs: summarize(pick(byComp[c], 'e2eMs')),
        downtimeMs: summarize(pick(byComp[c], 'downMs')),
      },
    ]),
  );
  const best = compressions.reduce<Compression>((a, c) => (summarize(pick(byComp[c], 'e2eMs')).median < summarize(pick(byComp[a], 'e2eMs')).median ? c : a), 'zstd');
  return [
    {
      item: 3,
      title: `${mib} MiB dirtying container, downtime: ferry migrate --memory-copy post-copy ÷ plain checkpoint typed by hand`,
      goal: '≤ 0.5',
      notes: [
        `Pre-copy on this host: ${preCopy}`,
        'Downtime polled from outside: freeze to first HTTP answer on the destination. Post-copy through Ferry (docs/post-copy.md) ÷ the hand-typed plain checkpoint (write, scp, restore); details also give Ferry plain (zstd, streamed) and the post-copy risk window (freeze until every page was on the destination).',
      ],
      ratio: ratios(pick(lazy, 'downMs'), pick(raw, 'downMs')),
      met: (r) => r <= 0.5,
      details: {
        ferryPostCopyDowntimeMs: summarize(pick(lazy, 'downMs')),
        ferryPostCopyAllPagesMs: summarize(lazy.map((r) => r.allPagesMs ?? NaN)),
        ferryPostCopyArchiveBytes: summarize(pick(lazy, 'bytes')),
        ferryPostCopyVsFerryPlain: ratios(pick(lazy, 'downMs'), pick(byComp.zstd, 'downMs')),
        ferryStreamedZstdDowntimeMs: summarize(pick(byComp.zstd, 'downMs')),
        rawPlainDowntimeMs: summarize(pick(raw, 'downMs')),
        rawArchiveBytes: summarize(pick(raw, 'bytes')),
      },
    },
    {
      item: 6,
      title: `Compression for the ${mib} MiB container: archive size and end-to-end time`,
      goal: 'pick the default from the numbers',
      details: { perCompression: table, fastestEndToEnd: best },
    },
  ];
}
