import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { addressesToHold, addressHoldArgv, holdTable, parseHoldOutput, recordedAddresses } from '../../src/podman/addressHold';
import { parseInspect } from '../../src/podman/parse';

const FIXTURES = join(__dirname, '..', '..', '..', 'test', 'fixtures');
const kept = { checkpoint: { tcpEstablished: true, keepAddress: true } };

describe('addressHold: TCP to a restored container held back until its connections are back', () => {
  it("reads the container's addresses from podman inspect (recorded: macvlan, and the default network)", () => {
    assert.deepEqual(parseInspect(readFileSync(join(FIXTURES, 'inspect-macvlan.json'), 'utf8')).addresses, ['198.18.0.231']);
    assert.deepEqual(parseInspect(readFileSync(join(FIXTURES, 'inspect-bind.json'), 'utf8')).addresses, ['10.88.0.149']);
    assert.deepEqual(parseInspect(readFileSync(join(FIXTURES, 'inspect-host-network.json'), 'utf8')).addresses, []);
  });

  it('holds only where connections are kept and the address moves, and only what is an address', () => {
    const rec = { source: { addresses: ['198.18.0.231', '1.2.3.4; rm -rf /', '$(reboot)'] } };
    assert.deepEqual(addressesToHold(rec, kept), ['198.18.0.231']);
    assert.deepEqual(addressesToHold(rec, { checkpoint: { tcpEstablished: true, keepAddress: false } }), []);
    assert.deepEqual(addressesToHold(rec, { checkpoint: { tcpEstablished: false, keepAddress: true } }), []);
    assert.deepEqual(addressesToHold({}, kept), [], 'a record from before addresses were kept');
    assert.deepEqual(recordedAddresses({ source: { addresses: '198.18.0.231' } }), [], 'not a list: none');
    assert.deepEqual(recordedAddresses({ source: { addresses: { 0: '198.18.0.231' } } }), []);
    assert.deepEqual(recordedAddresses({ source: { addresses: [7, null, '198.18.0.231'] } }), ['198.18.0.231']);
  });

  it('names one table per address and passes addresses as arguments, never in the script', () => {
    assert.equal(holdTable('198.18.0.231'), 'ferry_hold_198_18_0_231');
    assert.throws(() => holdTable('198.18.0.231; reboot'), /not an IPv4 address/);
    const argv = addressHoldArgv('hold', ['198.18.0.231', '10.0.0.2'], 120_500);
    assert.deepEqual(argv.slice(0, 2), ['sh', '-c']);
    assert.deepEqual(argv.slice(3), ['ferry-address-hold', 'hold', '121', '198.18.0.231', '10.0.0.2'], 'the life in whole seconds, rounded up');
    assert.ok(!argv[2].includes('198.18'));
    assert.throws(() => addressHoldArgv('release', ['x']), /not an IPv4 address/);
  });

  it('reports what was held and what could not be', () => {
    assert.deepEqual(parseHoldOutput('held 198.18.0.231 on eth0\nunavailable: no route to 10.0.0.2\n'), { held: ['198.18.0.231 on eth0'], unavailable: ['no route to 10.0.0.2'] });
    assert.deepEqual(parseHoldOutput('unavailable: nft is not installed\n'), { held: [], unavailable: ['nft is not installed'] });
  });
});
