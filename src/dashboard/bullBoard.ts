import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Queue } from 'bullmq';
import { NextFunction, Request, Response, Router } from 'express';
import { hostName } from './hostCheck';

export interface MountedBoard {
  router: Router;
  close(): void;
}

/**
 * Bull Board (the raw BullMQ queues) under `basePath`. Its page pulls fonts from a CDN;
 * the dashboard must work without internet, so it is served from a copy of its template
 * without that link (the page falls back to system fonts). Unless `writable`, it is
 * read-only: every action hidden, and refused in front of it (see guard).
 * Raw job retries are always off: a step job of an ended migration is skipped by the worker
 * (records are final), so the dashboard's own Retry, which starts a new migration, is the way.
 */
export function mountBullBoard(queues: Queue[], basePath: string, writable: boolean, allowedHosts: ReadonlySet<string>): MountedBoard {
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(basePath);
  createBullBoard({
    queues: queues.map((q) => new BullMQAdapter(q, { readOnlyMode: !writable, allowRetries: false, description: writable ? '' : 'read-only' })),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'Ferry queues' } },
  });
  const uiDist = join(dirname(require.resolve('@bull-board/ui/package.json')), 'dist');
  const views = mkdtempSync(join(tmpdir(), 'ferry-bullboard-'));
  const template = readFileSync(join(uiDist, 'index.ejs'), 'utf8').replace(/<link[^>]*fonts\.(googleapis|gstatic)\.com[^>]*>\s*/g, '');
  writeFileSync(join(views, 'index.ejs'), template);
  serverAdapter.setViewsPath(views);
  const router = Router();
  router.use(guard(writable, allowedHosts));
  router.use(serverAdapter.getRouter() as Router);
  return { router, close: () => rmSync(views, { recursive: true, force: true }) };
}

/**
 * Pausing, emptying, cleaning or obliterating a host's queue, or adding a job under a chosen
 * id (which the step chain then takes for its own, already done), can strand a container
 * frozen between steps. Bull Board's own read-only mode refuses those per route; this
 * refuses every request that is not a read, whatever routes a Bull Board version adds.
 * When writes are enabled, a browser's write must come from a page of this dashboard (a
 * browser always sends Origin with one; a cross-site page cannot forge it).
 */
function guard(writable: boolean, allowedHosts: ReadonlySet<string>) {
  return (req: Request, res: Response, next: NextFunction): void => {
    if (req.method === 'GET' || req.method === 'HEAD') {
      next();
      return;
    }
    if (!writable) {
      res.status(403).json({ error: 'Bull Board is read-only: queue actions can strand a frozen container. Set dashboard.bullBoardWrite (or --bull-board-write) to allow them' });
      return;
    }
    const origin = req.headers.origin;
    if (origin !== undefined && !fromAllowedHost(origin, allowedHosts)) {
      res.status(403).json({ error: `refused a Bull Board action from another site (Origin ${JSON.stringify(origin.slice(0, 100))})` });
      return;
    }
    next();
  };
}

function fromAllowedHost(origin: string, allowedHosts: ReadonlySet<string>): boolean {
  try {
    const name = hostName(new URL(origin).host);
    return name !== undefined && allowedHosts.has(name);
  } catch {
    return false;
  }
}
