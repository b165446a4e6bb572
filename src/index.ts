/**
 * The library: what `require('ferry-migrate')` gives. Importing it does nothing by itself
 * (no connection, no timer, no log line): a FerryClient connects when it is made, a
 * HostWorker when it is started.
 */
export { FerryClient } from './client';
export type { MigrateRequest } from './engine/submit';

export { loadConfig, redactConfig, findHost } from './config/load';
export type { FerryConfig, LoadOptions } from './config/load';
export type { HostConfig, HostSsh, HostCapacity } from './config/hosts';

export type { MigrationRecord, MigrationState, MigrationEvent, HealthProbe, StepRecord, ArchiveInfo, StepName } from './engine/model';
export { parseProbe } from './engine/probe';

export { parsePlan, readPlan } from './fleet/planFile';
export type { Plan, PlanEntry } from './fleet/planFile';
export type { BatchItem, BatchRecord, BatchState, BatchView } from './fleet/model';
export type { BatchRequest } from './fleet/batchRunner';

export * from './errors';

export { HostWorker } from '../workers/hostWorker';
export type { HostWorkerOptions } from '../workers/hostWorker';
