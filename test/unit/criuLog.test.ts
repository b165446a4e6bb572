import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { criuLogPath, describeCriuFailure, diagnoseCriuLog } from '../../src/podman/criuLog';

// Excerpts (first 80 and last lines) of CRIU 4.2.1 logs and podman 4.3.1 stderr recorded on the bed.
const FIXTURES = join(__dirname, '..', '..', '..', 'test', 'fixtures', 'criu');
const fixture = (name: string) => readFileSync(join(FIXTURES, name), 'utf8');

describe('CRIU failures: the cause from its log', () => {
  it('finds the log path podman prints, for a checkpoint and for a restore', () => {
    assert.equal(criuLogPath(fixture('checkpoint-rlimit.stderr')), '/var/lib/containers/storage/overlay-containers/c172873465ede2c6ce7cda178e79f76c80395f93403417bed8ab68353c48ef38/userdata/dump.log');
    assert.equal(criuLogPath(fixture('restore-address-in-use.stderr')), '/var/lib/containers/storage/overlay-containers/d323d904d6b7faa3582d00551a96b73d201bed058fc3e3aa9aba7484399e9257/userdata/restore.log');
    assert.equal(criuLogPath('Error: no container with name or ID "x" found: no such container'), undefined);
  });

  it('a process running as a non-root user: permanent, says why', () => {
    const d = diagnoseCriuLog(fixture('dump-rlimit.log'));
    assert.deepEqual(d.causes, ["Can't get rlimit 0: Operation not permitted"]);
    assert.equal(d.permanent, true);
    assert.match(d.hint ?? '', /non-root user/);
  });

  it('an established TCP connection: permanent', () => {
    const d = diagnoseCriuLog(fixture('dump-connected-tcp.log'));
    assert.deepEqual(d.causes, ['inet: Connected TCP socket, consider using --tcp-established option.']);
    assert.equal(d.permanent, true);
    assert.match(d.hint ?? '', /checkpoint\.tcpEstablished/);
  });

  it('an in-flight connection: transient (a retry may pass), with the way out', () => {
    const d = diagnoseCriuLog(fixture('dump-in-flight.log'));
    assert.deepEqual(d.causes, ['inet: In-flight connection (l) for 10827c', 'inet: In-flight connections can be ignored with the --skip-in-flight option.']);
    assert.equal(d.permanent, false);
    assert.match(d.hint ?? '', /what-moves/);
  });

  // Built from the messages in CRIU 4.2's source (file-lock.c; files-ext for io_uring), as the
  // MariaDB checks on the bed printed them; not whole recorded logs.
  it('file locks held (a database) and io_uring: permanent, with the way out', () => {
    const locks = diagnoseCriuLog('(00.061822) Error (criu/file-lock.c:166): Some file locks are hold by dumping tasks! You can try --file-locks to dump them.\n');
    assert.deepEqual(locks.causes, ['Some file locks are hold by dumping tasks! You can try --file-locks to dump them.']);
    assert.equal(locks.permanent, true);
    assert.match(locks.hint ?? '', /checkpoint\.fileLocks/);
    const uring = diagnoseCriuLog("(00.070000) Error (criu/files-ext.c:96): Can't dump file 600 of that type [3] (unknown anon_inode:[io_uring])\n");
    assert.equal(uring.permanent, true);
    assert.match(uring.hint ?? '', /io_uring/);
  });

  it('a restore whose port is taken on the destination: permanent, without the aftermath lines', () => {
    const d = diagnoseCriuLog(fixture('restore-address-in-use.log'));
    assert.deepEqual(d.causes, ["inet: Can't bind inet socket (id 5): Address already in use"]);
    assert.equal(d.permanent, true);
  });

  it('keeps the old behaviour (retry) for a cause it does not know, and never ignores every line', () => {
    const unknown = diagnoseCriuLog('(00.1) Error (criu/x.c:1): something new\n(00.2) Error (criu/cr-dump.c:1975): Dumping FAILED.\n');
    assert.deepEqual(unknown, { causes: ['something new'], permanent: false });
    const onlyGeneric = diagnoseCriuLog("(00.0) Error (criu/util.c:1534): rlimit: Can't setup RLIMIT_NOFILE for self: Operation not permitted\n(00.2) Error (criu/cr-dump.c:1975): Dumping FAILED.\n");
    assert.deepEqual(onlyGeneric.causes, ['Dumping FAILED.']);
    assert.deepEqual(diagnoseCriuLog('').causes, []);
  });

  it('says it in one sentence', () => {
    const text = describeCriuFailure('checkpoint', diagnoseCriuLog(fixture('dump-connected-tcp.log')));
    assert.match(text, /^CRIU could not checkpoint the container: inet: Connected TCP socket, consider using --tcp-established option\. \(the container holds established TCP connections/);
    assert.equal(describeCriuFailure('restore', { causes: [], permanent: false }), 'CRIU could not restore the container: CRIU failed without naming a cause in its log');
  });
});
