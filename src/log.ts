import pino, { DestinationStream, Logger } from 'pino';
import pretty from 'pino-pretty';

export interface LoggerOptions {
  /** Human-readable lines instead of JSON; default: when stdout is a terminal. */
  pretty?: boolean;
  /** Where lines go; default stdout. */
  destination?: DestinationStream;
}

/**
 * Structured JSON logs (one object a line) for machines, and readable coloured lines when
 * a person watches the terminal. The CLI's own messages to a person go to stderr separately.
 * Redaction keeps secrets out even if one is logged by mistake. Callers put migrationId,
 * step and host in child loggers, so every line of a step carries them.
 */
export function createLogger(level: string, base: Record<string, unknown> = {}, opts: LoggerOptions = {}): Logger {
  const options = {
    level,
    base: { ...base },
    redact: { paths: ['password', '*.password', 'redis.password', 'token', '*.token', 'privateKey', '*.privateKey'], censor: '<hidden>' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  const usePretty = opts.pretty ?? process.stdout.isTTY;
  if (usePretty) {
    // A stream in this thread, not a transport: no worker thread to start or to lose lines
    // from when the process exits. Only used on a terminal, where speed matters little.
    const stream = pretty({
      colorize: true,
      sync: true,
      translateTime: 'SYS:HH:MM:ss.l',
      // Shown in the message line already.
      ignore: 'pid,hostname,host,migrationId,step',
      messageFormat: '{if host}[{host}] {end}{if migrationId}{migrationId} {end}{if step}{step}: {end}{msg}',
      destination: opts.destination ?? 1,
    });
    return pino(options, stream);
  }
  return opts.destination ? pino(options, opts.destination) : pino(options);
}
