/**
 * Keeps functions-framework's body parsers away from the upload function's request bodies.
 *
 * The framework installs Express body parsers (JSON, text, form, raw; 1 GiB limit each) that run
 * before the function and inflate `Content-Encoding: gzip|deflate|br` bodies on the way: 211 bytes of
 * brotli become 128 MiB in memory before the handler could look at a header, and a body that does not
 * parse is answered with Express's own HTML error page (with a stack trace unless
 * `NODE_ENV=production`). The framework offers no option to turn either off.
 *
 * Node publishes every incoming request on the `http.server.request.start` diagnostics channel
 * synchronously, before the server hands it to Express. There the guard moves `Content-Type` and
 * `Content-Encoding` aside (into a symbol-keyed property of the request). Every one of the framework's
 * parsers skips a request without a `Content-Type` (type-is matches nothing), so the body stays unread
 * in the socket, and the handler reads at most 16 KiB of it itself, after it has refused what it must
 * (a compressed body never is read). The framing headers (`Content-Length`, `Transfer-Encoding`) are
 * left alone, so Node still delimits the request correctly.
 *
 * The channel is process-wide, so the guard acts only on connections to the function's own port (the
 * `PORT` functions-framework listens on, 8080 on Cloud Run): other servers in the same process (a test's
 * fakes) keep their headers. `test/faults/upload-framework.int.test.ts` pins it against the real
 * framework.
 */
import { subscribe } from 'node:diagnostics_channel';
import type { IncomingMessage } from 'node:http';

/** The entity headers the guard moved aside, as the client sent them. */
export interface GuardedEntityHeaders {
  'content-type'?: string;
  'content-encoding'?: string;
}

// Symbol.for: the guard and the handler may come from two copies of this module (a bundle and the
// sources), and must still agree on the key and on being installed once.
const STASH = Symbol.for('pixelpipe.upload.entityHeaders');
const INSTALLED = Symbol.for('pixelpipe.upload.bodyGuard');

/**
 * Installs the guard for requests arriving on local port `port` (idempotent per port). Call it at cold
 * start, before the server exists.
 */
export function installBodyGuard(port: number): void {
  const registry = globalThis as unknown as Record<symbol, Set<number> | undefined>;
  let ports = registry[INSTALLED];
  if (!ports) {
    const guarded = (ports = registry[INSTALLED] = new Set<number>());
    subscribe('http.server.request.start', (message) => {
      const request = (message as { request?: IncomingMessage }).request;
      if (request && guarded.has(request.socket?.localPort ?? -1)) guardRequest(request);
    });
  }
  ports.add(port);
}

/** Moves the entity headers of one request aside (exported for the unit test of the mechanism). */
export function guardRequest(request: IncomingMessage): void {
  const headers = request.headers;
  const stash: GuardedEntityHeaders = {};
  if (headers['content-type'] !== undefined) stash['content-type'] = headers['content-type'];
  if (headers['content-encoding'] !== undefined) stash['content-encoding'] = headers['content-encoding'];
  delete headers['content-type'];
  delete headers['content-encoding'];
  (request as unknown as Record<symbol, GuardedEntityHeaders>)[STASH] = stash;
}

/** The headers the guard moved aside, or `undefined` when the request did not pass the guard. */
export function guardedEntityHeaders(request: object): GuardedEntityHeaders | undefined {
  return (request as Record<symbol, GuardedEntityHeaders | undefined>)[STASH];
}
