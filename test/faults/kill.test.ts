import { faultTests } from './scenario';
import { KILLS } from './kills';

describe('faults: a worker SIGKILLed inside each step, then started again', function () {
  this.timeout(240_000);
  faultTests(KILLS);
});
