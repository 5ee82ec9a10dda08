/**
 * Cancels the HTTP requests a client library sends on our behalf when the library takes no
 * `AbortSignal`. `@google-cloud/storage` v7 sends its simple uploads, metadata, list and delete calls
 * and its downloads through teeny-request and node-fetch 2 without one, and destroying the stream it
 * returns does not close the socket underneath (node-fetch pipes the response into a PassThrough and
 * never destroys the response when that PassThrough goes away). Without this a timed-out write keeps
 * its connection open and can still land after the retry that replaced it.
 *
 * How: every `http`/`https` ClientRequest announces itself on the `http.client.request.start`
 * diagnostics channel, synchronously and in the async context of whoever created it. A call run
 * through {@link withRequestScope} owns every request created within its async context; when its
 * signal aborts, those requests (and their sockets) are destroyed, and the call settles only once they
 * have all closed, so whatever the caller does next (a retry) cannot overlap them.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { subscribe } from 'node:diagnostics_channel';
import type { ClientRequest } from 'node:http';

interface Scope {
  readonly signal: AbortSignal;
  readonly owns: (request: ClientRequest) => boolean;
  readonly open: Set<ClientRequest>;
  /** Resolves when `open` empties after an abort. */
  onDrained?: () => void;
}

const scopes = new AsyncLocalStorage<Scope>();
let subscribed = false;

function track(message: unknown): void {
  const scope = scopes.getStore();
  const request = (message as { request?: ClientRequest } | null)?.request;
  if (!scope || !request || !scope.owns(request)) return;
  scope.open.add(request);
  request.once('close', () => {
    scope.open.delete(request);
    if (scope.open.size === 0) scope.onDrained?.();
  });
  // Created after the abort (the library went on to its next request): never let it reach the wire.
  if (scope.signal.aborted) request.destroy();
}

/** How long an aborted call waits at most for its sockets to report closed. */
const DRAIN_MS = 1000;

/**
 * Runs `fn` so that every HTTP request it starts, directly or through a library, is destroyed when
 * `signal` aborts. Rejects with the signal's reason once those requests have closed (or after a
 * short bound); resolves or rejects with `fn`'s outcome otherwise.
 *
 * `owns` narrows which requests belong to the call. A library may start a request that other calls
 * share (google-auth-library refreshes one access token for every caller waiting on it); destroying
 * that would fail the others too, so callers pass a filter on the API's own host.
 */
export function withRequestScope<T>(signal: AbortSignal, fn: () => Promise<T>, owns: (request: ClientRequest) => boolean = () => true): Promise<T> {
  if (!subscribed) {
    subscribe('http.client.request.start', track);
    subscribed = true;
  }
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  const scope: Scope = { signal, owns, open: new Set() };
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const onAbort = (): void => {
      if (settled) return;
      settled = true;
      const done = (): void => {
        clearTimeout(bound);
        reject(signal.reason as Error);
      };
      const bound = setTimeout(done, DRAIN_MS);
      bound.unref?.();
      if (scope.open.size === 0) return done();
      scope.onDrained = done;
      for (const request of [...scope.open]) request.destroy();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    scopes
      .run(scope, async () => fn())
      .then(
        (value) => {
          signal.removeEventListener('abort', onAbort);
          if (settled) return;
          settled = true;
          resolve(value);
        },
        (err: Error) => {
          signal.removeEventListener('abort', onAbort);
          if (settled) return;
          settled = true;
          reject(err);
        },
      );
  });
}
