import { Command, CommanderError } from 'commander';
import { coerceError } from '../errors';
import { COMMANDS } from './commands';
import type { CliContext, Io } from './context';
import { EXIT, exitCodeFor } from './exitCodes';

const defaultIo: Io = {
  out: (s) => process.stdout.write(`${s}\n`),
  err: (s) => process.stderr.write(`${s}\n`),
};

type Connect = typeof import('./connect');

// Config, Redis and the client bring zod, convict, ioredis and BullMQ: the preAction hook
// below loads them once a command is about to run, never for --help or a usage error.
let connect: Connect | undefined;

function connected(): Connect {
  if (!connect) throw new Error('internal error: config or Redis used before the command ran');
  return connect;
}

export function buildProgram(io: Io, setCode: (n: number) => void): Command {
  const program = new Command('ferry')
    .description('Live-migrate running podman containers between hosts (CRIU checkpoint/restore, BullMQ on Redis)')
    .option('-c, --config <file>', 'config file (JSON); default: $FERRY_CONFIG')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) })
    .hook('preAction', async () => {
      connect ??= await import('./connect');
    });
  const ctx: CliContext = {
    io,
    setCode,
    configFrom: (cmd) => connected().configFrom(cmd),
    clientFor: (config) => connected().clientFor(config),
    redisFor: (config, extra) => connected().redisFor(config, extra),
  };

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
  const lastRedisError = connect?.lastRedisFailure();
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
