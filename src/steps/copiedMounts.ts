import { CommandError, StepError, ValidationError } from '../errors';
import { CONTROL_CHARS } from '../names';
import type { CommandRunner } from '../exec/runner';
import { markedLines } from '../exec/marked';
import type { ContainerInfo } from '../podman/parse';
import { RsyncResult, rsyncTo } from '../transfer/rsync';
import type { StepContext } from './context';
import { declaredCopiedMounts, WHAT_MOVES_DOC } from './movable';

/**
 * Bind mounts declared copied (label ferry.copy-mounts, or checkpoint.copyMounts) move like
 * volumes: rsync while the container runs, the difference once it is frozen, so the
 * destination's folder holds exactly what the source's held at the freeze. Only a folder the
 * destination lacks (or has empty) is written there, and the destination keeps a ledger of
 * the folders Ferry made for the migration (engine/files.ts `copiedFolders`): rollback
 * removes exactly those, cleanup knows from it which source folders moved. The source's
 * folder is not deleted: it is renamed `<folder>.ferry-moved-<migration id>`, so nothing
 * uses it by mistake, the way back is free, and its data stays until a person removes it.
 */
export interface FolderSync extends RsyncResult {
  folder: string;
}

/** The suffix a moved folder's stale source copy gets. */
export function movedAside(folder: string, migrationId: string): string {
  return `${folder.replace(/\/+$/, '')}.ferry-moved-${migrationId}`;
}

// Run on the destination, $1 the folder, $2 this migration's ledger. Exit 3: the folder is
// another migration's (its ledger lists it), or there with content this one did not make.
const FREE =
  'd=$(dirname -- "$2"); for f in "$d"/*.copied; do [ "$f" = "$2" ] && continue; [ -f "$f" ] && grep -qxF -- "$1" "$f" && exit 3; done; ' +
  'grep -qxF -- "$1" "$2" 2>/dev/null && exit 0; if [ -e "$1" ]; then { [ -d "$1" ] && [ -z "$(ls -A -- "$1")" ]; } || exit 3; fi';
const DESTINATION_FREE = `${FREE}; exit 0`;
// The same check and the claim, under one lock for all migrations: the folder is recorded in
// the ledger before it is made (a crash in between leaves it listed, never unlisted).
const CLAIM_FOLDER = `mkdir -p -m 700 -- "$(dirname -- "$2")" && exec 9>>"$(dirname -- "$2")/.copied.lock" && flock 9 || exit 1; (${FREE}) || exit $?; grep -qxF -- "$1" "$2" 2>/dev/null || printf "%s\\n" "$1" >> "$2"; mkdir -p -- "$1"`;

// Only absolute paths other than / are ever removed; the ledger lives in Ferry's 0700 work dir.
const REMOVE_LISTED = '[ -f "$1" ] || exit 0; while IFS= read -r p; do case "$p" in /|"") ;; /*) rm -rf -- "$p" ;; esac; done < "$1"; rm -f -- "$1"';

/** Preflight: every folder to copy is a folder here and free there. Returns the host folders. */
export async function checkCopiedMounts(ctx: StepContext, info: ContainerInfo): Promise<string[]> {
  const { rec } = ctx;
  const mounts = declaredCopiedMounts(info, ctx.config);
  const there = ctx.remote(rec.to).runner;
  const others = mounts.length > 0 ? await ctx.local.bindSourcesOfOthers(info.id) : [];
  await Promise.all(
    mounts.map(async (m) => {
      if (CONTROL_CHARS.test(m.source)) {
        throw new StepError(`bind mount ${JSON.stringify(m.source)} has a control character in its path; Ferry does not copy it (see ${WHAT_MOVES_DOC})`, { code: 'COPIED_MOUNT_NOT_FOLDER', permanent: true });
      }
      const overlap = others.find((o) => o.sources.some((s) => s === m.source || s.startsWith(`${m.source}/`) || m.source.startsWith(`${s}/`)));
      if (overlap) {
        throw new StepError(
          `bind mount ${m.source} is declared copied, but container ${overlap.id.slice(0, 12)} on host ${rec.from} also mounts it (or a folder in or around it): moving it would split their data; move or stop the other container first (see ${WHAT_MOVES_DOC})`,
          {
            code: 'COPIED_MOUNT_SHARED',
            permanent: true,
          },
        );
      }
      const [here, free] = await Promise.all([ctx.localRunner.run(['test', '-d', m.source]), there.run(['sh', '-c', DESTINATION_FREE, 'sh', m.source, ctx.files.destination.copiedFolders])]);
      if (here.code !== 0) {
        throw new StepError(`bind mount ${m.source} (at ${m.destination}) is declared copied but is not a folder on host ${rec.from}; Ferry copies folders only: mount its folder instead (see ${WHAT_MOVES_DOC})`, {
          code: 'COPIED_MOUNT_NOT_FOLDER',
          permanent: true,
        });
      }
      if (free.code === 3) {
        throw new StepError(
          `host ${rec.to} already has ${m.source} with content: Ferry never copies over a folder it did not make; check what it holds and remove it there, or declare the mount shared storage if both hosts see the same folder (see ${WHAT_MOVES_DOC})`,
          { code: 'COPIED_MOUNT_EXISTS_ON_DESTINATION', permanent: true },
        );
      }
      if (free.code !== 0) throw new CommandError(there.where, ['sh', '-c', 'DESTINATION_FREE', m.source], free.code, free.stderr);
    }),
  );
  return mounts.map((m) => m.source);
}

