import { createHash } from 'node:crypto';
import { context, Span, SpanStatusCode, trace, TraceFlags } from '@opentelemetry/api';
import type { StepName } from './config/load';
import { coerceError } from './errors/coerceError';

/**
 * OpenTelemetry spans through the API only. Without an SDK registered (the default) every
 * call here is a no-op; a user turns tracing on by registering an SDK and exporter before
 * Ferry starts (docs/monitoring.md shows how), so Ferry ships no exporter of its own.
 */
const TRACER = 'ferry';

/**
 * The steps of one migration run in different processes on different hosts, so there is no
 * live parent span to hand from one to the next. Instead every step span hangs off the same
 * parent, derived from the migration id: one trace per migration, whichever worker runs it.
 */
export function migrationTraceContext(migrationId: string) {
  const h = createHash('sha256').update(`ferry-migration:${migrationId}`).digest('hex');
  return trace.setSpanContext(context.active(), {
    traceId: h.slice(0, 32),
    spanId: h.slice(32, 48),
    traceFlags: TraceFlags.SAMPLED,
    isRemote: true,
  });
}

export interface StepSpanInfo {
  migrationId: string;
  container: string;
  from: string;
  to: string;
  step: StepName;
  host: string;
  attempt: number;
}

/** Runs `fn` inside a span `ferry.step <step>`; records its error and ends it either way. */
export async function withStepSpan<T>(info: StepSpanInfo, fn: () => Promise<T>): Promise<T> {
  const tracer = trace.getTracer(TRACER);
  const attributes = {
    'ferry.migration.id': info.migrationId,
    'ferry.container': info.container,
    'ferry.from': info.from,
    'ferry.to': info.to,
    'ferry.step': info.step,
    'ferry.host': info.host,
    'ferry.attempt': info.attempt,
  };
  return tracer.startActiveSpan(`ferry.step ${info.step}`, { attributes }, migrationTraceContext(info.migrationId), async (span: Span) => {
    try {
      const out = await fn();
      span.setStatus({ code: SpanStatusCode.OK });
      return out;
    } catch (e: unknown) {
      const err = coerceError(e);
      span.recordException(err);
      span.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
      throw e;
    } finally {
      span.end();
    }
  });
}

/**
 * One span covering a whole migration, from creation to its end state, recorded once it has
 * ended (its start time is set in the past). Same trace as its steps.
 */
export function recordMigrationSpan(rec: { id: string; container: string; from: string; to: string; state: string; createdAt: number; finishedAt?: number; error?: string }): void {
  const tracer = trace.getTracer(TRACER);
  const span = tracer.startSpan(
    `ferry.migration ${rec.container}`,
    { startTime: rec.createdAt, attributes: { 'ferry.migration.id': rec.id, 'ferry.container': rec.container, 'ferry.from': rec.from, 'ferry.to': rec.to, 'ferry.state': rec.state } },
    migrationTraceContext(rec.id),
  );
  span.setStatus(rec.state === 'succeeded' ? { code: SpanStatusCode.OK } : { code: SpanStatusCode.ERROR, message: rec.error ?? rec.state });
  span.end(rec.finishedAt ?? Date.now());
}
