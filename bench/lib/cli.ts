import { join } from 'node:path';
import { REPO } from '../../test/support/bed';

// bin/ferry.js runs dist/; a bench compiled elsewhere times the CLI it was compiled with.
const MAIN = join(__dirname, '..', '..', 'src', 'cli', 'main.js');

/** The arguments after `node` that start Ferry's CLI, as a user's shell would. */
export const FERRY_CLI: string[] =
  MAIN === join(REPO, 'dist', 'src', 'cli', 'main.js') ? [join(REPO, 'bin', 'ferry.js')] : ['-e', `require(${JSON.stringify(MAIN)}).main([process.argv[0], 'ferry', ...process.argv.slice(1)]).then((c) => { process.exitCode = c; })`];
