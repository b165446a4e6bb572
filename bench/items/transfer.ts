import { createReadStream } from 'node:fs';
import { Transform } from 'node:stream';
import { loadConfig, findHost } from '../../src/config/load';
import { SshRunner } from '../../src/ssh/sshRunner';
import { receiveRemote } from '../../src/transfer/receive';
import { sha256File } from '../../src/archive/localFiles';
import { bed, hostInfo, makeConfig } from '../../test/support/bed';
import { now } from '../lib/clock';
import { inHost, must, run } from '../lib/shell';
import { summarize } from '../lib/stats';
import type { ItemResult } from './types';

const DIR = '/var/lib/ferry/archives';

/**
 * Item 5: push a file of `mib` MiB from this machine to host b the way Ferry's transfer
 * step does (src/steps/transfer.ts): its own SshRunner (node-ssh, one exec channel on the
 * kept-warm connection), the file read in 1 MiB chunks, its size checked on arrival and
 * the file renamed into place (src/transfer/receive.ts). The hash restore then checks on
 * the destination is timed separately. OpenSSH: `scp` of the same file, no checksum.
 * Ratio = throughput Ferry ÷ scp.
 */
export async function transferBench(mib: number, reps: number, workDir: string): Promise<ItemResult[]> {
  const file = `${workDir}/xfer-${mib}.bin`;
  // Incompressible data, like a compressed archive.
  await must(['sh', '-c', `head -c ${mib}M /dev/urandom > ${file}`]);
  const cfg = loadConfig({ file: makeConfig({ top: { log: { level: 'warn' } } }).file, env: {} });
  const host = findHost(cfg, 'b');
  if (!host) throw new Error('no host b');
  const runner = new SshRunner(host, { connectTimeoutMs: 10_000 });
  const sha256 = (await sha256File(file)).sha256;
  const ferryMs: number[] = [];
  const verifyMs: number[] = [];
  const scpMs: number[] = [];
  const b = bed();
  const dest = `${DIR}/bench-xfer.bin`;
  try {
    await runner.run(['true']); // the kept-warm connection exists before the clock starts, as in a worker
    for (let i = 0; i < reps; i++) {
      let t = now();
      // As in the transfer step: a counting pass-through (progress events), no hashing.
      let sent = 0;
      const input = createReadStream(file, { highWaterMark: 1 << 20 }).pipe(
        new Transform({
          transform(chunk: Buffer, _e, done) {
            sent += chunk.length;
            done(null, chunk);
          },
        }),
      );
      const got = await receiveRemote(runner, DIR, { part: `${dest}.part`, final: dest }, { bytes: mib * 1048576 }, input, 600_000);
      if (got.bytes !== mib * 1048576 || !got.moved || sent !== got.bytes) throw new Error(`transfer check failed: ${JSON.stringify(got)}`);
      ferryMs.push(now() - t);
      // The hash check restore makes on the destination before podman sees the file (there
      // in node, from the page cache; here openssl on b), timed on its own.
      const v = now();
      const h = await must(inHost('b', ['openssl', 'dgst', '-sha256', '-r', dest]));
      if (!h.startsWith(sha256)) throw new Error(`hash on b differs: ${h}`);
      verifyMs.push(now() - v);
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
      details: {
        ferryMiBps: mbps(ferryMs),
        scpMiBps: mbps(scpMs),
        ferryMs: summarize(ferryMs),
        scpMs: summarize(scpMs),
        destinationHashMs: summarize(verifyMs),
        ratioCountingTheDestinationHash: summarize(scpMs.map((x, i) => x / (ferryMs[i] + verifyMs[i]))),
      },
      notes: [
        'Ferry = the transfer step (size checked on arrival); the sha256 recorded at checkpoint is verified on the destination by restore, before podman reads the file: timed separately as destinationHashMs, and counted in ratioCountingTheDestinationHash. scp checks nothing.',
      ],
    },
  ];
}
