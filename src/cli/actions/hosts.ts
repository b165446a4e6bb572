import type { Command } from 'commander';
import type { CliContext } from '../context';
import { gatherHostFacts } from '../../fleet/hostFacts';
import { ValidationError } from '../../errors';
import { fetchHostKey, trustHostKey } from '../../ssh/trust';
import { EXIT } from '../exitCodes';

export async function showHosts(ctx: CliContext, opts: { json?: boolean }, cmd: Command): Promise<void> {
  const config = ctx.configFrom(cmd);
  const client = ctx.clientFor(config);
  try {
    const deps = client.drainDeps();
    const cordons = await client.hosts.all();
    const facts = await Promise.all(config.hosts.map((h) => gatherHostFacts(h, deps.runnerFor(h.name), { memoryCopy: true })));
    // Promise.all keeps the order, so facts[i] is about config.hosts[i].
    const rows = facts.map((f, i) => {
      const h = config.hosts[i];
      const running = f.containers.filter((c) => c.state === 'running');
      return { ...f, address: h.address, cordoned: Boolean(cordons[f.host]), cordon: cordons[f.host], capacity: h.capacity, running: running.map((c) => c.name) };
    });
    if (opts.json) {
      ctx.io.out(JSON.stringify(rows, null, 2));
      return;
    }
    for (const r of rows) {
      if (!r.reachable) {
        ctx.io.out(`${r.host.padEnd(10)} ${r.address.padEnd(15)} UNREACHABLE: ${r.error}`);
        continue;
      }
      ctx.io.out(
        `${r.host.padEnd(10)} ${r.address.padEnd(15)} ${r.cordoned ? 'CORDONED ' : 'ready    '} podman ${r.podmanVersion} (${r.runtime}), criu ${r.criuVersion ?? '-'}, ${r.running.length}/${r.capacity.containers} containers, ${r.memFreeMb} MB free of ${r.memTotalMb}`,
      );
      if (r.running.length) ctx.io.out(`           running: ${r.running.join(', ')}`);
      if (r.memoryCopy) {
        const m = r.memoryCopy;
        ctx.io.out(
          `           memory copy: pre-copy ${m.preCopy ? 'possible (CRIU tracks dirty memory)' : 'impossible (CRIU: no memory dirty tracking in this kernel)'}, post-copy ${m.postCopy ? 'possible in CRIU (userfaultfd), not offered by podman' : 'impossible (no userfaultfd)'}`,
        );
      }
    }
    if (rows.some((r) => !r.reachable)) ctx.setCode(1);
  } finally {
    await client.close();
  }
}

export async function trustHost(ctx: CliContext, name: string, opts: { fingerprint?: string }, cmd: Command): Promise<void> {
  const config = ctx.configFrom(cmd);
  const host = config.hosts.find((h) => h.name === name);
  if (!host) throw new ValidationError(`unknown host "${name.slice(0, 60)}"`);
  const key = await fetchHostKey(host, config.timeouts.sshConnectMs);
  ctx.io.out(`${name} (${host.address}:${host.ssh.port}) presents ${key.type} ${key.fingerprint}: ${key.status} in ${host.ssh.knownHosts}`);
  if (key.status === 'trusted') return;
  if (key.status !== 'unknown') {
    ctx.io.err(`ferry: the key of ${name} ${key.status === 'changed' ? 'differs from the one recorded' : 'is revoked'}; edit ${host.ssh.knownHosts} by hand if the change is expected`);
    ctx.setCode(EXIT.failed);
    return;
  }
  if (!opts.fingerprint) {
    ctx.io.out(`check this fingerprint on the host (ssh-keygen -lf /etc/ssh/ssh_host_${key.type.replace('ssh-', '')}_key.pub), then run: ferry hosts trust ${name} --fingerprint ${key.fingerprint}`);
    ctx.setCode(EXIT.failed);
    return;
  }
  if (opts.fingerprint !== key.fingerprint) {
    ctx.io.err(`ferry: fingerprint mismatch: you gave ${opts.fingerprint.slice(0, 80)}, ${name} presents ${key.fingerprint}; nothing was trusted`);
    ctx.setCode(EXIT.failed);
    return;
  }
  await trustHostKey(host, key);
  ctx.io.out(`trusted: added ${name}'s ${key.type} key to ${host.ssh.knownHosts}`);
}
