import { bed, onHost, podmanOn } from './bed';

/*
 * A workload whose memory can be checked after a move: a shell holding a 64 MB string (48 MB of
 * random bytes, base64), with a counter and a random token written out every 0.2 s. On request
 * (/tmp/want-md5) it writes the md5 of the string it holds: the proof that its memory arrived whole.
 */
const PAYLOAD =
  'x=$(head -c 48000000 /dev/urandom | base64); printf %s "$x" | md5sum > /tmp/md5.0; tok=$RANDOM$RANDOM; i=0; while :; do i=$((i+1)); echo "$tok $i" > /tmp/count.new; mv /tmp/count.new /tmp/count; if [ -e /tmp/want-md5 ]; then rm -f /tmp/want-md5; printf %s "$x" | md5sum > /tmp/md5.new; mv /tmp/md5.new /tmp/md5; fi; sleep 0.2; done';

export function sh(host: string, script: string, ...args: string[]): string {
  const r = onHost(host, ['sh', '-c', script, 'sh', ...args]);
  if (r.code !== 0) throw new Error(`on ${host}: ${script} exited ${r.code}: ${r.stderr}`);
  return r.stdout.trim();
}

export function counter(host: string, name: string): { token: string; count: number } {
  const out = sh(host, 'podman exec "$1" cat /tmp/count', name);
  const [token, count] = out.split(' ');
  return { token, count: Number(count) };
}

export async function memoryMd5(host: string, name: string): Promise<string> {
  sh(host, 'podman exec "$1" sh -c "rm -f /tmp/md5; touch /tmp/want-md5"', name);
  for (let i = 0; i < 100; i++) {
    const r = podmanOn(host, 'exec', name, 'cat', '/tmp/md5');
    if (r.code === 0 && r.stdout.trim()) return r.stdout.trim();
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new Error(`no md5 from ${name} on ${host}`);
}

/** Starts the workload on a host (podman's own flags first, e.g. --runtime) and returns its state once its memory is full. */
export async function startWorkload(host: string, name: string, podmanFlags: string[] = []): Promise<{ token: string; count: number; md5: string }> {
  sh(host, 'h=$1 n=$2 i=$3 p=$4; shift 4; podman "$@" run -d --name "$n" "$i" sh -c "$p" >/dev/null', host, name, bed().image, PAYLOAD, ...podmanFlags);
  for (let i = 0; i < 150; i++) {
    const r = podmanOn(host, 'exec', name, 'cat', '/tmp/md5.0');
    if (r.code === 0 && r.stdout.trim()) {
      await new Promise((res) => setTimeout(res, 600));
      return { ...counter(host, name), md5: r.stdout.trim() };
    }
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new Error(`workload ${name} did not fill its memory`);
}
