/**
 * A local stand-in for the Google endpoints that `google-auth-library` calls through
 * `functions/gcp/google-auth.ts` (OAuth token endpoint, STS, metadata server, IAM Credentials),
 * listening on 127.0.0.1 only. Each route is a function of the recorded request, so a test states
 * what Google answers and then checks what was asked. Unrouted requests get Google's 404 error shape.
 * Answers under `/computeMetadata/` carry `Metadata-Flavor: Google`, as the real metadata server's
 * do (the library refuses answers without it).
 */
import { generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { serve } from './serve';

/** A request as the fake received it. */
export interface RecordedRequest {
  method: string;
  /** Path without the query, still percent-encoded as sent. */
  path: string;
  query: URLSearchParams;
  /** Lower-case names. */
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** Set once the client closed the connection before the fake answered (it gave up or was aborted). */
  closedBeforeAnswer?: boolean;
}

/** What a route answers: a JSON or text body with a status (default 200) and headers, optionally after a delay. */
export interface FakeAnswer {
  status?: number;
  json?: unknown;
  text?: string;
  headers?: Record<string, string>;
  delayMs?: number;
}

export type Route = (req: RecordedRequest) => FakeAnswer | Promise<FakeAnswer>;

export interface GoogleFake {
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** `127.0.0.1:<port>`, for `metadataHost`. */
  host: string;
  /** Every request received, in order. */
  requests: RecordedRequest[];
  /** Resolves once the client has closed the connection of `req` unanswered; rejects after `timeoutMs`. */
  closedUnanswered(req: RecordedRequest, timeoutMs?: number): Promise<void>;
  /** Sets (or replaces) the answer for `"<METHOD> <path>"`. */
  route(key: string, handler: Route): void;
  /**
   * A `fetch` for the credentials' library clients that sends `https://<host>.googleapis.com/<path>`
   * here as `/<host>.googleapis.com/<path>` (so routes say which Google service was asked) and any
   * other URL where it points.
   */
  fetch: typeof fetch;
  close(): Promise<void>;
}

const MAX_BODY = 1 << 20;

/** Starts the fake on a random port of 127.0.0.1 with the given routes (more can be added with `route`). */
export async function startGoogleFake(routes: Record<string, Route> = {}): Promise<GoogleFake> {
  const table = new Map(Object.entries(routes));
  const requests: RecordedRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const server: Server = createServer((req, res) => {
    void (async () => {
      const body = await readBody(req);
      const u = new URL(req.url ?? '/', 'http://fake');
      const recorded: RecordedRequest = { method: req.method ?? 'GET', path: u.pathname, query: u.searchParams, headers: req.headers, body };
      requests.push(recorded);
      res.on('close', () => {
        if (!res.writableEnded) recorded.closedBeforeAnswer = true;
      });
      const route = table.get(`${recorded.method} ${recorded.path}`);
      const answer: FakeAnswer = route
        ? await route(recorded)
        : { status: 404, json: { error: { code: 404, message: `no route for ${recorded.method} ${recorded.path}`, status: 'NOT_FOUND' } } };
      if (answer.delayMs) {
        await new Promise<void>((r) => {
          const t = setTimeout(() => (timers.delete(t), r()), answer.delayMs);
          timers.add(t);
        });
      }
      if (res.destroyed) return;
      const text = answer.json !== undefined ? JSON.stringify(answer.json) : (answer.text ?? '');
      res.writeHead(answer.status ?? 200, {
        'content-type': answer.json !== undefined ? 'application/json' : 'text/plain',
        ...(recorded.path.startsWith('/computeMetadata/') ? { 'metadata-flavor': 'Google' } : {}),
        ...answer.headers,
      });
      res.end(text);
    })().catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(err));
    });
  });
  // Bounded: a test that forgets to answer must not hang on a socket.
  server.requestTimeout = 10_000;
  const served = await serve(server);
  return {
    url: served.url,
    host: new URL(served.url).host,
    requests,
    route: (key, handler) => table.set(key, handler),
    closedUnanswered: async (req, timeoutMs = 5000) => {
      const until = Date.now() + timeoutMs;
      while (!req.closedBeforeAnswer) {
        if (Date.now() > until) throw new Error(`${req.method} ${req.path} was not closed by the client within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    fetch: (input, init) => {
      const u = new URL(input instanceof Request ? input.url : String(input));
      if (u.protocol === 'https:' && u.hostname.endsWith('.googleapis.com')) return fetch(`${served.url}/${u.hostname}${u.pathname}${u.search}`, init);
      return fetch(input, init);
    },
    close: () => {
      for (const t of timers) clearTimeout(t);
      return served.close();
    },
  };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > MAX_BODY) throw new Error('body too large');
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** A generated service account: its key file contents and the public half, for verifying its signatures. */
export interface FakeServiceAccount {
  email: string;
  publicKey: KeyObject;
  privateKey: KeyObject;
  /** The JSON of a key file (`type: service_account`). */
  keyJson: Record<string, string>;
}

/**
 * Generates an RSA key pair and a key file for `email`. `token_uri` is informational: the library
 * sends service-account grants to https://oauth2.googleapis.com/token whatever the file says (tests
 * route that host to a fake through the credentials' `fetch`); the default is a port `fetch` refuses to use.
 */
export function fakeServiceAccount(email: string, tokenUri = 'http://127.0.0.1:9/token'): FakeServiceAccount {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    email,
    publicKey,
    privateKey,
    keyJson: {
      type: 'service_account',
      project_id: 'pixelpipe-test',
      private_key_id: randomUUID(),
      private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      client_email: email,
      client_id: '1',
      token_uri: tokenUri,
    },
  };
}
