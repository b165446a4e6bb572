import type { RedisConnection as IORedis } from '../redis';
import type { Request, Response } from 'express';
import type { Logger } from 'pino';
import { EventFollower, follow, StreamEvent } from '../store/eventStream';
import { keys } from '../store/keys';

const HEARTBEAT_MS = 15_000;

/**
 * Server-sent events for the page: one reader of the Redis event stream for the whole server,
 * fanned out to every open page. Event ids are the stream ids, so the browser's automatic
 * reconnect (Last-Event-ID) could resume; the page refetches the overview anyway.
 */
export class EventHub {
  private readonly clients = new Set<Response>();
  private events: EventFollower | undefined;
  private reading: Promise<void> | undefined;
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(
    private readonly redis: IORedis,
    private readonly prefix: string,
    private readonly log: Logger,
  ) {}

  start(): void {
    if (this.events) return;
    const events = follow(this.redis, keys(this.prefix).events, '$', { onError: (e) => this.log.warn({ err: e.message }, 'event stream read failed') });
    this.events = events;
    this.reading = (async () => {
      for await (const batch of events) if (batch.length > 0) this.broadcast(batch);
    })();
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

  private broadcast(evs: StreamEvent[]): void {
    const text = evs.map((e) => `id: ${e.id}\ndata: ${JSON.stringify(e.event)}\n\n`).join('');
    for (const c of this.clients) c.write(text);
  }

  async stop(): Promise<void> {
    clearInterval(this.heartbeat);
    for (const c of this.clients) c.end();
    this.clients.clear();
    this.events?.stop();
    await this.reading;
  }
}
