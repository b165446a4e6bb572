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
  installLazyRuntime,
  LazyFiles,
  LazyMigration,
  openPageTunnel,
  pathsOf,
  podmanWithWrapper,
  PostCopyError,
  probeLazySupport,
  raisePipeMaxSize,
  removeLazyFiles,
  restorePipeMaxSize,
  SPLIT_SCRIPT,
  SshTarget,
  stopLazyDaemon,
  stopPageServer,
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

/**
 * Source, once the container runs on one host only (cleanup after the destination holds every
 * page, or rollback after the destination's copy was killed): no server, no tunnel, no kept
 * dump, fs.pipe-max-size as it was, and no post-copy file on either host. Idempotent.
 */
export async function tearDownPostCopy(ctx: StepContext): Promise<string[]> {
  const { rec } = ctx;
  const dest = ctx.remote(rec.to);
  const m = byId(rec.id);
  await forgetLazyDump(ctx.localRunner, rec.id);
  await closePageTunnel(ctx.localRunner, m, sshTargetOf(dest.host));
  await restorePipeMaxSize(ctx.localRunner, m);
  await removeLazyFiles(ctx.localRunner, m);
  // The container runs where it should: a destination that cannot be reached now keeps a
  // folder of small files, which is no reason to fail the step.
  try {
    await removeLazyFiles(dest.runner, m);
    return [];
  } catch (e: unknown) {
    return [`host ${rec.to} keeps ${pathsOf(m).dir} (post-copy files of this migration; ${coerceError(e).message}); remove it by hand`];
  }
}

/**
 * Rollback, on the destination under its container lock: a lazy restore's daemon killed, so its
 * supervisor kills the copy it was feeding, before that copy is removed and the source's whole
 * dump restored in place.
 */
export async function stopDestinationLazyCopy(ctx: StepContext): Promise<void> {
  await stopLazyDaemon(ctx.remote(ctx.rec.to).runner, byId(ctx.rec.id));
}

/** Before any restore in place on the source: podman's checkpoint folder whole again, if a lazy checkpoint split it. */
export async function mendSplitDump(runner: CommandRunner, migrationId: string): Promise<void> {
  await ensureWholeDump(runner, byId(migrationId));
}
