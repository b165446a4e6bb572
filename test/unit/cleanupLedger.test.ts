import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalRunner } from '../../src/exec/localRunner';
import { ledgerFolders, ledgerText, READ_LEDGER_REMOVE_FILES } from '../../src/steps/copiedMounts';

describe("cleanup's one command on the destination", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-ledger-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const run = (ledger: string, files: string[]) => new LocalRunner().run(['sh', '-c', READ_LEDGER_REMOVE_FILES, 'sh', ledger, ...files]);

  it('prints a ledger that lists folders and keeps it until they are renamed; removes the archives', async () => {
    const ledger = join(dir, 'm.copied');
    const archive = join(dir, 'm.tar.zst');
    writeFileSync(ledger, '/srv/app\n/srv/cfg\n');
    writeFileSync(archive, 'x');
    const res = await run(ledger, [archive, join(dir, 'm.tar')]);
    assert.equal(res.code, 0);
    assert.deepEqual(ledgerFolders(ledgerText(res.stdout)), ['/srv/app', '/srv/cfg']);
    assert.ok(existsSync(ledger), 'the ledger stays until the folders are renamed');
    assert.ok(!existsSync(archive));
  });

  it('removes an empty ledger at once, and is content when nothing is there', async () => {
    const ledger = join(dir, 'm.copied');
    writeFileSync(ledger, '');
    assert.equal(ledgerText((await run(ledger, [join(dir, 'a')])).stdout), '');
    assert.ok(!existsSync(ledger));
    const again = await run(ledger, [join(dir, 'a')]);
    assert.equal(again.code, 0);
    assert.deepEqual(ledgerFolders(ledgerText(again.stdout)), []);
  });

  it("never reads what the shell's start-up printed as a folder", () => {
    assert.equal(ledgerText('/etc\nferry-ledger /srv/app\n'), '/srv/app');
  });

  it('reads only absolute folders, never the root', () => {
    assert.deepEqual(ledgerFolders('/srv/a\n\n/\nrelative\n/srv/b'), ['/srv/a', '/srv/b']);
  });
});
