import { randomInt } from 'node:crypto';
import type { HostConfig } from '../config/hosts';
import type { MigrationRecord } from '../engine/model';
import { coerceError, StepError } from '../errors';
import type { CommandRunner } from '../exec/runner';
import type { ContainerInfo } from '../podman/parse';
import { Podman } from '../podman/podman';
import {
  closePageTunnel,
  ensureWholeDump,
  finishOnSource,
  installLazyRuntime,
  LazyFiles,
  LazyMigration,
  openPageTunnel,
  pathsOf,
  podmanWithWrapper,
  PostCopyError,
  probeLazySupport,
  raisePipeMaxSize,
  readLazyCopy,
  readLazyDump,
  removeLazyFiles,
  restorePipeMaxSize,
  SPLIT_SCRIPT,
  SshTarget,
  stopLazyDaemon,
  stopPageServer,
  waitAllPagesCopied,
} from '../postcopy';
import type { StepContext } from './context';

/*
 * Post-copy as Ferry's steps use it (the mechanism is src/postcopy, the design docs/post-copy.md):
 * preflight chooses it, the checkpoint sets it up before the freeze and freezes through the
 * runc wrapper, restore runs through the wrapper, verify waits for the last page, cleanup lets
 * the source's copy go only once the destination said it has every page, and rollback kills
 * the destination's copy before the source's whole dump is restored in place.
 */

/** Page server and tunnel ports: two in a row, picked at random above the usual services. */
const PORT_MIN = 20_000;
const PORT_MAX = 60_000;
/** Tries with new ports when one is taken on either host. */
const PORT_TRIES = 3;

export function sshTargetOf(h: HostConfig): SshTarget {
  return { user: h.ssh.user, address: h.address, port: h.ssh.port, privateKey: h.ssh.privateKey, knownHosts: h.ssh.knownHosts };
}

/** The migration's post-copy parameters once the checkpoint set up its ports; null before, or for a plain migration. */
export function lazyOf(rec: MigrationRecord): LazyMigration | null {
  const p = rec.postCopy;
  if (!p?.serverPort || !p.lazyPort) return null;
  return { migrationId: rec.id, serverPort: p.serverPort, lazyPort: p.lazyPort, deadlineSeconds: p.deadlineSeconds };
}

/** Post-copy files live under the migration id alone: enough to find and remove them when the record lost the rest. */
function byId(id: string): LazyFiles {
  return { migrationId: id };
}

/** Whether post-copy may have been set up for this migration (what was asked survives a record rewound by a crash). */
export function mayUsePostCopy(rec: MigrationRecord): boolean {
  return !!rec.postCopy || (!!rec.memoryCopy && rec.memoryCopy !== 'plain');
}

/** The podman a lazy checkpoint or restore runs through: the host's own, pointed at this migration's wrapper. */
export function wrappedPodman(ctx: StepContext): Podman {
  return new Podman(ctx.localRunner, podmanWithWrapper(ctx.rec.id, ctx.self.podman));
}

/**
 * Preflight: post-copy when it was asked for (or auto) and both hosts can, proved by probing
 * them; otherwise plain, with the reason in the record. Asked for outright and impossible: a
 * permanent error, before anything was touched.
 */
export async function choosePostCopy(ctx: StepContext, info: ContainerInfo): Promise<Pick<MigrationRecord, 'postCopy' | 'memoryCopyReason'>> {
  const { rec } = ctx;
  const want = rec.memoryCopy ?? 'plain';
  if (want === 'plain') return {};
  const dest = ctx.remote(rec.to);
  const [src, dst] = await Promise.all([probeLazySupport(ctx.localRunner, 'source', { node: process.execPath, script: SPLIT_SCRIPT }), probeLazySupport(dest.runner, 'destination')]);
  const reasons = [...src.reasons.map((r) => `${rec.from}: ${r}`), ...dst.reasons.map((r) => `${rec.to}: ${r}`)];
  // Verify waits for the last page within its own time limit.
  const { postCopyDeadlineSeconds } = ctx.config.checkpoint;
  if (postCopyDeadlineSeconds * 1000 >= ctx.config.timeouts.step.verify) {
    reasons.push(`checkpoint.postCopyDeadlineSeconds (${postCopyDeadlineSeconds} s) is not shorter than timeouts.step.verify (${ctx.config.timeouts.step.verify} ms), which waits for every page`);
  }
  // The wrapper wraps runc: a container created with another runtime would be checkpointed past it.
  if (info.runtime && info.runtime !== 'runc') reasons.unshift(`the container runs with ${info.runtime}, not runc (post-copy wraps runc)`);
  if (reasons.length === 0) return { postCopy: { deadlineSeconds: ctx.config.checkpoint.postCopyDeadlineSeconds } };
  if (want === 'post-copy') {
    throw new StepError(`post-copy is not possible for "${rec.container}" from ${rec.from} to ${rec.to}, nothing was changed: ${reasons.join('; ')}. Migrate with --memory-copy plain (or auto, which falls back to it)`, {
      code: 'POSTCOPY_UNSUPPORTED',
      permanent: true,
    });
  }
  return { memoryCopyReason: reasons.join('; ') };
}

