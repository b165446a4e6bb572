import type { MigrationState } from '../engine/model';

/**
 * Which ended migrations the dashboard offers to try again (as a new migration of the same
 * container between the same hosts). Not needs-attention: there the container may be on
 * neither host and a person has to look first.
 */
export function retryableState(state: MigrationState): boolean {
  return state === 'failed' || state === 'failed-rolled-back' || state === 'cancelled';
}
