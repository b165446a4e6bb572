import { faultTests } from './scenario';
import { STORAGE } from './storage';

describe('faults: full disks and corrupted archives', function () {
  this.timeout(300_000);
  faultTests(STORAGE);
});