/**
 * Checkpoint, before the freeze: what an earlier attempt left is undone, then the wrapper is
 * installed on both hosts, the page server's pipe allowed and the tunnel opened, on ports
 * recorded first (rollback finds everything by the migration id anyway).
 */
export async function setUpPostCopy(ctx: StepContext): Promise<LazyMigration> {
  const { rec } = ctx;
  const dest = ctx.remote(rec.to);
  const target = sshTargetOf(dest.host);
  const deadlineSeconds = rec.postCopy?.deadlineSeconds ?? ctx.config.checkpoint.postCopyDeadlineSeconds;
  await forgetLazyDump(ctx.localRunner, rec.id);
  await closePageTunnel(ctx.localRunner, byId(rec.id), target);
  for (let i = 1; ; i++) {
    const serverPort = randomInt(PORT_MIN, PORT_MAX - 1);
    const m: LazyMigration = { migrationId: rec.id, serverPort, lazyPort: serverPort + 1, deadlineSeconds };
    await ctx.mark({ postCopy: { deadlineSeconds, serverPort: m.serverPort, lazyPort: m.lazyPort } });
    const opts = { node: process.execPath, splitScript: SPLIT_SCRIPT };
    await Promise.all([installLazyRuntime(ctx.localRunner, m, opts), installLazyRuntime(dest.runner, m, opts)]);
    await raisePipeMaxSize(ctx.localRunner, m);
    try {
      await openPageTunnel(ctx.localRunner, m, target);
      return m;
    } catch (e: unknown) {
      const portTaken = e instanceof PostCopyError && (e.code === 'POSTCOPY_PORT_TAKEN' || e.code === 'POSTCOPY_TUNNEL');
      if (!portTaken || i >= PORT_TRIES) throw e;
      ctx.log.warn({ err: e.message }, 'post-copy ports taken; trying others');
    }
  }
}

/**
 * The kept dump of an earlier lazy checkpoint, made whole again in podman's folder and then
 * removed: the wrapper would refuse to split into an existing folder, and a dump must never be
 * restored split. The page server reading it is stopped first.
 */
async function forgetLazyDump(source: CommandRunner, id: string): Promise<void> {
  await stopPageServer(source, byId(id));
  const kept = await ensureWholeDump(source, byId(id));
  const argv = ['rm', '-rf', '--', ...(kept ? [kept.keepDir] : []), pathsOf(byId(id)).checkpointState];
  const res = await source.run(argv);
  if (res.code !== 0) throw new StepError(`${source.where}: could not remove an earlier post-copy dump: ${res.stderr.trim()}`, { code: 'POSTCOPY_LEFTOVER' });
}

/** One migration's post-copy, found by its id alone: what a lost or rewound record still allows. */
export interface PostCopyParts {
  id: string;
  source: CommandRunner;
  dest: CommandRunner;
  destHost: HostConfig;
}

function partsOf(ctx: StepContext): PostCopyParts {
  const dest = ctx.remote(ctx.rec.to);
  return { id: ctx.rec.id, source: ctx.localRunner, dest: dest.runner, destHost: dest.host };
}

/**
 * Checkpoint of a migration that may have used post-copy but goes plain now (a rewound record
 * whose `auto` preflight chose otherwise the second time): an earlier attempt's split dump and
 * its state file go, or a later in-place restore would mend the new dump with the old pages.
 */
export async function forgetEarlierLazyDump(ctx: StepContext): Promise<void> {
  if (mayUsePostCopy(ctx.rec)) await forgetLazyDump(ctx.localRunner, ctx.rec.id);
}

/**
 * Source, once the container runs on one host only (cleanup after the destination holds every
 * page, or rollback after the destination's copy was killed): no server, no tunnel, no kept
 * dump, fs.pipe-max-size as it was, and no post-copy file on either host. Idempotent.
 */
export async function tearDownPostCopy(ctx: StepContext): Promise<string[]> {
  return tearDownPostCopyOf(partsOf(ctx));
}

export async function tearDownPostCopyOf(parts: PostCopyParts): Promise<string[]> {
  const m = byId(parts.id);
  await forgetLazyDump(parts.source, parts.id);
  await closePageTunnel(parts.source, m, sshTargetOf(parts.destHost));
  await restorePipeMaxSize(parts.source, m);
  await removeLazyFiles(parts.source, m);
  // The container runs where it should: a destination that cannot be reached now keeps a
  // folder of small files, which is no reason to fail the step.
  try {
    await removeLazyFiles(parts.dest, m);
    return [];
  } catch (e: unknown) {
    return [`host ${parts.destHost.name} keeps ${pathsOf(m).dir} (post-copy files of this migration; ${coerceError(e).message}); remove it by hand`];
  }
}

/**
 * Whether this migration's memory is (or was) copied after the restore: the record says so,
 * or, when the record may have lost it (a Redis crash rewinds it), the source's disk says the
 * dump was split. Decisions that could delete the last whole copy ask this, never the record alone.
 */
