/**
 * A fault-injecting HTTP proxy for tests (node:http, 127.0.0.1, random port): forwards every request
 * to an upstream (s3rver) unchanged, except the ones a rule claims, which get an error status, a reset
 * connection, a response that never comes, or a body that trickles or stops halfway.
 *
 * The proxy counts what reached it (`requests`) and what it passed on (`forwarded`), so tests can
 * assert how many calls an adapter really made against a failing downstream. It also sees what a
 * client's cancellation does on the wire: when each exchange ended and whether the client closed its
 * connection first (`clientClosedAt`), and how many requests for one method and path were in flight
 * at once (`peakInFlight`), which is how tests show that a timed-out write was really cancelled
 * before its retry started.
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** What a rule does to a matching request. */
export type FaultAction =
  /** Answer with this status and an S3-style XML error (503 `ServiceUnavailable`, 500 `InternalError`, 403 `AccessDenied`...). */
  | { kind: 'status'; status: number; code?: string }
  /** Destroy the client's socket without answering (ECONNRESET / socket hang up). */
  | { kind: 'reset' }
  /** Accept the request and never answer (until the proxy closes). */
  | { kind: 'stall' }
  /** Forward, then send the upstream body in `chunks` pieces `intervalMs` apart. */
  | { kind: 'slow-body'; chunks: number; intervalMs: number }
  /** Forward, send the headers and the first `bytes` of the body, then go silent. */
  | { kind: 'stall-body'; bytes: number };

/** Which requests to fault, how, and how many times. */
export interface FaultRule {
  action: FaultAction;
  /** How many matching requests this rule claims; `Infinity` for "until cleared". */
  times: number;
  method?: string;
  /** Matches when the request path (decoded, without the query) contains this text. */
  pathIncludes?: string;
  /** Matches when the raw query string contains this text (e.g. `alt=media`: a download, not a metadata read). */
  queryIncludes?: string;
}

/** One request as the proxy saw it. */
export interface SeenRequest {
  method: string;
  path: string;
  /** `forwarded` when the upstream answered it, else the fault that was applied. */
  outcome: 'forwarded' | FaultAction['kind'];
  at: number;
  /** When the exchange ended: the response was sent in full, or the client's connection closed. */
  endedAt?: number;
  /** When the client closed the connection before the response was complete (a cancelled request). */
  clientClosedAt?: number;
}

type Filter = { method?: string; pathIncludes?: string };

/** A running proxy. */
export interface FaultProxy {
  /** `http://127.0.0.1:<port>`: give it to the SDK as its endpoint. */
  url: string;
  readonly requests: SeenRequest[];
  /** Requests the upstream actually received. */
  forwarded(filter?: { method?: string; pathIncludes?: string }): number;
  /** Requests that reached the proxy (faulted or not). */
  count(filter?: { method?: string; pathIncludes?: string }): number;
  /** The most requests with the same method and path that were in flight at once, over the matching ones. */
  peakInFlight(filter?: Filter): number;
  /** Requests that have not ended yet. */
  inFlight(filter?: Filter): number;
  /** Resolves once no matching request is in flight (rejects after `timeoutMs`). */
  idle(filter?: Filter, timeoutMs?: number): Promise<void>;
  /** Resolves once `count` matching requests have reached the proxy (rejects after `timeoutMs`). */
  arrived(filter?: Filter, count?: number, timeoutMs?: number): Promise<void>;
  inject(rule: FaultRule): void;
  clear(): void;
  close(): Promise<void>;
}

