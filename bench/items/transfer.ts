import { createReadStream } from 'node:fs';
import { Transform } from 'node:stream';
import { createHash } from 'node:crypto';
import { loadConfig, findHost } from '../../src/config/load';
import { SshRunner } from '../../src/ssh/sshRunner';
import { receiveRemote } from '../../src/transfer/receive';
import { bed, hostInfo, makeConfig } from '../../test/support/bed';
import { now } from '../lib/clock';
import { inHost, must, run } from '../lib/shell';
import { summarize } from '../lib/stats';
import type { ItemResult } from './types';

const DIR = '/var/lib/ferry/archives';

/**
 * Item 5: push a file of `mib` MiB from this machine to host b. Ferry's path: its own
 * SshRunner (node-ssh, one exec channel on the kept-warm connection) with the sender
 * hashing as it reads and the receiver hashing as it writes (src/transfer/receive.ts).
 * OpenSSH: `scp` of the same file, with no checksum at all. Ratio = throughput Ferry ÷ scp.
 */
export async function transferBench(mib: number, reps: number, workDir: string): Promise<ItemResult[]> {
  const file = `${workDir}/xfer-${mib}.bin`;
  // Incompressible data, like a compressed archive.
  await must(['sh', '-c', `head -c ${mib}M /dev/urandom > ${file}`]);
  const cfg = loadConfig({ file: makeConfig({ top: { log: { level: 'warn' } } }).file, env: {} });
  const host = findHost(cfg, 'b');
  if (!host) throw new Error('no host b');
  const runner = new SshRunner(host, { connectTimeoutMs: 10_000 });
  const ferryMs: number[] = [];
  const scpMs: number[] = [];
  const b = bed();
  const dest = `${DIR}/bench-xfer.bin`;
  try {
    await runner.run(['true']); // the kept-warm connection exists before the clock starts, as in a worker
    for (let i = 0; i < reps; i++) {
      let t = now();
      const hash = createHash('sha256');
      const input = createReadStream(file, { highWaterMark: 1 << 20 }).pipe(
        new Transform({
          transform(chunk: Buffer, _e, done) {
            hash.update(chunk);
            done(null, chunk);
          },
        }),
      );
      const got = await receiveRemote(runner, DIR, { part: `${dest}.part`, final: dest }, input, 600_000);
      if (got.sha256 !== hash.digest('hex') || got.bytes !== mib * 1048576) throw new Error(`transfer check failed: ${JSON.stringify(got)}`);
      ferryMs.push(now() - t);
      await run(inHost('b', ['rm', '-f', dest]));
      t = now();
      await must(['scp', '-q', '-o', 'BatchMode=yes', '-i', b.ssh.key, '-o', `UserKnownHostsFile=${b.ssh.knownHosts}`, file, `root@${hostInfo('b').address}:${dest}`]);
      scpMs.push(now() - t);
      await run(inHost('b', ['rm', '-f', dest]));
    }
  } finally {
    runner.close();
    await run(['rm', '-f', file]);
  }
  const mbps = (ms: number[]) => summarize(ms.map((x) => mib / (x / 1000)));
  return [
    {
      item: 5,
      title: `Transfer of a ${mib} MiB archive: Ferry's node-ssh path ÷ OpenSSH scp (throughput)`,
      goal: '≥ 0.9',
      ratio: summarize(scpMs.map((s, i) => s / ferryMs[i])),
      met: (x) => x >= 0.9,
      details: { ferryMiBps: mbps(ferryMs), scpMiBps: mbps(scpMs), ferryMs: summarize(ferryMs), scpMs: summarize(scpMs) },
    },
  ];
}
