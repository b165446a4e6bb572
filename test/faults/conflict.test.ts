import { faultTests } from './scenario';
import { CONFLICTS } from './conflicts';

describe('faults: name clashes on the destination and SSH host keys that do not match', function () {
  this.timeout(300_000);
  faultTests(CONFLICTS);
});
