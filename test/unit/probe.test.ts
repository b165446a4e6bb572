import { strict as assert } from 'node:assert';
import { parseProbe } from '../../src/engine/probe';

describe('--probe parsing', () => {
  it('parses every kind', () => {
    assert.deepEqual(parseProbe('auto'), { kind: 'auto' });
    assert.deepEqual(parseProbe('none'), { kind: 'none' });
    assert.deepEqual(parseProbe('tcp:8080'), { kind: 'tcp', port: 8080 });
    assert.deepEqual(parseProbe('http:8080'), { kind: 'http', port: 8080, path: '/' });
    assert.deepEqual(parseProbe('http:80/healthz?x=1'), { kind: 'http', port: 80, path: '/healthz?x=1' });
    assert.deepEqual(parseProbe('exec:cat /tmp/count'), { kind: 'exec', argv: ['cat', '/tmp/count'] });
  });

  it('rejects nonsense with a message naming it', () => {
    assert.throws(() => parseProbe('tcp:99999'), /not a port number/);
    assert.throws(() => parseProbe('http:x'), /not a port number/);
    assert.throws(() => parseProbe('exec:'), /needs a command/);
    assert.throws(() => parseProbe('ftp:21'), /unknown health probe "ftp:21"/);
  });
});
