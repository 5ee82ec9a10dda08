/**
 * Server-Sent Events fan-out for `GET /api/events`: every connected page receives each completion
 * event as `event: completion`, with the CloudEvent id as the SSE id, plus a comment line every few
 * seconds so proxies and idle timeouts do not cut a quiet stream.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Connected event-stream clients. */
export class SseHub {
  private readonly clients = new Set<ServerResponse>();
  private readonly keepAlive: NodeJS.Timeout;

  constructor(keepAliveMs = 15_000) {
    this.keepAlive = setInterval(() => this.write(': keep-alive\n\n'), keepAliveMs);
    this.keepAlive.unref();
  }

  /** Turns the response into an event stream; the client stays until it disconnects or the hub closes. */
  add(req: IncomingMessage, res: ServerResponse, extraHeaders: Record<string, string> = {}): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      // Tells buffering reverse proxies (nginx) to pass events through at once.
      'x-accel-buffering': 'no',
      ...extraHeaders,
    });
    // `retry` sets the browser's reconnect delay; the comment flushes the headers right away.
    res.write('retry: 2000\n: connected\n\n');
    this.clients.add(res);
    const drop = () => this.clients.delete(res);
    req.once('close', drop);
    res.once('close', drop);
  }

  /** Sends one event to every client. `data` must not contain raw newlines (JSON.stringify never emits them). */
  broadcast(event: string, id: string, data: string): void {
    this.write(`id: ${id.replace(/[\r\n]/g, '')}\nevent: ${event}\ndata: ${data.replace(/\r?\n/g, '\ndata: ')}\n\n`);
  }

  get size(): number {
    return this.clients.size;
  }

  /** Ends every stream (the browser reconnects on its own once the server is back). */
  close(): void {
    clearInterval(this.keepAlive);
    for (const res of this.clients) res.end();
    this.clients.clear();
  }

  private write(chunk: string): void {
    for (const res of this.clients) res.write(chunk);
  }
}
