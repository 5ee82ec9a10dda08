/**
 * A test identity provider: a key pair, a token factory and its JWKS, served either in memory (a
 * `fetch` for unit tests) or over HTTP on 127.0.0.1 (integration and fault tests), so authentication
 * is tested with real signatures and a real key fetch instead of a mocked verifier. The JWKS answer
 * can be switched to the ways a provider fails: HTTP 5xx, a body that is not JSON, or headers followed
 * by a body that never ends.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';

/** How the JWKS endpoint answers. */
export type JwksBehaviour = 'ok' | 'http-500' | 'not-json' | 'stall-body';

export interface TokenOverrides {
  sub?: string;
  aud?: string;
  iss?: string;
  /** As jose's `setExpirationTime`: a span like `'5m'` or an absolute epoch-seconds number. */
  expiresIn?: string | number;
  /** Epoch seconds; absent: now. */
  iat?: number;
  /** `false`: no `iat` claim at all. */
  withIat?: boolean;
  /** `'other'` signs with a key the JWKS does not publish. */
  key?: 'other';
  kid?: string;
}

export interface TestIdp {
  jwksUrl: string;
  issuer: string;
  audience: string;
  token(over?: TokenOverrides): Promise<string>;
  /** The in-memory JWKS endpoint, shaped like `fetch`. */
  fetch: typeof fetch;
  behave(b: JwksBehaviour): void;
  fetches(): number;
}

export interface LocalIdp extends TestIdp {
  close(): Promise<void>;
}

/** An identity provider whose JWKS is answered in memory (no server): pass `idp.fetch` to the authenticator. */
export async function createTestIdp(): Promise<TestIdp> {
  return (await makeIdp('https://idp.test/.well-known/jwks.json', 'https://idp.test/')).idp;
}

async function makeIdp(jwksUrl: string, issuer: string): Promise<{ idp: TestIdp; serveHttp: (res: ServerResponse) => void }> {
  const { publicKey, privateKey } = await generateKeyPair('RS256');
  const other = await generateKeyPair('RS256');
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid: 'test-key', alg: 'RS256', use: 'sig' };
  const body = JSON.stringify({ keys: [jwk] });
  let behaviour: JwksBehaviour = 'ok';
  let fetches = 0;
  const audience = 'pixelpipe-test';
  const idp: TestIdp = {
    jwksUrl,
    issuer,
    audience,
    async token(over = {}) {
      const jwt = new SignJWT({})
        .setProtectedHeader({ alg: 'RS256', kid: over.kid ?? 'test-key' })
        .setSubject(over.sub ?? 'alice')
        .setIssuer(over.iss ?? issuer)
        .setAudience(over.aud ?? audience)
        .setExpirationTime(over.expiresIn ?? '5m');
      if (over.withIat !== false) jwt.setIssuedAt(over.iat);
      return jwt.sign(over.key === 'other' ? other.privateKey : privateKey);
    },
    fetch: (input, init) => {
      fetches++;
      return Promise.resolve(memoryAnswer(behaviour, body, init?.signal ?? undefined));
    },
    behave: (b) => (behaviour = b),
    fetches: () => fetches,
  };
  return { idp, serveHttp: (res) => httpAnswer(behaviour, body, res) };
}

/** The same identity provider with its JWKS served over HTTP on 127.0.0.1. */
export async function startLocalIdp(): Promise<LocalIdp> {
  let fetches = 0;
  const served: { answer?: (res: ServerResponse) => void } = {};
  const server: Server = createServer((_req, res) => {
    fetches++;
    served.answer!(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const made = await makeIdp(`http://127.0.0.1:${port}/.well-known/jwks.json`, `http://127.0.0.1:${port}/`);
  served.answer = made.serveHttp;
  const idp = made.idp;
  return {
    ...idp,
    fetches: () => fetches,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

function httpAnswer(behaviour: JwksBehaviour, body: string, res: ServerResponse): void {
  if (behaviour === 'http-500') {
    res.writeHead(500, { 'content-type': 'text/html' });
    res.end('<h1>Internal Server Error</h1>');
  } else if (behaviour === 'not-json') {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<html>maintenance</html>');
  } else if (behaviour === 'stall-body') {
    // Headers and the first bytes, then nothing: the connection stays open until the test closes it.
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length) });
    res.write(body.slice(0, 10));
  } else {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(body);
  }
}

/** The in-memory answer. A stalled body errors when `signal` aborts, as the Fetch standard has a fetch's body do. */
function memoryAnswer(behaviour: JwksBehaviour, body: string, signal: AbortSignal | undefined): Response {
  if (behaviour === 'http-500') return new Response('<h1>Internal Server Error</h1>', { status: 500, headers: { 'content-type': 'text/html' } });
  if (behaviour === 'not-json') return new Response('<html>maintenance</html>', { status: 200, headers: { 'content-type': 'text/html' } });
  if (behaviour === 'stall-body') {
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(body.slice(0, 10)));
        signal?.addEventListener('abort', () => controller.error(signal.reason), { once: true });
      },
    });
    return new Response(stream, { status: 200, headers: { 'content-type': 'application/json' } });
  }
  return new Response(body, { status: 200, headers: { 'content-type': 'application/json' } });
}
