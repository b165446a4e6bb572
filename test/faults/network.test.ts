import { faultTests } from './scenario';
import { NETWORK } from './network';

describe('faults: the SSH link to the destination cut, black-holed, or gone for good', function () {
  this.timeout(300_000);
  faultTests(NETWORK);
});
