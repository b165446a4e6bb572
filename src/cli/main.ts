import { Command, CommanderError } from 'commander';
import { FerryClient } from '../client';
import { FerryConfig, loadConfig, redactUrl } from '../config/load';
import { coerceError } from '../errors';
import { createRedis } from '../redis';
import { COMMANDS } from './commands';
import type { CliContext, Io } from './context';
import { EXIT, exitCodeFor } from './exitCodes';

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
  redis.on('error', (e: Error) => {
    // Kept for the message of the command that fails (ioredis would otherwise print it
    // unhandled): "max retries" alone hides why, e.g. an untrusted TLS certificate.
    lastRedisError = `${e.message} at ${redactUrl(config.redis.url)}`;
  });
  return new FerryClient(config, redis);
}

let lastRedisError: string | undefined;


export function buildProgram(io: Io, setCode: (n: number) => void): Command {
  const program = new Command('ferry')
    .description('Live-migrate running podman containers between hosts (CRIU checkpoint/restore, BullMQ on Redis)')
    .option('-c, --config <file>', 'config file (JSON); default: $FERRY_CONFIG')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) });
  const ctx: CliContext = { io, setCode, configFrom, clientFor };

  for (const register of COMMANDS) register(program, ctx);
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
    return `cannot reach Redis (${lastRedisError ?? err.message}); check redis.url / FERRY_REDIS_URL, TLS settings, and that Redis runs`;
  }
  if (/NOAUTH|WRONGPASS|invalid password/i.test(err.message)) return `Redis refused the password (${err.message}); check redis.password`;
  return err.message;
}
