import type { RedisConnection as IORedis } from '../redis';
import type { Request, Response } from 'express';
import type { Logger } from 'pino';
import { EventTail, TailedEvent } from '../monitor/eventTail';

const HEARTBEAT_MS = 15_000;

/**
 * Server-sent events for the page: one tail of the Redis event stream for the whole server,
 * fanned out to every open page. Event ids are the stream ids, so the browser's automatic
 * reconnect (Last-Event-ID) could resume; the page refetches the overview anyway.
 */
export class EventHub {
  private readonly clients = new Set<Response>();
  private readonly tail: EventTail;
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(redis: IORedis, prefix: string, log: Logger) {
    this.tail = new EventTail(redis, prefix, (evs) => this.broadcast(evs), (e) => log.warn({ err: e.message }, 'event stream read failed'));
  }

  start(): void {
    this.tail.start('$');
    this.heartbeat = setInterval(() => {
      for (const c of this.clients) c.write(': keep-alive\n\n');
    }, HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  subscribe(req: Request, res: Response): void {
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache, no-transform', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
    res.write('retry: 2000\n\n');
    this.clients.add(res);
    req.on('close', () => this.clients.delete(res));
  }

  private broadcast(evs: TailedEvent[]): void {
    const text = evs.map((e) => `id: ${e.streamId}\ndata: ${JSON.stringify(e.event)}\n\n`).join('');
    for (const c of this.clients) c.write(text);
  }

  async stop(): Promise<void> {
    clearInterval(this.heartbeat);
    for (const c of this.clients) c.end();
    this.clients.clear();
    await this.tail.stop();
  }
}
