import type { Command } from 'commander';
import type { CliContext } from '../context';
import { lazy } from './lazy';

export function registerHosts(program: Command, ctx: CliContext): void {
  const hosts = program
    .command('hosts')
    .description("each host's reachability, podman/CRIU versions, cordon state, containers and capacity (read over SSH)")
    .option('--json', 'print JSON')
    .action(lazy(ctx, async () => (await import('../actions/hosts')).showHosts));
  hosts
    .command('trust')
    .description("show a host's SSH key fingerprint; with --fingerprint matching it, add the key to known_hosts")
    .argument('<host>', 'inventory host name')
    .option('--fingerprint <SHA256:...>', 'the fingerprint you checked out of band; the key is added only if it matches')
    .action(lazy(ctx, async () => (await import('../actions/hosts')).trustHost));
}
