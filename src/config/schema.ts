import convict from 'convict';
import { STEP_NAMES, STEP_TABLE, StepInfo } from '../engine/steps';
import { HOOK_FAILURE_POLICIES } from '../hooks/config';
import { MEMORY_COPY_MODES } from '../engine/model';
import { CONTROL_CHARS } from '../names';

/** One setting per step, its default taken from the step table. */
function perStep(doc: string, field: 'attempts' | 'timeoutMs', envPrefix: string) {
  const out: Record<string, convict.SchemaObj<number>> = {};
  for (const step of STEP_NAMES) {
    const info: StepInfo = STEP_TABLE[step];
    out[step] = { doc: `${doc} (${step})`, format: 'positive-int', default: info[field], env: `${envPrefix}_${step.toUpperCase()}` };
  }
  return out;
}

/** A config value that lists host folders. */
function absolutePaths(value: unknown): void {
  if (!Array.isArray(value)) throw new Error('must be an array of absolute paths');
  for (const v of value) if (typeof v !== 'string' || !v.startsWith('/') || CONTROL_CHARS.test(v)) throw new Error(`${JSON.stringify(v)} is not an absolute path without control characters, e.g. "/srv/shared"`);
}

/**
 * The one configuration schema. Built by a function so that nothing happens at import time;
 * the custom formats it uses are registered by `registerFormats()` in load.ts.
 */