/** Starts the proxy in front of `upstream` (e.g. `http://127.0.0.1:4568`). */
export async function startFaultProxy(upstream: string): Promise<FaultProxy> {
  const target = new URL(upstream);
  const rules: Array<FaultRule & { left: number }> = [];
  const requests: SeenRequest[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();

  const later = (ms: number, fn: () => void): void => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };

  /** In flight per `method path`, and the peak each reached. */
  const open = new Map<string, number>();
  const peaks = new Map<string, { method: string; path: string; peak: number }>();
  /** Re-checked whenever a request arrives or ends. */
  const waiters = new Set<() => void>();
  const until = (what: () => boolean, describe: () => string, timeoutMs: number): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (!what()) return;
        clearTimeout(timer);
        waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(describe()));
      }, timeoutMs);
      waiters.add(check);
      check();
    });

  const server: Server = createServer((req, res) => {
    const path = decodePath(req.url ?? '/');
    const query = (req.url ?? '').split('?')[1] ?? '';
    const rule = rules.find(
      (r) =>
        r.left > 0 &&
        (!r.method || r.method === req.method) &&
        (!r.pathIncludes || path.includes(r.pathIncludes)) &&
        (!r.queryIncludes || query.includes(r.queryIncludes)),
    );
    if (rule) rule.left--;
    const action = rule?.action;
    const seen: SeenRequest = {
      method: req.method ?? '',
      path,
      outcome: action && action.kind !== 'slow-body' && action.kind !== 'stall-body' ? action.kind : 'forwarded',
      at: Date.now(),
    };
    requests.push(seen);
    for (const w of [...waiters]) w();
    const id = `${seen.method} ${path}`;
    open.set(id, (open.get(id) ?? 0) + 1);
    const p = peaks.get(id) ?? { method: seen.method, path, peak: 0 };
    p.peak = Math.max(p.peak, open.get(id)!);
    peaks.set(id, p);
    const end = (): void => {
      if (seen.endedAt !== undefined) return;
      seen.endedAt = Date.now();
      open.set(id, open.get(id)! - 1);
      for (const w of [...waiters]) w();
    };
    res.once('finish', end);
    // 'close' before 'finish': the client went away (or the proxy reset it) before the answer was complete.
    res.once('close', () => {
      if (!res.writableFinished) seen.clientClosedAt = Date.now();
      end();
    });

    if (action?.kind === 'reset') {
      req.socket.destroy();
      return;
    }
    if (action?.kind === 'stall') {
      // Read the body (the client is free to finish sending) and never answer.
      req.resume();
      return;
    }
    if (action?.kind === 'status') {
      req.resume();
      req.on('end', () => sendS3Error(res, action.status, action.code ?? defaultCode(action.status), req.method === 'HEAD'));
      return;
    }
    forward(req, res, action);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  function forward(req: IncomingMessage, res: ServerResponse, action: FaultAction | undefined): void {
    const up = httpRequest(
      { protocol: target.protocol, hostname: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (upRes) => {
        if (!action) {
          res.writeHead(upRes.statusCode ?? 502, upRes.headers);
          upRes.pipe(res);
          return;
        }
        // Body faults need the whole upstream body first, then replay it on our own schedule.
        const chunks: Buffer[] = [];
        upRes.on('data', (c: Buffer) => chunks.push(c));
        upRes.on('end', () => {
          const body = Buffer.concat(chunks);
          res.writeHead(upRes.statusCode ?? 502, upRes.headers);
          if (action.kind === 'stall-body') {
            res.write(body.subarray(0, Math.min(action.bytes, Math.max(0, body.length - 1))));
            return;
          }
          if (action.kind === 'slow-body') {
            const size = Math.ceil(body.length / action.chunks) || 1;
            let offset = 0;
            const step = (): void => {
              if (res.destroyed) return;
              if (offset >= body.length) {
                res.end();
                return;
              }
              res.write(body.subarray(offset, offset + size));
              offset += size;
              later(action.intervalMs, step);
            };
            step();
          }
        });
      },
    );
    up.on('error', () => {
      if (!res.headersSent) sendS3Error(res, 502, 'BadGateway', false);
      else res.destroy();
    });
    // A client that gives up cancels the upstream request too, as a real frontend would.
    res.once('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    req.pipe(up);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const matches = (r: { method: string; path: string }, f?: Filter) =>
    (!f?.method || r.method === f.method) && (!f?.pathIncludes || r.path.includes(f.pathIncludes));
  const inFlight = (f?: Filter): number => requests.filter((r) => r.endedAt === undefined && matches(r, f)).length;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    forwarded: (f) => requests.filter((r) => r.outcome === 'forwarded' && matches(r, f)).length,
    count: (f) => requests.filter((r) => matches(r, f)).length,
    peakInFlight: (f) => Math.max(0, ...[...peaks.values()].filter((p) => matches(p, f)).map((p) => p.peak)),
    inFlight,
    idle: (f, timeoutMs = 5000) =>
      until(
        () => inFlight(f) === 0,
        () => `${inFlight(f)} request(s) still in flight after ${timeoutMs} ms`,
        timeoutMs,
      ),
    arrived: (f, n = 1, timeoutMs = 5000) =>
      until(
        () => requests.filter((r) => matches(r, f)).length >= n,
        () => `expected ${n} matching request(s) within ${timeoutMs} ms`,
        timeoutMs,
      ),
    inject(rule) {
      rules.push({ ...rule, left: rule.times });
    },
    clear() {
      rules.length = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const t of timers) clearTimeout(t);
        timers.clear();
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function decodePath(url: string): string {
  const path = url.split('?')[0];
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

function defaultCode(status: number): string {
  if (status === 503) return 'ServiceUnavailable';
  if (status === 500) return 'InternalError';
  if (status === 403) return 'AccessDenied';
  if (status === 404) return 'NoSuchKey';
  if (status === 429) return 'SlowDown';
  return 'InvalidRequest';
}

function sendS3Error(res: ServerResponse, status: number, code: string, head: boolean): void {
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>injected fault</Message><RequestId>0000</RequestId></Error>`;
  res.writeHead(status, { 'content-type': 'application/xml', 'content-length': head ? '0' : String(Buffer.byteLength(body)), 'x-amz-request-id': '0000' });
  res.end(head ? undefined : body);
}