export async function wasSplitOnSource(rec: MigrationRecord, source: CommandRunner): Promise<boolean> {
  if (rec.postCopy?.mode === 'lazy') return true;
  if (!mayUsePostCopy(rec)) return false;
  return (await readLazyDump(source, byId(rec.id))) !== null;
}

/**
 * Destination, restore: whether the archive is a split one that needs the source's pages. A
 * record is written whole, so one that has the checkpoint's archive (restore requires it) also
 * has its `postCopy.mode`, or, when `auto` chose plain, preflight's reason: then it is trusted,
 * and a plain or fallen-back migration asks nothing more inside the downtime. Only a record
 * with neither (which no rewind makes, but a hand edit could) asks the source's disk.
 */
export async function restoreNeedsPages(ctx: StepContext): Promise<boolean> {
  const { rec } = ctx;
  if (rec.postCopy?.mode) return rec.postCopy.mode === 'lazy';
  if (!mayUsePostCopy(rec) || rec.memoryCopyReason) return false;
  return wasSplitOnSource(rec, ctx.remote(rec.from).runner);
}

/**
 * Destination, verify: whether a lazy restore ran here for this migration, as the record or
 * this host's own files say (a rewound record can forget; a lazy restore always leaves its
 * status file until the teardown).
 */
export async function restoredLazily(ctx: StepContext): Promise<boolean> {
  const { rec } = ctx;
  if (rec.postCopy?.mode === 'lazy') return true;
  if (!mayUsePostCopy(rec)) return false;
  return (await readLazyCopy(ctx.localRunner, byId(rec.id))).state !== 'not-started';
}

/** The copy's deadline (seconds): the record's, else the configured one it was set up with. */
export function deadlineOf(ctx: StepContext): number {
  return ctx.rec.postCopy?.deadlineSeconds ?? ctx.config.checkpoint.postCopyDeadlineSeconds;
}

/**
 * Cleanup, on the source, before its copy goes: when the dump was split, only once the
 * destination says it holds every page (finishOnSource refuses otherwise), then the page server
 * and the tunnel stop and the kept dump goes.
 */
export async function finishLazyCopy(ctx: StepContext): Promise<void> {
  const { rec } = ctx;
  // wasSplitOnSource's question, with the state file read once: its keepDir is needed too.
  const dump = mayUsePostCopy(rec) ? await readLazyDump(ctx.localRunner, byId(rec.id)) : null;
  if (!dump && rec.postCopy?.mode !== 'lazy') return;
  const dest = ctx.remote(rec.to);
  await finishOnSource(ctx.localRunner, dest.runner, byId(rec.id), sshTargetOf(dest.host), dump?.keepDir ?? rec.postCopy?.keepDir);
}

/**
 * The repair loop, for a frozen container whose record was lost. `restored`: the source runs it
 * again, so post-copy is torn down. `on-destination`: the destination runs it, and while its
 * pages are still arriving the source's stopped copy holds the only whole dump; this waits a
 * little for the last page (`waitMs`: the repair pass waits meanwhile), then tears down, or
 * leaves it all running and says so. Returns what the operator must be told.
 */
export async function settleLostPostCopy(parts: PostCopyParts, where: 'restored' | 'on-destination', waitMs: number): Promise<string[]> {
  const m = byId(parts.id);
  if (where === 'on-destination' && (await readLazyDump(parts.source, m))) {
    const copy = await readLazyCopy(parts.dest, m);
    if (copy.state === 'copying') await waitAllPagesCopied(parts.dest, m, { timeoutMs: waitMs }).catch(() => undefined);
    // Still copying: the page server, tunnel and files stay (the copy needs them); said below.
    const now = copy.state === 'copying' ? await readLazyCopy(parts.dest, m) : copy;
    if (now.state === 'failed') {
      return [`the page copy to ${parts.destHost.name} failed and ${parts.destHost.name} killed its copy: the stopped copy on the source is the container, with its memory; restore it there (podman container restore)`];
    }
    if (now.state !== 'complete') {
      return [`the page copy to ${parts.destHost.name} is ${now.state}: the stopped copy on the source holds the container's memory; keep it (and ${pathsOf(m).dir} on both hosts) until the container on ${parts.destHost.name} is checked`];
    }
  }
  if (where === 'restored') await stopLazyDaemon(parts.dest, m).catch(() => undefined);
  return tearDownPostCopyOf(parts);
}

/**
 * Rollback, on the destination under its container lock: a lazy restore's daemon killed, so its
 * supervisor kills the copy it was feeding, before that copy is removed and the source's whole
 * dump restored in place.
 */
export async function stopDestinationLazyCopy(ctx: StepContext): Promise<void> {
  await stopLazyDaemon(ctx.remote(ctx.rec.to).runner, byId(ctx.rec.id));
}

/** Before any restore in place on the source: podman's checkpoint folder whole again, if a lazy checkpoint split it. True when it had been split. */
export async function mendSplitDump(runner: CommandRunner, migrationId: string): Promise<boolean> {
  return (await ensureWholeDump(runner, byId(migrationId))) !== null;
}
