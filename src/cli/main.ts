import { Command, CommanderError } from 'commander';
import { FerryClient } from '../client';
import { FerryConfig, loadConfig, redactConfig } from '../config/load';
import { MigrationRecord } from '../engine/model';
import { coerceError } from '../errors';
import { createLogger } from '../log';
import { createRedis } from '../redis';
import { HostWorker } from '../../workers/hostWorker';
import { EXIT, exitCodeFor } from './exitCodes';
import { parseProbe } from './probe';
import { formatEvent, formatRecord } from './render';

interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

const defaultIo: Io = {
  out: (s) => process.stdout.write(`${s}\n`),
  err: (s) => process.stderr.write(`${s}\n`),
};

function configFrom(cmd: Command): FerryConfig {
  const opts = cmd.optsWithGlobals<{ config?: string }>();
  return loadConfig({ file: opts.config });
}

/** The CLI connection gives up instead of retrying forever, so a wrong Redis address is an error, not a hang. */
function clientFor(config: FerryConfig): FerryClient {
  const redis = createRedis(config, {
    maxRetriesPerRequest: 2,
    retryStrategy: (times) => (times > 3 ? null : 200 * times),
    connectTimeout: 5000,
    // Input is validated before the first command: a rejected request never touches Redis.
    lazyConnect: true,
  });
  redis.on('error', () => {
    // Reported by the command that fails; ioredis would otherwise print unhandled errors.
  });
  return new FerryClient(config, redis);
}

export function outcomeCode(rec: MigrationRecord): number {
  return rec.state === 'succeeded' ? EXIT.ok : EXIT.failed;
}

