import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Queue } from 'bullmq';
import type { Router } from 'express';

export interface MountedBoard {
  router: Router;
  close(): void;
}

/**
 * Bull Board (the raw BullMQ queues) under `basePath`. Its page pulls fonts from a CDN;
 * the dashboard must work without internet, so it is served from a copy of its template
 * without that link (the page falls back to system fonts). Read-only hides every action.
 * Raw job retries are always off: a step job of an ended migration is skipped by the worker
 * (records are final), so the dashboard's own Retry, which starts a new migration, is the way.
 */
export function mountBullBoard(queues: Queue[], basePath: string, readOnly: boolean): MountedBoard {
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(basePath);
  createBullBoard({
    queues: queues.map((q) => new BullMQAdapter(q, { readOnlyMode: readOnly, allowRetries: false, description: readOnly ? 'read-only' : '' })),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'Ferry queues' } },
  });
  const uiDist = join(dirname(require.resolve('@bull-board/ui/package.json')), 'dist');
  const views = mkdtempSync(join(tmpdir(), 'ferry-bullboard-'));
  const template = readFileSync(join(uiDist, 'index.ejs'), 'utf8').replace(/<link[^>]*fonts\.(googleapis|gstatic)\.com[^>]*>\s*/g, '');
  writeFileSync(join(views, 'index.ejs'), template);
  serverAdapter.setViewsPath(views);
  return { router: serverAdapter.getRouter() as Router, close: () => rmSync(views, { recursive: true, force: true }) };
}
