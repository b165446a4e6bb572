import type { FerryConfig } from '../config/load';
import { findHost } from '../config/load';
import type { MigrationRecord } from '../engine/model';
import { ValidationError } from '../errors';

/**
 * What every cut-over hook receives, as one JSON object: on a command's stdin, or as an
 * HTTP request's body. Addresses are the hosts' inventory addresses, where published ports
 * are reached. `attempt` grows when the step is retried: hooks run again and must be idempotent.
 */
export interface CutoverPayload {
  migrationId: string;
  container: string;
  from: string;
  to: string;
  fromAddress: string;
  toAddress: string;
  ports: { hostPort: number; protocol: string }[];
  attempt: number;
}

export function cutoverPayload(rec: MigrationRecord, config: FerryConfig, attempt: number): CutoverPayload {
  const address = (name: string): string => {
    const h = findHost(config, name);
    if (!h) throw new ValidationError(`host "${name}" is not in this worker's inventory`);
    return h.address;
  };
  return {
    migrationId: rec.id,
    container: rec.container,
    from: rec.from,
    to: rec.to,
    fromAddress: address(rec.from),
    toAddress: address(rec.to),
    ports: (rec.source?.ports ?? []).map((p) => ({ hostPort: p.hostPort, protocol: p.protocol })),
    attempt,
  };
}
