import type { FerryConfig } from '../config/load';
import { findHost } from '../config/load';
import { coerceError, StepError } from '../errors';
import type { CommandRunner } from '../exec/runner';
import { Podman } from '../podman/podman';
import { criuConfigLines, criuWrapper } from '../podman/criuConfig';
import { migrationFiles } from './files';
import type { MigrationRecord } from './model';

/**
 * The podman command a person restores with. The archive was made with Ferry's CRIU options
 * (checkpoint.skipInFlight): a restore without the same ones fails, so it carries them.
 */
export function podmanForRestoreByHand(config: FerryConfig): string {
  return ['podman', ...(criuWrapper(criuConfigLines('restore', config.checkpoint))?.podmanFlags ?? [])].join(' ');
}

export interface AttentionDeps {
  config: FerryConfig;
  /** This host's runner (the source: rollback runs there) and another host's. */
  localRunner: CommandRunner;
  runnerFor(host: string): CommandRunner;
  self: string;
}

/**
 * The needs-attention message after a rollback failed for good. It must tell the operator
 * what is right for what is known: following "restore it on the source" while the
 * destination's copy runs would double the container, so both hosts are asked first, and
 * an unanswered question is said to be one.
 */
export async function needsAttentionAfterRollback(rec: MigrationRecord, err: Error, deps: AttentionDeps): Promise<string> {
  const { config } = deps;
  const failed = `${rec.failure?.error ?? 'migration failed'}; then rollback failed: ${err.message}.`;
  // Frozen by someone else, who may be restoring it elsewhere: "restore it here" could make
  // two. The error itself says what to find out first.
  if (err instanceof StepError && err.code === 'FROZEN_BY_OTHER') return failed;
  const look = async (host: string, runner: CommandRunner): Promise<'running' | 'not running' | 'unknown'> => {
    try {
      const h = findHost(config, host);
      if (!h) return 'unknown';
      const info = await new Podman(runner, h.podman).inspect(rec.container);
      if (!info) return 'not running';
      if (rec.source?.id && info.id !== rec.source.id) return 'not running';
      return info.running ? 'running' : 'not running';
    } catch {
      return 'unknown';
    }
  };
  let destRunner: CommandRunner | undefined;
  try {
    destRunner = deps.runnerFor(rec.to);
  } catch (e: unknown) {
    void coerceError(e);
  }
  const [onDest, onSource] = await Promise.all([destRunner ? look(rec.to, destRunner) : Promise.resolve('unknown' as const), look(rec.from, deps.localRunner)]);
  if (onDest === 'running' && onSource !== 'running') {
    return `${failed} The container RUNS on ${rec.to}: do not restore it on ${rec.from}. Check it there; once it is right, remove the stopped copy on ${rec.from} (\`podman rm ${rec.container}\`) and the archive.`;
  }
  if (onDest === 'running' && onSource === 'running') {
    return `${failed} The container runs on BOTH ${rec.from} and ${rec.to}: stop the copy you do not want by hand.`;
  }
  if (onSource === 'running') return `${failed} The container runs on ${rec.from} again; nothing to restore. Check ${rec.to} for a stopped copy.`;
  let archive: string | undefined;
  let encrypted = false;
  try {
    archive = rec.archive ? migrationFiles(rec, config).source.archive : undefined;
    encrypted = !!rec.archive?.encryption;
  } catch {
    // A record this worker refuses (unknown host) names no file it may point people to.
  }
  const podman = podmanForRestoreByHand(config);
  // The archive left its volumes out: they stayed here, and podman must be told to use them.
  const importFlags = rec.archive?.volumes?.length ? ' --ignore-volumes' : '';
  const destKnown = onDest === 'unknown' ? `First make sure it does not run on ${rec.to} (that host did not answer); then` : `It runs on neither host (${rec.to} was asked).`;
  const todo = archive
    ? encrypted
      ? `its encrypted checkpoint archive is kept on ${rec.from} at ${archive}: restore it there with \`ferry archive decrypt ${archive} ${archive.replace(/\.enc$/, '')}\` then \`${podman} container restore --import ${archive.replace(/\.enc$/, '')}${importFlags}\`, and delete the plain copy`
      : `its checkpoint archive is kept on ${rec.from} at ${archive}: restore it there with \`${podman} container restore --import ${archive}${importFlags}\``
    : `no complete archive exists; on ${rec.from}, \`${podman} container restore ${rec.container}\` brings it back if the checkpoint finished (inspect its state first)`;
  return `${failed} ${destKnown} ${todo}`;
}
