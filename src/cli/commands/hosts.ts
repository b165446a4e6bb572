import type { Command } from 'commander';
import type { CliContext } from '../context';
import { gatherHostFacts } from '../../fleet/hostFacts';

export function registerHosts(program: Command, ctx: CliContext): void {
  program
    .command('hosts')
    .description("each host's reachability, podman/CRIU versions, cordon state, containers and capacity (read over SSH)")
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const config = ctx.configFrom(cmd);
      const client = ctx.clientFor(config);
      try {
        const deps = client.drainDeps();
        const cordons = await client.hosts.all();
        const facts = await Promise.all(config.hosts.map((h) => gatherHostFacts(h, deps.runnerFor(h.name))));
        const rows = facts.map((f) => {
          const h = config.hosts.find((x) => x.name === f.host)!;
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
          ctx.io.out(`${r.host.padEnd(10)} ${r.address.padEnd(15)} ${r.cordoned ? 'CORDONED ' : 'ready    '} podman ${r.podmanVersion} (${r.runtime}), criu ${r.criuVersion ?? '-'}, ${r.running.length}/${r.capacity.containers} containers, ${r.memFreeMb} MB free of ${r.memTotalMb}`);
          if (r.running.length) ctx.io.out(`           running: ${r.running.join(', ')}`);
        }
        if (rows.some((r) => !r.reachable)) ctx.setCode(1);
      } finally {
        await client.close();
      }
    });
}