/** Copies every folder to the destination (one after the other: they share the link). */
export async function syncCopiedMounts(ctx: StepContext, folders: readonly string[]): Promise<FolderSync[]> {
  const { rec } = ctx;
  const dest = ctx.remote(rec.to);
  const out: FolderSync[] = [];
  for (const folder of folders) {
    await ctx.fence();
    const claim = await dest.runner.run(['sh', '-c', CLAIM_FOLDER, 'sh', folder, ctx.files.destination.copiedFolders]);
    if (claim.code === 3) {
      throw new StepError(`host ${rec.to} got ${folder} since preflight (with content, or for another migration); not copying into it`, { code: 'COPIED_MOUNT_EXISTS_ON_DESTINATION', permanent: true });
    }
    if (claim.code !== 0) throw new StepError(`cannot create ${folder} on host ${rec.to}: ${claim.stderr.trim()}`, { code: 'COPIED_MOUNT_FAILED' });
    try {
      out.push({ folder, ...(await rsyncTo(ctx.localRunner, dest.host, folder, folder, ctx.config.timeouts.step.checkpoint)) });
    } catch (e: unknown) {
      if (!(e instanceof CommandError || e instanceof ValidationError)) throw e;
      throw new StepError(`copying ${folder} to host ${rec.to} failed: ${e.message.slice(-400)}`, { code: 'COPIED_MOUNT_FAILED', permanent: e instanceof ValidationError, cause: e });
    }
  }
  return out;
}

/** Rollback: the folders this migration made on the destination, and their ledger. */
export async function removeCopiedFolders(there: CommandRunner, ledger: string): Promise<void> {
  const res = await there.run(['sh', '-c', REMOVE_LISTED, 'sh', ledger]);
  if (res.code !== 0) throw new CommandError(there.where, ['sh', '-c', 'REMOVE_LISTED', ledger], res.code, res.stderr);
}

/**
 * Cleanup's one command on the destination (each remote command starts a shell there, ~0.1 s
 * on the bed): prints the ledger of copied folders, each line marked (a shell start-up that
 * prints must not name a folder to rename), removing it at once when it is empty, and removes
 * `files`. Its exit code is that of removing `files`. `ledgerText` reads its output.
 */
export const READ_LEDGER_REMOVE_FILES = 'l=$(cat -- "$1" 2>/dev/null); if [ -n "$l" ]; then printf "%s\\n" "$l" | sed "s/^/ferry-ledger /"; else rm -f -- "$1"; fi; shift; rm -f -- "$@"';

/** The ledger's text in the output of READ_LEDGER_REMOVE_FILES. */
export function ledgerText(output: string): string {
  return markedLines(output, 'ferry-ledger').join('\n');
}

/** The folders a ledger's text lists. */
export function ledgerFolders(text: string): string[] {
  return text.split('\n').filter((p) => p.startsWith('/') && p !== '/');
}

/**
 * Cleanup: each folder the destination's ledger (`ledgerText`, as read) lists moved, so the
 * source's copy is stale: renamed aside (see above). Returns what was renamed and what could
 * not be (a mount point, say), then drops the ledger: the folders are the destination's own
 * from now on. An empty ledger was dropped by the command that read it.
 */
export async function retireSourceFolders(here: CommandRunner, there: CommandRunner, ledger: string, migrationId: string, ledgerText: string): Promise<{ renamed: string[]; kept: string[] }> {
  if (ledgerText === '') return { renamed: [], kept: [] };
  const renamed: string[] = [];
  const kept: string[] = [];
  for (const folder of ledgerFolders(ledgerText)) {
    const aside = movedAside(folder, migrationId);
    const mv = await here.run(['sh', '-c', '[ -e "$1" ] || exit 0; [ -e "$2" ] && exit 0; mv -T -- "$1" "$2"', 'sh', folder, aside]);
    if (mv.code === 0) renamed.push(aside);
    else kept.push(`${folder} (${mv.stderr.trim() || `mv exited ${mv.code}`})`);
  }
  await there.run(['rm', '-f', '--', ledger]);
  return { renamed, kept };
}

/** The folders the destination's ledger lists that are gone from their place here. */
export async function foldersMissingOnSource(here: CommandRunner, there: CommandRunner, ledger: string): Promise<string[]> {
  const missing: string[] = [];
  for (const folder of await listedFolders(there, ledger)) if ((await here.run(['test', '-e', folder])).code !== 0) missing.push(folder);
  return missing;
}

async function listedFolders(there: CommandRunner, ledger: string): Promise<string[]> {
  const listed = await there.run(['cat', '--', ledger]);
  return listed.code === 0 ? ledgerFolders(listed.stdout) : [];
}