export function buildProgram(io: Io, setCode: (n: number) => void): Command {
  const program = new Command('ferry')
    .description('Live-migrate running podman containers between hosts (CRIU checkpoint/restore, BullMQ on Redis)')
    .option('-c, --config <file>', 'config file (JSON); default: $FERRY_CONFIG')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) });

  program
    .command('migrate')
    .description('migrate one running container to another host')
    .argument('<container>', 'container name on the source host')
    .requiredOption('--from <host>', 'source host (inventory name)')
    .requiredOption('--to <host>', 'destination host (inventory name)')
    .option('--probe <spec>', 'health check on the destination: auto | none | tcp:PORT | http:PORT[/PATH] | exec:CMD', 'auto')
    .option('--wait', 'follow progress until the migration ends; exit 0 only if it succeeded')
    .option('--timeout <seconds>', 'with --wait: give up waiting after this long', (v) => Number(v))
    .option('--json', 'print JSON instead of text')
    .action(async (container: string, opts: { from: string; to: string; probe: string; wait?: boolean; json?: boolean; timeout?: number }, cmd: Command) => {
      const probe = parseProbe(opts.probe);
      const client = clientFor(configFrom(cmd));
      try {
        const rec = await client.migrate({ container, from: opts.from, to: opts.to, probe });
        if (!opts.wait) {
          io.out(opts.json ? JSON.stringify({ id: rec.id }) : rec.id);
          return;
        }
        if (!opts.json) io.out(`migration ${rec.id}: ${container} ${opts.from} -> ${opts.to}`);
        const final = await client.follow(rec.id, (ev) => {
          if (!opts.json) io.out(formatEvent(ev, rec.createdAt));
        }, { timeoutMs: opts.timeout ? opts.timeout * 1000 : undefined });
        io.out(opts.json ? JSON.stringify(final) : formatRecord(final));
        setCode(outcomeCode(final));
      } finally {
        await client.close();
      }
    });

  program
    .command('status')
    .description('show one migration, or the most recent ones')
    .argument('[id]', 'migration id')
    .option('--json', 'print JSON')
    .option('--limit <n>', 'how many recent migrations', (v) => Number(v), 20)
    .action(async (id: string | undefined, opts: { json?: boolean; limit: number }, cmd: Command) => {
      const client = clientFor(configFrom(cmd));
      try {
        if (id) {
          const rec = await client.get(id);
          if (!rec) {
            io.err(`ferry: no migration with id "${id.slice(0, 80)}"`);
            setCode(EXIT.usage);
            return;
          }
          io.out(opts.json ? JSON.stringify(rec, null, 2) : formatRecord(rec));
          return;
        }
        const list = await client.store.list({ limit: opts.limit });
        if (opts.json) io.out(JSON.stringify(list, null, 2));
        else if (list.length === 0) io.out('no migrations yet');
        else for (const r of list) io.out(`${r.id}  ${r.state.padEnd(18)} ${r.container} ${r.from} -> ${r.to}  ${new Date(r.createdAt).toISOString()}`);
      } finally {
        await client.close();
      }
    });

  program
    .command('cancel')
    .description('cancel a migration: if queued it never starts; once the container is frozen it finishes or rolls back')
    .argument('<id>', 'migration id')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const client = clientFor(configFrom(cmd));
      try {
        const rec = await client.cancel(id);
        io.out(`${rec.id}: ${rec.state}${rec.cancelRequested ? ' (cancel requested)' : ''}`);
      } finally {
        await client.close();
      }
    });

  program
    .command('worker')
    .description("run this host's worker: consumes the host's queue until SIGINT/SIGTERM")
    .requiredOption('--host <name>', 'which inventory host this machine is')
    .action(async (opts: { host: string }, cmd: Command) => {
      const config = configFrom(cmd);
      const log = createLogger(config.log.level, { host: opts.host });
      const worker = new HostWorker({ config, host: opts.host, log });
      worker.on('error', (e: Error) => log.error({ err: e.message }, 'worker error'));
      await worker.start();
      await new Promise<void>((resolve) => {
        const stop = (sig: string) => {
          log.info({ signal: sig }, 'stopping: letting running steps finish');
          void worker.close().then(() => {
            log.info('worker stopped');
            resolve();
          });
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      });
    });

  const config = program.command('config').description('configuration');
  config
    .command('check')
    .description('validate the configuration and print it with secrets hidden; checks Redis too unless --offline')
    .option('--offline', 'do not contact Redis')
    .action(async (opts: { offline?: boolean }, cmd: Command) => {
      const conf = configFrom(cmd);
      io.out(JSON.stringify(redactConfig(conf), null, 2));
      if (opts.offline) return;
      const redis = createRedis(conf, { maxRetriesPerRequest: 1, retryStrategy: () => null, connectTimeout: 5000, lazyConnect: true });
      redis.on('error', () => undefined);
      try {
        await redis.connect();
        const { checkRedisSettings } = await import('../redis');
        for (const w of await checkRedisSettings(redis, conf)) io.err(`warning: ${w}`);
        io.err('config OK; Redis reachable');
      } finally {
        redis.disconnect();
      }
    });

  return program;
}

/** Entry point: returns the exit code instead of calling process.exit, so tests can run it in-process. */
export async function main(argv: string[], io: Io = defaultIo): Promise<number> {
  let code: number = EXIT.ok;
  const program = buildProgram(io, (n) => {
    code = n;
  });
  try {
    await program.parseAsync(argv);
    return code;
  } catch (e: unknown) {
    if (e instanceof CommanderError) {
      return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    const err = coerceError(e);
    io.err(`ferry: error: ${describeError(err)}`);
    return exitCodeFor(err);
  }
}

function describeError(err: Error): string {
  if (/ECONNREFUSED|ETIMEDOUT|ENOTFOUND|Connection is closed|max retries|MaxRetriesPerRequest/i.test(err.message)) {
    return `cannot reach Redis (${err.message}); check redis.url / FERRY_REDIS_URL and that Redis runs`;
  }
  if (/NOAUTH|WRONGPASS|invalid password/i.test(err.message)) return `Redis refused the password (${err.message}); check redis.password`;
  return err.message;
}
