/**
 * What each state of a migration means, defined once: the engine, the CLI, the metrics and
 * the dashboard (which gets it through its API) all read this table.
 */

/** How people see a migration: the dashboard's and `ferry watch`'s groups. */
export type Category = 'running' | 'queued' | 'done' | 'failed';

/** The order the views show the groups in. */
export const CATEGORIES: readonly Category[] = ['running', 'queued', 'done', 'failed'];

/** Where the container is once a migration ended: moved, still (or again) where it was, or nobody knows without looking. */
export type EndsOn = 'destination' | 'source' | 'unknown';

interface StateMeaning {
  category: Category;
  /** Set for the end states, which never change again. */
  endsOn?: EndsOn;
}

const STATES = {
  queued: { category: 'queued' },
  running: { category: 'running' },
  'rolling-back': { category: 'running' },
  succeeded: { category: 'done', endsOn: 'destination' },
  // Ended before the container was frozen (preflight failed, or refused before it began).
  failed: { category: 'failed', endsOn: 'source' },
  'failed-rolled-back': { category: 'failed', endsOn: 'source' },
  'needs-attention': { category: 'failed', endsOn: 'unknown' },
  // Cancelled before it started, or rolled back after a cancel.
  cancelled: { category: 'failed', endsOn: 'source' },
} as const satisfies Record<string, StateMeaning>;

export type MigrationState = keyof typeof STATES;

/** Every state, in the order a migration can pass through them. */
export const MIGRATION_STATES = Object.keys(STATES) as MigrationState[];

function meaning(state: MigrationState): StateMeaning {
  return STATES[state];
}

function where(test: (m: StateMeaning) => boolean): ReadonlySet<MigrationState> {
  return new Set(MIGRATION_STATES.filter((s) => test(meaning(s))));
}

export function categoryOf(state: MigrationState): Category {
  return meaning(state).category;
}

/** Where the container is after a migration that ended in `state`; undefined while it has not ended. */
export function endsOn(state: MigrationState): EndsOn | undefined {
  return meaning(state).endsOn;
}

/** End states: the record never changes again. */
export const TERMINAL_STATES = where((m) => m.endsOn !== undefined);

/** Not ended yet: queued or moving. */
export const ACTIVE_STATES = where((m) => m.endsOn === undefined);

/** Ended without the container moving (or nobody knows where it is). */
export const FAILURE_STATES = where((m) => m.category === 'failed');

/**
 * Ended migrations that may be tried again as a new migration of the same container between
 * the same hosts: only where the container is known to be on the source. Not
 * needs-attention: there it may be on neither host and a person has to look first.
 */
export const RETRYABLE_STATES = where((m) => m.endsOn === 'source');

/** The vocabulary as plain data, for the browser (the page keeps no copy of its own). */
export interface StateVocabulary {
  categories: readonly Category[];
  states: Record<MigrationState, { category: Category; terminal: boolean; retryable: boolean }>;
}

export const STATE_VOCABULARY: StateVocabulary = {
  categories: CATEGORIES,
  states: Object.fromEntries(MIGRATION_STATES.map((s) => [s, { category: categoryOf(s), terminal: TERMINAL_STATES.has(s), retryable: RETRYABLE_STATES.has(s) }])) as StateVocabulary['states'],
};
