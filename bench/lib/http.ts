import { request } from 'node:http';
import { now, sleep } from './clock';

function getOnce(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host: address, port, path: '/', timeout: 500, agent: false }, (res) => {
      res.resume();
      resolve((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 400);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

/**
 * Polls http://address:port/ every `everyMs` from now on and resolves with the time of
 * the first successful answer: the end of a downtime, seen from outside, the same way
 * for Ferry and for the hand-typed sequence.
 */
export function firstAnswer(address: string, port: number, opts: { everyMs?: number; timeoutMs?: number } = {}): { promise: Promise<number | null>; stop(): void } {
  let stopped = false;
  const every = opts.everyMs ?? 10;
  const deadline = now() + (opts.timeoutMs ?? 120_000);
  const promise = (async () => {
    while (!stopped && now() < deadline) {
      if (await getOnce(address, port)) return now();
      await sleep(every);
    }
    return null;
  })();
  return {
    promise,
    stop() {
      stopped = true;
    },
  };
}
