import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { encryptStream, decryptStream } from '../../src/archive/cipher';
import { archiveKeyId } from '../../src/archive/key';
import { archiveKeyOnHosts } from '../../test/support/archiveKey';
import { ratios, summarize } from '../lib/stats';
import { ferryRun, Run } from './memory';
import type { ItemResult } from './types';

/** MB/s of one stream through a Transform on this machine, with nothing else in the way. */
async function throughput(make: () => NodeJS.ReadWriteStream, input: Buffer[], totalBytes: number): Promise<number> {
  const t0 = process.hrtime.bigint();
  await pipeline(Readable.from(input), make(), new Writable({ write: (_c, _e, done) => done() }));
  return totalBytes / 1e6 / (Number(process.hrtime.bigint() - t0) / 1e9);
}

/**
 * The cost of archive.encryption (issue #5 asks for it documented): the same memory-heavy
 * container migrated a → b with and without it, side by side, plus the raw speed of the
 * cipher stream on one core.
 */
export async function encryptionCost(reps: number, memhog: string, mib: number): Promise<ItemResult[]> {
  const bytes = randomBytes(32);
  const key = { path: 'bench', bytes, id: archiveKeyId(bytes) };
  const chunks = Array.from({ length: 256 }, () => randomBytes(1 << 20));
  const encMBs = await throughput(() => encryptStream(key), chunks, 256 << 20);
  const sealed: Buffer[] = [];
  await pipeline(
    Readable.from(chunks),
    encryptStream(key),
    new Writable({
      write: (c: Buffer, _e, done) => {
        sealed.push(c);
        done();
      },
    }),
  );
  const decMBs = await throughput(() => decryptStream(key, 'bench'), sealed, 256 << 20);

  const onHosts = archiveKeyOnHosts('bench-archive', ['a', 'b']);
  let plain: Run[] = [];
  let enc: Run[] = [];
  try {
    // Interleaved, so drift in the shared machine's load hits both alike.
    for (let i = 0; i < reps; i++) {
      plain = plain.concat(await ferryRun('zstd', 1, memhog, mib));
      enc = enc.concat(await ferryRun('zstd', 1, memhog, mib, { encryption: 'aes-256-gcm', keyFile: onHosts.path }));
    }
  } finally {
    onHosts.remove();
  }
  const pick = (rs: Run[], k: 'e2eMs' | 'downMs' | 'bytes') => rs.map((r) => r[k]);
  const steps = (rs: Run[]) => Object.fromEntries(['checkpoint', 'transfer', 'restore', 'verify'].map((k) => [k, summarize(rs.map((r) => r.steps?.[k] ?? NaN))]));
  return [
    {
      item: 8,
      title: `Archive encryption (aes-256-gcm) cost, ${mib} MiB container, zstd: end to end encrypted ÷ plain`,
      goal: 'documented (issue #5)',
      ratio: ratios(pick(enc, 'e2eMs'), pick(plain, 'e2eMs')),
      details: {
        cipherMBps: { encrypt: Math.round(encMBs), decrypt: Math.round(decMBs) },
        downtimeRatio: ratios(pick(enc, 'downMs'), pick(plain, 'downMs')),
        plain: { e2eMs: summarize(pick(plain, 'e2eMs')), downtimeMs: summarize(pick(plain, 'downMs')), archiveBytes: summarize(pick(plain, 'bytes')), stepMs: steps(plain) },
        encrypted: { e2eMs: summarize(pick(enc, 'e2eMs')), downtimeMs: summarize(pick(enc, 'downMs')), archiveBytes: summarize(pick(enc, 'bytes')), stepMs: steps(enc) },
      },
    },
  ];
}
