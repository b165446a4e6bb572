import pino, { Logger } from 'pino';

/**
 * Structured JSON logs (one object a line) for machines; the CLI's own messages to a
 * person go to stderr separately. Redaction keeps secrets out even if one is logged by mistake.
 */
export function createLogger(level: string, base: Record<string, unknown> = {}): Logger {
  return pino({
    level,
    base: { ...base },
    redact: { paths: ['password', '*.password', 'redis.password', 'privateKey', '*.privateKey'], censor: '<hidden>' },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}
