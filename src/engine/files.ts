import { join } from 'node:path';
import type { FerryConfig } from '../config/load';
import { findHost } from '../config/load';
import { ValidationError } from '../errors';
import type { ArchiveInfo, MigrationRecord } from './model';
import { MIGRATION_ID } from './model';

/** Ferry's own folder inside `archive.plainDir`, the only part of it Ferry creates and owns. */
export const PLAIN_SUBDIR = 'ferry-plain';

export type Compression = FerryConfig['checkpoint']['compression'];

/** The archive's name: the migration id, then what was done to the bytes. */
export function archiveFileName(id: string, compression: Compression, encrypted: boolean): string {
  const ext = compression === 'none' ? '' : compression === 'gzip' ? '.gz' : '.zst';
  return `${id}.tar${ext}${encrypted ? '.enc' : ''}`;
}

/** Every file of one migration on one host. */
export interface HostFiles {
  /** The host's work dir (0700). */
  dir: string;
  /** The whole archive, under the only name a complete archive ever has. */
  archive: string;
  /** The archive while it is written or received; renamed to `archive` once whole. */
  part: string;
  /** The named pipe podman exports into (source only). */
  fifo: string;
  /** The decrypted copy podman imports an encrypted archive from, for the seconds it restores. */
  plain: string;
  /** Destination: the host folders Ferry created there for copied bind mounts, one per line (steps/copiedMounts.ts). */
  copiedFolders: string;
}

/** The archive on one host in each form it takes: whole, being written, decrypted for podman. */
export function archiveCopies(h: HostFiles): string[] {
  return [h.archive, h.part, h.plain];
}

export interface MigrationFiles {
  /** The archive's file name, the same on both hosts. */
  name: string;
  source: HostFiles;
  destination: HostFiles;
}

function hostFiles(dir: string, name: string, id: string, config: FerryConfig): HostFiles {
  const archive = join(dir, name);
  return {
    dir,
    archive,
    copiedFolders: join(dir, `${id}.copied`),
    part: `${archive}.part`,
    fifo: `${archive}.part.fifo`,
    // plainDir is typically a shared tmpfs (/dev/shm): Ferry keeps to a folder of its own there.
    plain: join(config.archive.plainDir ? join(config.archive.plainDir, PLAIN_SUBDIR) : dir, `${name.replace(/\.enc$/, '')}.plain`),
  };
}

/**
 * Where a migration's files are, on both hosts. Derived from the migration's id and the
 * inventory only, never from a path stored in Redis: anyone who can write a record must
 * not be able to make a step write or delete another file as root. Before the checkpoint
 * the archive's format is the configured one; after it, the one the record says was used.
 */
export function migrationFiles(rec: Pick<MigrationRecord, 'id' | 'from' | 'to'> & { archive?: Pick<ArchiveInfo, 'compression' | 'encryption'> }, config: FerryConfig): MigrationFiles {
  if (!MIGRATION_ID.test(rec.id)) throw new ValidationError(`"${rec.id.slice(0, 60)}" is not a Ferry migration id`);
  const compression = rec.archive ? rec.archive.compression : config.checkpoint.compression;
  const encrypted = rec.archive ? !!rec.archive.encryption : config.archive.encryption !== 'none';
  const name = archiveFileName(rec.id, compression, encrypted);
  const dirOf = (host: string): string => {
    const h = findHost(config, host);
    if (!h) throw new ValidationError(`host "${host}" is not in this inventory`);
    return h.workDir;
  };
  return { name, source: hostFiles(dirOf(rec.from), name, rec.id, config), destination: hostFiles(dirOf(rec.to), name, rec.id, config) };
}
