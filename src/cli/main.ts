import { Command, CommanderError } from 'commander';
import { FerryClient } from '../client';
import { FerryConfig, loadConfig, redactUrl } from '../config/load';
import { coerceError } from '../errors';
import type { RedisOptions } from 'ioredis';
import type { RedisConnection as IORedis } from '../redis';
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

/**
 * A Redis connection for one CLI command: it gives up instead of retrying forever, so a
 * wrong address is an error, not a hang, and it keeps the connection's own error for the
 * message ("max retries" or "Connection is closed" alone hide why, e.g. an untrusted TLS
 * certificate or a refused password).
 */
function redisFor(config: FerryConfig, extra: Partial<RedisOptions> = {}): IORedis {
  const redis = createRedis(config, {
    maxRetriesPerRequest: 2,
    retryStrategy: (times) => (times > 3 ? null : 200 * times),
    connectTimeout: 5000,
    // Input is validated before the first command: a rejected request never touches Redis.
    lazyConnect: true,
    ...extra,
  });
  redis.on('error', (e: Error) => {
    // ioredis ends with its own "max retries" error: keep the one that says why.
    if (lastRedisError && /max retries per request/i.test(e.message)) return;
    lastRedisError = { message: `${e.message} at ${redactUrl(config.redis.url)}`, plainUrl: config.redis.url.startsWith('redis:') && !config.redis.tls.enabled };
  });
  return redis;
}

function clientFor(config: FerryConfig): FerryClient {
  return new FerryClient(config, redisFor(config));
}

let lastRedisError: { message: string; plainUrl: boolean } | undefined;

export function buildProgram(io: Io, setCode: (n: number) => void): Command {
  const program = new Command('ferry')
    .description('Live-migrate running podman containers between hosts (CRIU checkpoint/restore, BullMQ on Redis)')
    .option('-c, --config <file>', 'config file (JSON); default: $FERRY_CONFIG')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) });
  const ctx: CliContext = { io, setCode, configFrom, clientFor, redisFor };

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
    const described = describeError(err);
    io.err(`ferry: error: ${described.message}`);
    return described.code ?? exitCodeFor(err);
  }
}

function describeError(err: Error): { message: string; code?: number } {
  const seen = `${err.message} ${lastRedisError?.message ?? ''}`;
  // The connection's own error says more than the command's: a refused password surfaces
  // to the command as "Connection is closed".
  if (/NOAUTH|WRONGPASS|invalid password|invalid username-password/i.test(seen)) {
    return { message: `Redis refused the password (${lastRedisError?.message ?? err.message}); check redis.password / redis.username`, code: EXIT.usage };
  }
  if (/ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENOTFOUND|EHOSTUNREACH|Connection is closed|max retries|MaxRetriesPerRequest|certificate/i.test(seen)) {
    // A TLS-only Redis resets a plain connection at once, which says nothing by itself.
    const hint = lastRedisError?.plainUrl && /ECONNRESET|Connection is closed/.test(seen) ? '; the server closed the connection at once: if it only speaks TLS, use a rediss:// URL' : '';
    return { message: `cannot reach Redis (${lastRedisError?.message ?? err.message})${hint}; check redis.url / FERRY_REDIS_URL, TLS settings, and that Redis runs` };
  }
  return { message: err.message };
}
