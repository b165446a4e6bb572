import { PassThrough } from 'node:stream';
import type { Podman } from '../podman/podman';

/**
 * `podman save` on one host piped into `podman load` on another, without a temporary
 * file; if either side fails the other is cut off so neither hangs.
 */
export async function copyImage(from: Podman, to: Podman, ref: string): Promise<number> {
  const pipe = new PassThrough();
  let bytes = 0;
  pipe.on('data', (c: Buffer) => {
    bytes += c.length;
  });
  const loading = to.loadImage(pipe);
  const saving = from.saveImage(ref, pipe).then(
    () => pipe.end(),
    (e: unknown) => {
      pipe.destroy();
      throw e;
    },
  );
  await Promise.all([saving, loading]);
  return bytes;
}
