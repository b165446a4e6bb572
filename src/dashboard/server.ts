import { existsSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import express, { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';
import { FerryClient } from '../client';
import type { FerryConfig } from '../config/load';
import { RETRYABLE_STATES } from '../engine/states';
import { coerceError, FerryError } from '../errors';
import { FerryMetrics } from '../monitor/metrics';
import { Monitor } from '../monitor/monitor';
import { migrationView } from '../monitor/view';
import { createRedis } from '../redis';
import { authMiddleware, checkListen, credentialsFor } from './auth';
import { mountBullBoard } from './bullBoard';
import { allowedHostNames, hostCheck } from './hostCheck';
import { Queue } from 'bullmq';
import { CONTROL_QUEUE } from '../fleet/schedules';
import { EventHub } from './eventHub';

export interface DashboardOptions {
  config: FerryConfig;
  host: string;
  port: number;
  readOnly: boolean;
  /** Let Bull Board change the queues; ignored when read-only. */
  bullBoardWrite: boolean;
  log: Logger;
}

export interface RunningDashboard {
  url: string;
  /** The page's address with the token made for this run, when no credentials were configured. */
  loginUrl: string | undefined;
  /** Whether Bull Board may change the queues. */
  bullBoardWritable: boolean;
  close(): Promise<void>;
}

/** The page's files: next to the compiled server if a build copied them, else in the source tree. */
function staticDir(): string {
  const candidates = [join(__dirname, 'static'), join(__dirname, '..', '..', '..', 'src', 'dashboard', 'static')];
  const dir = candidates.find((d) => existsSync(join(d, 'index.html')));
  if (!dir) throw new FerryError(`dashboard assets not found (looked in ${candidates.join(', ')})`);
  return dir;
}

const ID = /^m-[a-z0-9]{1,16}-[a-f0-9]{8}$/;

/**
 * `ferry dashboard`: the web page, its JSON API and live event feed, /metrics, and Bull Board
 * under /queues. Everything is read from Redis, so it runs anywhere that reaches Redis and
 * is never the process doing the migrations. Every request but /healthz must name a host
 * the dashboard is known by and carry credentials.
 */
export async function startDashboard(opts: DashboardOptions): Promise<RunningDashboard> {
  const { config, log, readOnly } = opts;
  checkListen(opts.host, config.dashboard);
  const credentials = credentialsFor(config.dashboard);
  const allowedHosts = allowedHostNames(opts.host, config.dashboard.allowedHosts);
  const bullBoardWritable = opts.bullBoardWrite && !readOnly;
  const redis = createRedis(config);
  redis.on('error', (e: Error) => log.warn({ err: e.message }, 'redis connection error'));
  const monitor = new Monitor(config, redis);
  const metrics = new FerryMetrics(monitor);
  const client = new FerryClient(config, createRedis(config));
  const hub = new EventHub(redis, config.redis.prefix, log);
  // The control queue holds scheduled drains: shown beside the host queues.
  const control = new Queue(CONTROL_QUEUE, { connection: redis, prefix: config.redis.prefix });
  const board = mountBullBoard([...config.hosts.flatMap((h) => [monitor.queues.get(h.name), monitor.queues.urgent(h.name)]), control], '/queues', bullBoardWritable, allowedHosts);

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // Says only "ok": load balancers and probes need neither credentials nor a known name.
  app.get('/healthz', (_req, res) => {
    res.type('text/plain').send('ok\n');
  });
  app.use(hostCheck(allowedHosts));
  app.use(authMiddleware(credentials));
  app.use((_req, res, next) => {
    // The page loads nothing from elsewhere; say so, and keep other sites from framing it.
    res.setHeader('Content-Security-Policy', "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'");
    res.setHeader('X-Content-Type-Options', 'nosniff');
    next();
  });

  app.get('/metrics', async (_req, res) => {
    const m = await metrics.render();
    res.type(m.contentType).send(m.body);
  });
  app.get('/api/overview', async (_req, res) => {
    res.json(await monitor.overview({ readOnly }));
  });
  app.get('/api/migrations/:id', async (req, res) => {
    const id = String(req.params.id);
    const rec = ID.test(id) ? await monitor.migration(id) : null;
    if (!rec) {
      res.status(404).json({ error: `no migration ${id.slice(0, 80)}` });
      return;
    }
    res.json({ migration: migrationView(rec), events: (await client.store.events(id)).map((e) => e.event) });
  });
  app.post('/api/migrations/:id/retry', async (req, res) => {
    const id = String(req.params.id);
    if (readOnly) {
      res.status(403).json({ error: 'the dashboard is read-only' });
      return;
    }
    // A header a plain cross-site form cannot send, naming the migration: the confirmation
    // the page asked for, and no drive-by retries.
    if (req.get('x-ferry-confirm') !== id) {
      res.status(400).json({ error: 'retry needs confirmation (header X-Ferry-Confirm: <migration id>)' });
      return;
    }
    const rec = ID.test(id) ? await monitor.migration(id) : null;
    if (!rec) {
      res.status(404).json({ error: `no migration ${id.slice(0, 80)}` });
      return;
    }
    if (!RETRYABLE_STATES.has(rec.state)) {
      res.status(409).json({ error: `migration ${id} is ${rec.state}: only a failed or cancelled migration can be retried` });
      return;
    }
    const next = await client.migrate({ container: rec.container, from: rec.from, to: rec.to, probe: rec.probe });
    log.info({ migrationId: next.id, retryOf: id, container: rec.container }, 'retry started from the dashboard');
    res.status(201).json({ id: next.id, retryOf: id });
  });
  app.get('/api/events', (req, res) => hub.subscribe(req, res));
  app.use('/queues', board.router);
  app.use(express.static(staticDir(), { index: 'index.html', maxAge: 0 }));

  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const e = coerceError(err);
    const status = e instanceof FerryError && (e.code === 'CONFLICT' || e.permanent) ? 409 : 500;
    if (status === 500) log.error({ err: e.message }, 'dashboard request failed');
    res.status(status).json({ error: e.message });
  });

  hub.start();
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(opts.port, opts.host, (err?: Error) => (err ? reject(err) : resolve(s)));
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port;
  const shownHost = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  let closing: Promise<void> | undefined;
  const url = `http://${shownHost}:${port}`;
  return {
    url,
    loginUrl: credentials.generated ? `${url}/?token=${credentials.token}` : undefined,
    bullBoardWritable,
    close() {
      closing ??= (async () => {
        await hub.stop();
        server.closeAllConnections();
        await new Promise<void>((r) => server.close(() => r()));
        board.close();
        await control.close();
        await monitor.close();
        await client.close();
        redis.disconnect();
      })();
      return closing;
    },
  };
}
