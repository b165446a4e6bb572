import { faultTests } from './scenario';
import { ROLLBACKS } from './rollbacks';

describe('faults: restore failing on the destination, then on the source too', function () {
  this.timeout(300_000);
  faultTests(ROLLBACKS);
});
