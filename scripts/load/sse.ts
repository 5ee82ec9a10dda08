/**
 * A minimal Server-Sent Events client (node:http, no reconnect): enough to follow the dev stack's
 * `GET /api/events` stream during a load test.
 */
import { request, type ClientRequest, type IncomingMessage } from 'node:http';

/** One event as received. */
export interface SseEvent {
  event: string;
  id: string;
  data: string;
  /** `performance.now()` when the event's last line arrived. */
  receivedAt: number;
}

/** An open stream. */
export interface SseStream {
  close(): void;
}

/**
 * Connects and resolves once the response headers arrived (so events published afterwards are seen).
 * `onEvent` is called for every complete event; comments (`: keep-alive`) are skipped.
 */
export function openSse(url: string, onEvent: (e: SseEvent) => void, timeoutMs = 10_000): Promise<SseStream> {
  return new Promise((resolve, reject) => {
    let req: ClientRequest | undefined = undefined;
    const timer = setTimeout(() => {
      req?.destroy();
      reject(new Error(`no answer from ${url} within ${timeoutMs} ms`));
    }, timeoutMs);
    req = request(url, { method: 'GET', headers: { accept: 'text/event-stream' }, agent: false }, (res: IncomingMessage) => {
      clearTimeout(timer);
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`${url} answered ${res.statusCode}`));
        return;
      }
      res.setEncoding('utf8');
      let buffer = '';
      res.on('data', (chunk: string) => {
        buffer += chunk;
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const e: SseEvent = { event: 'message', id: '', data: '', receivedAt: performance.now() };
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line === '' || line.startsWith(':')) continue;
            const i = line.indexOf(':');
            const field = i < 0 ? line : line.slice(0, i);
            const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
            if (field === 'event') e.event = value;
            else if (field === 'id') e.id = value;
            else if (field === 'data') data.push(value);
          }
          if (data.length === 0) continue;
          e.data = data.join('\n');
          onEvent(e);
        }
      });
      res.on('error', () => undefined);
      resolve({ close: () => req?.destroy() });
    });
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end();
  });
}