export function buildSchema() {
  return {
    redis: {
      url: { doc: 'Redis URL (redis:// or rediss:// for TLS)', format: String, default: 'redis://127.0.0.1:6379', env: 'FERRY_REDIS_URL' },
      username: { doc: 'Redis ACL user name', format: String, default: '', env: 'FERRY_REDIS_USERNAME' },
      password: { doc: 'Redis password', format: String, default: '', sensitive: true, env: 'FERRY_REDIS_PASSWORD' },
      prefix: { doc: 'key prefix for every Ferry key and BullMQ queue', format: 'ferry-key', default: 'ferry', env: 'FERRY_REDIS_PREFIX' },
      tls: {
        enabled: { doc: 'connect with TLS', format: 'strict-boolean', default: false, env: 'FERRY_REDIS_TLS' },
        ca: { doc: 'CA certificate file (PEM)', format: String, default: '' },
        cert: { doc: 'client certificate file (PEM)', format: String, default: '' },
        key: { doc: 'client key file (PEM)', format: String, default: '', sensitive: true },
        rejectUnauthorized: { doc: 'verify the server certificate', format: 'strict-boolean', default: true },
      },
      cluster: {
        nodes: {
          doc: 'Redis Cluster seed nodes as "host:port"; empty: no cluster. Keys then carry the prefix as a hash tag ({prefix}), as BullMQ requires',
          format: 'host-port-list',
          default: [] as string[],
          env: 'FERRY_REDIS_CLUSTER_NODES',
        },
      },
      sentinel: {
        name: { doc: 'Sentinel master group name; empty: no Sentinel', format: String, default: '' },
        sentinels: { doc: 'Sentinel addresses as "host:port"', format: 'host-port-list', default: [] as string[] },
        password: { doc: 'Sentinel password', format: String, default: '', sensitive: true },
      },
      requireNoEviction: {
        doc: 'refuse to start when Redis may evict keys (maxmemory-policy other than noeviction)',
        format: 'strict-boolean',
        default: true,
      },
    },
    hosts: {
      doc: 'the host inventory: every host a worker runs on and Ferry may migrate to or from',
      format: 'host-inventory',
      default: [] as unknown[],
    },
    retry: {
      attempts: perStep('how many times a step is tried', 'attempts', 'FERRY_RETRY_ATTEMPTS'),
      backoffMs: { doc: 'first retry delay; doubles each time', format: 'nat', default: 1000, env: 'FERRY_RETRY_BACKOFF_MS' },
    },
    timeouts: {
      step: perStep('step time limit in ms', 'timeoutMs', 'FERRY_TIMEOUT'),
      sshConnectMs: { doc: 'SSH connection (handshake) time limit', format: 'positive-int', default: 10_000, env: 'FERRY_SSH_CONNECT_TIMEOUT_MS' },
      frozenMs: {
        doc: 'how long a container may stay frozen before restore has started on the destination; then the source worker restores it where it was, whatever the other hosts do',
        format: 'positive-int',
        default: 900_000,
        env: 'FERRY_TIMEOUT_FROZEN_MS',
      },
    },
    checkpoint: {
      compression: { doc: 'archive compression', format: ['none', 'gzip', 'zstd'], default: 'zstd', env: 'FERRY_CHECKPOINT_COMPRESSION' },
      memoryCopy: {
        doc: 'how memory moves: plain (inside the archive, while the container is frozen: the freeze grows with memory), post-copy (the container runs on the destination at once while its memory follows; the source host must stay up until every page arrived, see docs/post-copy.md), auto (post-copy where preflight proves both hosts can, plain elsewhere). `ferry migrate --memory-copy` overrides it',
        format: [...MEMORY_COPY_MODES],
        default: 'plain',
        env: 'FERRY_MEMORY_COPY',
      },
      postCopyDeadlineSeconds: {
        doc: 'post-copy: the destination kills its copy (and the source brings the container back) when not every page arrived this long after the restore; keep it below timeouts.step.verify, which waits for the pages',
        format: 'positive-int',
        default: 90,
      },
      tcpEstablished: { doc: 'checkpoint established TCP connections (--tcp-established)', format: 'strict-boolean', default: false },
      fileLocks: { doc: 'checkpoint file locks (--file-locks)', format: 'strict-boolean', default: false },
      skipInFlight: {
        doc: 'checkpoint a service while clients connect: CRIU skips connections not yet accepted (their clients see a reset and connect again) and, unless tcpEstablished keeps them, closes established ones cleanly (their clients see the close at the freeze) instead of failing the checkpoint. Given to CRIU per command through a script in /var/lib/ferry/criu; off: CRIU refuses both',
        format: 'strict-boolean',
        default: true,
        env: 'FERRY_CHECKPOINT_SKIP_IN_FLIGHT',
      },
      keepAddress: {
        doc: 'restore with the original IP and MAC address (always on with tcpEstablished); off: the destination assigns new ones, since the old IP may be taken there',
        format: 'strict-boolean',
        default: false,
      },
      sharedMounts: {
        doc: 'host folders that are shared storage, the same content at the same path on every host (e.g. an NFS mount): a bind mount from one of them, or from below one, moves with its container; any other bind mount is refused unless its container has the label ferry.shared-mounts. Preflight checks the destination sees the same folder',
        format: absolutePaths,
        default: [] as string[],
      },
      copyMounts: {
        doc: 'host folders whose bind mounts Ferry copies to the destination (rsync over SSH while the container runs, the difference while it is frozen), as the label ferry.copy-mounts does for one container; the destination must not have the folder, or have it empty; the source keeps its copy renamed <folder>.ferry-moved-<migration id>',
        format: absolutePaths,
        default: [] as string[],
      },
    },
    archive: {
      encryption: {
        doc: 'encrypt checkpoint archives (they hold the process memory) on every disk they touch, and inside SSH in transit: none or aes-256-gcm',
        format: ['none', 'aes-256-gcm'],
        default: 'none',
        env: 'FERRY_ARCHIVE_ENCRYPTION',
      },
      keyFile: {
        doc: 'the archive key: exactly 32 random bytes, mode 0600, the same file on every host (`ferry archive keygen PATH`)',
        format: String,
        default: '/etc/ferry/archive.key',
        env: 'FERRY_ARCHIVE_KEY_FILE',
      },
      plainDir: {
        doc: 'where an encrypted archive is decrypted for the seconds podman restores it (podman reads it more than once, so a pipe will not do); empty: the work dir. Point it at a tmpfs to keep plain memory images off disk',
        format: String,
        default: '',
        env: 'FERRY_ARCHIVE_PLAIN_DIR',
      },
    },
    hooks: {
      cutover: {
        doc: 'hooks told where a container now runs, after verify and before the source copy is removed: {"kind":"command","host":NAME,"argv":[...]} (the details as JSON on its stdin) or {"kind":"http","url":...,"method"?,"headers"?} (the details as the JSON body); each may set timeoutMs (default 30000). Run one after the other, again on every retry: they must be idempotent',
        format: 'cutover-hooks',
        default: [] as unknown[],
      },
      onFailure: {
        doc: 'what a failing cut-over hook does: rollback (the migration fails and the container is brought back on its source) or continue (a warning in the record)',
        format: [...HOOK_FAILURE_POLICIES],
        default: 'rollback',
        env: 'FERRY_HOOKS_ON_FAILURE',
      },
    },
    verify: {
      timeoutMs: { doc: 'how long the health probe may keep failing before verify fails', format: 'positive-int', default: 15_000 },
      intervalMs: { doc: 'time between health probe tries', format: 'positive-int', default: 250 },
    },
    worker: {
      concurrency: { doc: 'steps one worker runs at once', format: 'positive-int', default: 4, env: 'FERRY_WORKER_CONCURRENCY' },
      lockDurationMs: { doc: "BullMQ job lock; a killed worker's step is taken over after about this long", format: 'positive-int', default: 30_000 },
      stalledIntervalMs: { doc: 'how often BullMQ looks for stalled steps', format: 'positive-int', default: 15_000 },
      repairIntervalMs: {
        doc: 'how often a worker looks for migrations of its host whose step job is gone (removed by hand, lost in a Redis crash) and for containers it froze for a migration that no longer knows them',
        format: 'positive-int',
        default: 10_000,
      },
    },
    fleet: {
      maxParallel: { doc: 'migrations a batch or drain runs at once (overridable per batch)', format: 'positive-int', default: 4, env: 'FERRY_FLEET_MAX_PARALLEL' },
      perHostLimit: { doc: 'migrations of one batch that may involve the same host at once, as source or destination (overridable per batch)', format: 'positive-int', default: 2, env: 'FERRY_FLEET_PER_HOST' },
    },
    log: {
      level: { doc: 'log level', format: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info', env: 'FERRY_LOG_LEVEL' },
    },
    dashboard: {
      host: { doc: 'address `ferry dashboard` listens on; anything but loopback needs a token or basic auth', format: String, default: '127.0.0.1', env: 'FERRY_DASHBOARD_HOST' },
      port: { doc: 'port of `ferry dashboard` (web page, JSON API, /metrics)', format: 'port', default: 8377, env: 'FERRY_DASHBOARD_PORT' },
      token: { doc: 'bearer token the dashboard requires (header, cookie or ?token=); empty: none', format: String, default: '', sensitive: true, env: 'FERRY_DASHBOARD_TOKEN' },
      basicAuth: {
        user: { doc: 'HTTP basic auth user the dashboard requires; empty: none', format: String, default: '', env: 'FERRY_DASHBOARD_USER' },
        password: { doc: 'HTTP basic auth password', format: String, default: '', sensitive: true, env: 'FERRY_DASHBOARD_PASSWORD' },
      },
      readOnly: { doc: 'look but do not act: no retry, Bull Board read-only', format: 'strict-boolean', default: false, env: 'FERRY_DASHBOARD_READ_ONLY' },
      allowedHosts: {
        doc: 'host names the dashboard answers to besides its listen address, localhost, 127.0.0.1 and ::1 (e.g. the name a reverse proxy passes on); any other Host header is refused, against DNS rebinding',
        format: (value: unknown) => {
          if (!Array.isArray(value)) throw new Error('must be an array of host names');
          // A DNS name, an IPv4 address or an IPv6 one (bracketed or not, at least two colons); no port, no scheme.
          const name = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$|^\[?[0-9a-f]*:[0-9a-f]*:[0-9a-f:.]*\]?$/i;
          for (const v of value) if (typeof v !== 'string' || !name.test(v)) throw new Error(`${JSON.stringify(v)} is not a host name (no port, no scheme), e.g. "ferry.example.com"`);
        },
        default: [] as string[],
      },
      bullBoardWrite: {
        doc: 'let Bull Board change the queues (pause, empty, clean, add or remove jobs), which can strand a frozen container; off: it only shows them',
        format: 'strict-boolean',
        default: false,
        env: 'FERRY_DASHBOARD_BULL_BOARD_WRITE',
      },
    },
  };
}
