import { EventEmitter } from 'node:events';
import { Worker } from 'bullmq';
import type { RedisConnection as IORedis } from '../src/redis';
import type { Logger } from 'pino';
import { FerryConfig, findHost } from '../src/config/load';
import { createStepProcessor } from '../src/engine/processor';
import { createRepairer } from '../src/engine/repair';
import { installationIdOf } from '../src/engine/installation';
import { ValidationError, coerceError } from '../src/errors';
import { LocalRunner } from '../src/exec/localRunner';
import { HostQueues, hostQueueName, urgentQueueName } from '../src/queues';
import { checkRedisSettings, createRedis, refusedPassword } from '../src/redis';
import { SshPool } from '../src/ssh/pool';
import { BatchRunner } from '../src/fleet/batchRunner';
import { BatchStore } from '../src/fleet/batchStore';
import { HostState } from '../src/store/hostState';
import { createControlWorker } from './controlWorker';
import { STEPS } from '../src/steps';
import { MigrationStore } from '../src/store/migrationStore';

export interface HostWorkerOptions {
  config: FerryConfig;
  host: string;
  log: Logger;
}

// Take-overs and rollbacks at once: each is short, and they are rarer than steps.
const URGENT_CONCURRENCY = 4;

/**
 * The worker every host runs: consumes that host's queue and runs the steps that must
 * happen there. Errors of its background loops are emitted as 'error', never thrown.
 */
export class HostWorker extends EventEmitter {
  private worker: Worker | undefined;
  private urgent: Worker | undefined;
  private urgentConnection: IORedis | undefined;
  private closing: Promise<void> | undefined;
  private repairTimer: NodeJS.Timeout | undefined;
  private readonly ssh: SshPool;
  private connection: IORedis | undefined;
  private workerConnection: IORedis | undefined;
  private queues: HostQueues | undefined;
  private control: Worker | undefined;
  private controlConnection: IORedis | undefined;

  constructor(private readonly opts: HostWorkerOptions) {
    super();
    this.ssh = new SshPool(opts.config);
  }

  async start(): Promise<void> {
    const { config, log } = this.opts;
    const self = findHost(config, this.opts.host);
    if (!self) throw new ValidationError(`unknown host "${this.opts.host}": not in the configured inventory (${config.hosts.map((h) => h.name).join(', ') || 'empty'})`);
    const connection = createRedis(config);
    this.connection = connection;
    // Unheard, ioredis prints each error with its stack. A refused password fails the check
    // below and reaches the operator once, as start's error; other errors (Redis not up yet,
    // which ioredis retries) are reported like every other background error.
    let checked = false;
    connection.on('error', (e: Error) => {
      if (checked || !refusedPassword(e)) this.emit('error', coerceError(e));
    });
    await checkRedisSettings(connection, config).then((warnings) => warnings.forEach((w) => log.warn(w)));
    checked = true;
    const store = new MigrationStore(connection, config.redis.prefix);
    const installation = installationIdOf(config);
    const queues = new HostQueues(config, connection);
    this.queues = queues;
    const localRunner = new LocalRunner(`host ${self.name} (local)`);
    const hostState = new HostState(connection, config.redis.prefix);
    const batches = new BatchRunner(new BatchStore(connection, config.redis.prefix), store, {
      config,
      store,
      queues,
      isCordoned: (h) => hostState.isCordoned(h),
    });
    const processor = createStepProcessor({
      config,
      self,
      installation,
      store,
      queues,
      localRunner,
      remoteRunner: (name) => this.ssh.get(name),
      steps: STEPS,
      log,
      onTerminal: (rec) => batches.onMigrationTerminal(rec),
    });
    // BullMQ does not close a connection it was handed: these are ours to disconnect.
    this.workerConnection = createRedis(config);
    this.urgentConnection = createRedis(config);
    const consume = (queue: string, connection: IORedis, concurrency: number): Worker => {
      const w = new Worker(queue, processor, {
        connection,
        prefix: config.redis.prefix,
        concurrency,
        lockDuration: config.worker.lockDurationMs,
        stalledInterval: config.worker.stalledIntervalMs,
        maxStalledCount: 5,
        autorun: false,
      });
      w.on('error', (e) => this.emit('error', coerceError(e)));
      // A lost job lock is not acted on here: BullMQ reports it by job id, which may by then
      // name a newer delivery of the same job in this process. Each attempt renews its own
      // delivery's lock by token and stops itself when it is lost (src/engine/jobLock.ts).
      w.on('failed', (job, e) => log.debug({ jobId: job?.id, err: e.message }, 'job failed'));
      void w.run().catch((e: unknown) => this.emit('error', coerceError(e)));
      return w;
    };
    // Both share one processor, so an attempt on either knows the other's (it stops them).
    this.worker = consume(hostQueueName(self.name), this.workerConnection, config.worker.concurrency);
    this.urgent = consume(urgentQueueName(self.name), this.urgentConnection, URGENT_CONCURRENCY);
    await Promise.all([this.worker.waitUntilReady(), this.urgent.waitUntilReady()]);
    this.controlConnection = createRedis(config);
    this.control = createControlWorker({ config, hosts: hostState, batches, log, runnerFor: (h) => this.ssh.get(h) }, this.controlConnection);
    this.control.on('error', (e) => this.emit('error', coerceError(e)));
    this.control.on('failed', (job, e) => log.warn({ jobId: job?.id, err: e.message }, 'control job failed'));
    void this.control.run().catch((e: unknown) => this.emit('error', coerceError(e)));
    // "ready" means every queue of this worker is consumed, the control queue's too.
    await this.control.waitUntilReady();
    // Jobs removed by hand or lost in a Redis crash, and containers frozen for a migration
    // that lost track of them: looked for now and every few seconds (engine/repair.ts).
    const repair = createRepairer({ config, self, installation, store, queues, localRunner, remoteRunner: (name) => this.ssh.get(name), log });
    let repairing = false;
    const repairPass = (): void => {
      if (repairing || this.closing) return;
      repairing = true;
      repair()
        .catch((e: unknown) => this.emit('error', coerceError(e)))
        // Batches too, from the first pass on: a window left half-refilled by a crash of any
        // Ferry process goes on. A slot whose migration ended while its end could not be
        // reported, or picked by a process that died before submitting it, would otherwise
        // wait for a worker to restart, and the batch with it.
        .then(() => batches.reconcileAll())
        .catch((e: unknown) => this.emit('error', coerceError(e)))
        .finally(() => (repairing = false));
    };
    repairPass();
    this.repairTimer = setInterval(repairPass, config.worker.repairIntervalMs);
    this.repairTimer.unref();
    log.info({ queue: hostQueueName(self.name), concurrency: config.worker.concurrency }, 'worker ready');
  }

  /** Lets running steps finish, then disconnects. Safe to call twice. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      clearInterval(this.repairTimer);
      await Promise.all([this.worker?.close(), this.urgent?.close()]);
      await this.control?.close();
      this.controlConnection?.disconnect();
      await this.queues?.close();
      this.ssh.close();
      this.workerConnection?.disconnect();
      this.urgentConnection?.disconnect();
      this.connection?.disconnect();
    })();
    return this.closing;
  }
}
