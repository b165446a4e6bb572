import { coerceError } from '../errors/coerceError';
import { splitForLazyRestore, unsplit } from './criuImages';

/*
 * The command the runtime wrapper runs on a host, right after runc's dump and before podman
 * exports it (see wrapper.ts): `node splitMain.js split IMAGES KEEP` or `... unsplit IMAGES KEEP`.
 * It prints one JSON line; its exit code is the answer. Loads nothing but node:fs, so it
 * starts in tens of milliseconds inside the freeze.
 */
function main(argv: string[]): number {
  const [op, images, keep] = argv;
  if (!images || !keep || (op !== 'split' && op !== 'unsplit')) {
    process.stderr.write('usage: splitMain split|unsplit IMAGES_DIR KEEP_DIR\n');
    return 2;
  }
  try {
    const out = op === 'split' ? splitForLazyRestore(images, keep) : { files: unsplit(images, keep) };
    process.stdout.write(`${JSON.stringify(out)}\n`);
    return 0;
  } catch (e: unknown) {
    process.stderr.write(`${op} ${images}: ${coerceError(e).message}\n`);
    return 1;
  }
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
