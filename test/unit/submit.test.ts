import { strict as assert } from 'node:assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load';
import type { MigrationRecord } from '../../src/engine/model';
import { submitMigration, SubmitDeps } from '../../src/engine/submit';
import type { HostQueues } from '../../src/queues';
import type { MigrationStore } from '../../src/store/migrationStore';

const dir = mkdtempSync(join(tmpdir(), 'ferry-submit-test-'));
const file = join(dir, 'ferry.json');
writeFileSync(file, JSON.stringify({ hosts: ['a', 'b'].map((name, i) => ({ name, address: `198.18.0.${11 + i}`, ssh: { privateKey: '/k' } })) }));

/**
 * A store whose Redis "crashes" between the record and the job: the record written is gone
 * when read back (what appendfsync everysec can drop), the job stays. Redis itself is tested
 * on the bed; this is the order of submitMigration's own calls.
 */
function deps(opts: { recordSurvives: boolean; readFails?: boolean }) {
  const calls: string[] = [];
  let stored: MigrationRecord | null = null;
  const store = {
    lock: () => (calls.push('lock'), Promise.resolve({ ok: true })),
    create: (rec: MigrationRecord) => (calls.push('create'), (stored = rec), Promise.resolve()),
    get: () => {
      calls.push('get');
      if (opts.readFails) return Promise.reject(new Error('Connection is closed.'));
      return Promise.resolve(opts.recordSurvives ? stored : null);
    },
    unlock: () => (calls.push('unlock'), Promise.resolve()),
  };
  const queues = { enqueue: () => (calls.push('enqueue'), Promise.resolve()) };
  const d: SubmitDeps = { config: loadConfig({ file, env: {} }), store: store as unknown as MigrationStore, queues: queues as unknown as HostQueues, isCordoned: () => Promise.resolve(false) };
  return { d, calls };
}

describe('submitting a migration', () => {
  it('returns the record once it was read back after its job was queued', async () => {
    const { d, calls } = deps({ recordSurvives: true });
    const rec = await submitMigration(d, { container: 'web', from: 'a', to: 'b' });
    assert.equal(rec.state, 'queued');
    assert.deepEqual(calls, ['lock', 'create', 'enqueue', 'get']);
  });

  it('says the submission was lost, and frees its locks, when Redis dropped the record under its job (seed 1520022)', async () => {
    const { d, calls } = deps({ recordSurvives: false });
    await assert.rejects(
      submitMigration(d, { container: 'web', from: 'a', to: 'b' }),
      (e: Error & { code?: string }) => e.code === 'SUBMISSION_LOST' && /was lost by Redis as it was submitted.*nothing was changed on any host: submit it again/.test(e.message),
    );
    assert.deepEqual(calls, ['lock', 'create', 'enqueue', 'get', 'unlock']);
  });

  it('does not call a submission lost when Redis only could not be asked', async () => {
    const { d } = deps({ recordSurvives: false, readFails: true });
    const rec = await submitMigration(d, { container: 'web', from: 'a', to: 'b' });
    assert.equal(rec.state, 'queued');
  });
});
