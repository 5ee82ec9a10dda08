/**
 * The upload endpoint's HTTP contract (`handleUploadRequest`) on a fake signer, with real JWT
 * verification against an in-memory identity provider (`test/support/jwks.ts`: real keys and
 * signatures, the JWKS answered by an injected `fetch`, no server).
 */
import { loadConfig } from '../../shared/config';
import { JwtAuthenticator, AnonymousAuthenticator } from '../../shared/auth/jwt-authenticator';
import { handleUploadRequest, isIdentityEncoding, MAX_BODY, traceIdFrom, type HttpRequest, type UploadHttpDeps } from '../../shared/http/upload-http';
import { createInvocation } from '../../shared/invocation';
import { createLogger, silentLogger } from '../../shared/logger';
import type { Authenticator, CallOptions, Logger } from '../../shared/ports';
import { FakeUrlSigner, FixedClock, SequentialIds } from '../../shared/testing/fakes';
import { sanitizeFilename } from '../../shared/usecases/request-upload';
import { createTestIdp, type TestIdp } from '../support/jwks';

let idp: TestIdp;
beforeAll(async () => {
  idp = await createTestIdp();
});
beforeEach(() => idp.behave('ok'));

interface Setup {
  env?: Record<string, string>;
  logger?: Logger;
  /** Offset of the authenticator's clock from real time (cooldowns, token age). */
  clock?: { offsetMs: number };
  jwksTimeoutMs?: number;
}

function deps(setup: Setup = {}): UploadHttpDeps & { signer: FakeUrlSigner } {
  const config = loadConfig({
    PIXELPIPE_JWKS_URL: idp.jwksUrl,
    PIXELPIPE_JWT_ISSUER: idp.issuer,
    PIXELPIPE_JWT_AUDIENCE: idp.audience,
    PIXELPIPE_CORS_ORIGINS: 'https://app.example.com',
    PIXELPIPE_STATUS_URL_BASE: 'https://api.example.com/images',
    ...setup.env,
  });
  const logger = setup.logger ?? silentLogger;
  const clock = setup.clock;
  const authenticator =
    config.auth.mode === 'jwt'
      ? new JwtAuthenticator({
          ...config.auth,
          logger,
          fetch: idp.fetch,
          jwksTimeoutMs: setup.jwksTimeoutMs,
          ...(clock ? { now: () => Date.now() + clock.offsetMs } : {}),
        })
      : new AnonymousAuthenticator();
  return { config, authenticator, signer: new FakeUrlSigner(), ids: new SequentialIds(), clock: new FixedClock(), logger };
}

/** One request, in an invocation of `budgetMs` from now (as a handler edge builds it). */
async function call(d: UploadHttpDeps, req: HttpRequest, budgetMs = 10_000) {
  const inv = createInvocation({ deadline: Date.now() + budgetMs, traceId: traceIdFrom(req.headers), logger: d.logger });
  try {
    return await handleUploadRequest(d, req, inv);
  } finally {
    inv.dispose();
  }
}

const post = (body: unknown, headers: Record<string, string> = {}, extra: Partial<HttpRequest> = {}): HttpRequest => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', ...headers },
  body: typeof body === 'string' ? body : JSON.stringify(body),
  ...extra,
});
const good = { contentType: 'image/jpeg', size: 123456, filename: 'holiday.jpg' };
const bearer = async (over?: Parameters<TestIdp['token']>[0]) => ({ authorization: `Bearer ${await idp.token(over)}` });

describe('upload endpoint', () => {
  test('201 with a server-chosen key, a pinned target and expiry', async () => {
    const d = deps();
    const res = await call(d, post(good, { ...(await bearer()), traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' }));
    expect(res.status).toBe(201);
    const body = JSON.parse(res.body) as { key: string };
    expect(body).toEqual({
      id: '00000000-0000-4000-8000-000000000001',
      key: 'originals/alice/00000000-0000-4000-8000-000000000001',
      upload: { method: 'PUT', url: expect.any(String) as unknown, headers: expect.any(Object) as unknown },
      expiresAt: '2026-01-01T00:10:00.000Z',
      statusUrl: 'https://api.example.com/images/00000000-0000-4000-8000-000000000001',
    });
    expect(d.signer.requests[0]).toEqual({
      bucket: 'pixelpipe-originals',
      key: body.key,
      contentType: 'image/jpeg',
      minBytes: 1,
      maxBytes: 123456,
      expiresInSeconds: 600,
      // The profile is pinned even when the request names none, so changing PIXELPIPE_DEFAULT_PROFILE later cannot re-profile it.
      metadata: { 'pixelpipe-trace': '4bf92f3577b34da6a3ce929d0e0e4736', 'pixelpipe-filename': 'holiday.jpg', 'pixelpipe-profile': 'default' },
    });
    expect(res.headers['cache-control']).toBe('no-store');
  });

  test("the signer and the authenticator get the invocation's deadline and signal", async () => {
    const d = deps();
    const seen: Array<CallOptions | undefined> = [];
    const inner = d.authenticator;
    const authenticator: Authenticator = { authenticate: (h, o) => (seen.push(o), inner.authenticate(h, o)) };
    const inv = createInvocation({ deadline: Date.now() + 5000, traceId: 'a'.repeat(32), logger: silentLogger });
    const res = await handleUploadRequest({ ...d, authenticator }, post(good, await bearer()), inv);
    inv.dispose();
    expect(res.status).toBe(201);
    expect(seen).toEqual([{ deadline: inv.deadline, signal: inv.signal }]);
    expect(d.signer.uploadOptions).toEqual([{ deadline: inv.deadline, signal: inv.signal }]);
    expect(d.signer.requests[0].metadata['pixelpipe-trace']).toBe('a'.repeat(32));
  });

  test.each([
    ['../../etc/passwd', 'passwd'],
    ['/abs/path/x.png', 'x.png'],
    ['C:\\Users\\bob\\me.jpg', 'me.jpg'],
    ['evil\u202Egpj.exe', 'evilgpj.exe'],
    ['..', ''],
  ])('the filename %j never reaches the key', async (filename, display) => {
    const d = deps();
    const res = await call(d, post({ ...good, filename }, await bearer({ sub: 'bob' })));
    expect(res.status).toBe(201);
    expect((JSON.parse(res.body) as { key: string }).key).toMatch(/^originals\/bob\/[0-9a-f-]{36}$/);
    expect(sanitizeFilename(filename)).toBe(display);
  });

  test.each([
    ['199 × a + an emoji (the 200-unit cut would split the pair)', `${'a'.repeat(199)}😀.jpg`, `${'a'.repeat(199)}😀`],
    ['200 × a + an emoji', `${'a'.repeat(200)}😀`, 'a'.repeat(200)],
    ['a lone high surrogate', 'x\ud800y.jpg', 'x\ufffdy.jpg'],
    ['a lone low surrogate at the end', 'photo\udc00', 'photo\ufffd'],
  ])('a filename with %s is signed (201), cut by code points and well-formed', async (_what, filename, display) => {
    const d = deps();
    const res = await call(d, post({ ...good, filename }, await bearer()));
    expect(res.status).toBe(201);
    const stored = decodeURIComponent(d.signer.requests[0].metadata['pixelpipe-filename']);
    expect(stored).toBe(display);
    expect(Array.from(stored).length).toBeLessThanOrEqual(200);
    expect(stored.isWellFormed()).toBe(true);
  });

  test("a subject cannot write into another owner's prefix", async () => {
    const res = await call(deps(), post(good, await bearer({ sub: '../alice' })));
    expect((JSON.parse(res.body) as { key: string }).key).toMatch(/^originals\/u_[A-Za-z0-9]{32}\/[0-9a-f-]{36}$/);
  });

  test('subjects that are not well-formed Unicode are refused; U+FFFD itself is an ordinary (hashed) subject', async () => {
    const d = deps();
    for (const sub of ['a\ud800', 'a\udc00', '\udc00\ud800']) {
      const res = await call(d, post(good, await bearer({ sub })));
      expect({ sub, status: res.status, body: JSON.parse(res.body) as unknown }).toEqual({
        sub,
        status: 401,
        body: { error: { code: 'unauthenticated', message: 'the token subject is not well-formed Unicode' } },
      });
    }
    expect(d.signer.requests).toHaveLength(0);
    const ok = await call(d, post(good, await bearer({ sub: 'a\ufffd' })));
    expect(ok.status).toBe(201);
    expect((JSON.parse(ok.body) as { key: string }).key).toMatch(/^originals\/u_[A-Za-z0-9]{32}\//);
  });

  test.each(['Bearer', 'bearer', 'BEARER', 'bEaReR'])('the %s scheme is accepted (RFC 7235: case-insensitive)', async (scheme) => {
    const res = await call(deps(), post(good, { authorization: `${scheme} ${await idp.token()}` }));
    expect(res.status).toBe(201);
  });

  test.each([
    ['no token', () => Promise.resolve(undefined)],
    ['not a bearer token', () => Promise.resolve('Basic YWxpY2U6cHc=')],
    ['a scheme that only starts like Bearer', async () => `Bearerx ${await idp.token()}`],
    ['expired', async () => `Bearer ${await idp.token({ expiresIn: Math.floor(Date.now() / 1000) - 120 })}`],
    ['wrong audience', async () => `Bearer ${await idp.token({ aud: 'someone-else' })}`],
    ['wrong issuer', async () => `Bearer ${await idp.token({ iss: 'https://evil.example.com/' })}`],
    ['bad signature', async () => `Bearer ${await idp.token({ key: 'other' })}`],
    ['an exp centuries away', async () => `Bearer ${await idp.token({ expiresIn: '300y' })}`],
    ['an exp 2 days away (over the 24 h default)', async () => `Bearer ${await idp.token({ expiresIn: '2d', withIat: false })}`],
    ['an iat 2 days ago', async () => `Bearer ${await idp.token({ iat: Math.floor(Date.now() / 1000) - 2 * 86400 })}`],
    [
      'tampered payload',
      async () => {
        const [h, , s] = (await idp.token()).split('.');
        return `Bearer ${h}.${Buffer.from(JSON.stringify({ sub: 'admin', aud: idp.audience, iss: idp.issuer, exp: 9999999999 })).toString('base64url')}.${s}`;
      },
    ],
    [
      'alg none',
      () => {
        const payload = Buffer.from(JSON.stringify({ sub: 'alice', aud: idp.audience, iss: idp.issuer, exp: 9999999999 })).toString('base64url');
        return Promise.resolve(`Bearer ${Buffer.from('{"alg":"none"}').toString('base64url')}.${payload}.`);
      },
    ],
  ])('401 for %s', async (_what, auth) => {
    const header = await auth();
    const res = await call(deps(), post(good, header ? { authorization: header } : {}));
    expect(res.status).toBe(401);
    expect(JSON.parse(res.body)).toEqual({ error: { code: 'unauthenticated', message: expect.any(String) as unknown } });
    expect(res.headers['www-authenticate']).toBe('Bearer');
  });

  test('the maximum token age is configurable; a token within it passes', async () => {
    const long = deps({ env: { PIXELPIPE_JWT_MAX_AGE_SECONDS: String(3 * 86400) } });
    expect((await call(long, post(good, await bearer({ expiresIn: '2d' })))).status).toBe(201);
    expect((await call(deps(), post(good, await bearer({ expiresIn: '23h' })))).status).toBe(201);
    expect(() => loadConfig({ PIXELPIPE_AUTH_MODE: 'anonymous', PIXELPIPE_JWT_MAX_AGE_SECONDS: '10' })).toThrow('PIXELPIPE_JWT_MAX_AGE_SECONDS');
  });

  test.each([
    ['invalid JSON', '{"contentType":', 400, 'invalid_json'],
    ['empty body', '', 400, 'invalid_json'],
    ['missing size', { contentType: 'image/png' }, 400, 'invalid_request'],
    ['negative size', { ...good, size: -1 }, 400, 'invalid_request'],
    ['zero size', { ...good, size: 0 }, 400, 'invalid_request'],
    ['unknown field', { ...good, key: 'originals/alice/mine' }, 400, 'invalid_request'],
    ['an array', [good], 400, 'invalid_request'],
    ['a disallowed type', { ...good, contentType: 'text/html' }, 415, 'content_type_not_allowed'],
    ['SVG by default', { ...good, contentType: 'image/svg+xml' }, 415, 'content_type_not_allowed'],
    ['too large', { ...good, size: 33 * 1024 * 1024 }, 413, 'too_large'],
    ['a huge body', 'x'.repeat(20000), 413, 'payload_too_large'],
  ])('%s → %i %s, no stack traces', async (_what, body, status, code) => {
    const res = await call(deps(), post(body, await bearer()));
    expect(res.status).toBe(status);
    expect((JSON.parse(res.body) as { error: { code: string } }).error.code).toBe(code);
    expect(res.body).not.toMatch(/at \w+ \(|node_modules|\.ts:\d+/);
  });

  test.each(['gzip', 'br', 'deflate', 'zstd', 'x-gzip', 'GZIP', 'identity, gzip', 'gzip, identity'])(
    'Content-Encoding %j → 415 before the body is read or a token is checked',
    async (encoding) => {
      const d = deps();
      let reads = 0;
      const readBody = () => (reads++, Promise.resolve(Buffer.from(JSON.stringify(good))));
      const res = await call(d, post(undefined, { ...(await bearer()), 'content-encoding': encoding }, { readBody }));
      expect(res.status).toBe(415);
      expect(JSON.parse(res.body)).toEqual({ error: { code: 'content_encoding_not_allowed', message: expect.any(String) as unknown } });
      expect(reads).toBe(0);
      expect(d.signer.requests).toHaveLength(0);
    },
  );

  test('identity (or no) Content-Encoding is read once, with the 16 KiB limit, after the checks that need no body', async () => {
    expect(['identity', 'Identity', '', undefined].map(isIdentityEncoding)).toEqual([true, true, true, true]);
    const d = deps();
    const limits: number[] = [];
    const readBody = (max: number) => (limits.push(max), Promise.resolve(Buffer.from(JSON.stringify(good))));
    expect((await call(d, post(undefined, { ...(await bearer()), 'content-encoding': 'identity' }, { readBody }))).status).toBe(201);
    expect((await call(d, { method: 'GET', headers: {}, readBody })).status).toBe(405);
    expect(limits).toEqual([MAX_BODY]);
  });

  test('only / and /uploads answer where no router matched the path; anything else is a 404', async () => {
    const d = deps();
    for (const path of ['/', '/uploads']) expect((await call(d, post(good, await bearer(), { path }))).status).toBe(201);
    for (const path of ['/admin', '/uploads/', '/uploads/x', '//uploads', '/UPLOADS', '/favicon.ico']) {
      const res = await call(d, post(good, await bearer(), { path }));
      expect({ path, status: res.status, body: JSON.parse(res.body) as unknown }).toEqual({
        path,
        status: 404,
        body: { error: { code: 'not_found', message: 'no such endpoint' } },
      });
    }
    expect(d.signer.requests).toHaveLength(2);
  });

  test('wrong method → 405; preflight from an allowed origin → 204 with CORS; other origins refused', async () => {
    const d = deps();
    expect((await call(d, { method: 'GET', headers: {}, body: undefined })).status).toBe(405);
    const pre = await call(d, { method: 'OPTIONS', headers: { origin: 'https://app.example.com' }, body: undefined });
    expect(pre.status).toBe(204);
    expect(pre.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(pre.headers['access-control-allow-headers']).toContain('authorization');
    const evil = await call(d, { method: 'OPTIONS', headers: { origin: 'https://evil.example.com' }, body: undefined });
    expect(evil.status).toBe(403);
    expect(evil.headers['access-control-allow-origin']).toBeUndefined();
    expect(Object.values(pre.headers)).not.toContain('*');
  });

  test('anonymous mode (local development) signs for the anonymous owner', async () => {
    const res = await call(deps({ env: { PIXELPIPE_AUTH_MODE: 'anonymous' } }), post(good));
    expect(res.status).toBe(201);
    expect((JSON.parse(res.body) as { key: string }).key).toMatch(/^originals\/anonymous\//);
  });
});

describe('the identity provider: key set cached, outages are 503 auth_unavailable and not hammered', () => {
  test('the key set is fetched once and cached across requests', async () => {
    const d = deps();
    const before = idp.fetches();
    for (let i = 0; i < 3; i++) expect((await call(d, post(good, await bearer()))).status).toBe(201);
    expect(idp.fetches() - before).toBe(1);
  });

  test('identity provider unreachable → 503, retryable', async () => {
    const config = loadConfig({ PIXELPIPE_JWKS_URL: 'http://127.0.0.1:9/jwks.json', PIXELPIPE_JWT_ISSUER: idp.issuer, PIXELPIPE_JWT_AUDIENCE: idp.audience });
    // Port 9 on loopback is closed: the real fetch fails at once with ECONNREFUSED.
    if (config.auth.mode !== 'jwt') throw new Error('jwt mode expected');
    const d = { ...deps(), config, authenticator: new JwtAuthenticator(config.auth) };
    const res = await call(d, post(good, await bearer()));
    expect(res.status).toBe(503);
    expect(JSON.parse(res.body)).toEqual({ error: { code: 'auth_unavailable', message: 'temporarily unavailable, retry later' } });
    expect(res.headers['retry-after']).toBe('2');
  });

  test.each([
    ['HTTP 500', 'http-500', 'the JWKS endpoint answered HTTP 500'],
    ['a body that is not JSON', 'not-json', 'the JWKS endpoint did not answer JSON'],
  ] as const)('JWKS answering %s → 503 auth_unavailable, logged as an outage; 20 requests → 1 fetch within the cooldown', async (_what, behaviour, cause) => {
    const lines: string[] = [];
    const clock = { offsetMs: 0 };
    const d = deps({ logger: createLogger({ sink: (l) => lines.push(l) }), clock });
    idp.behave(behaviour);
    const before = idp.fetches();
    for (let i = 0; i < 20; i++) {
      const res = await call(d, post(good, await bearer()));
      expect({ i, status: res.status, code: (JSON.parse(res.body) as { error: { code: string } }).error.code }).toEqual({
        i,
        status: 503,
        code: 'auth_unavailable',
      });
    }
    expect(idp.fetches() - before).toBe(1);
    const logged = lines.map((l) => JSON.parse(l) as { level: string; message: string; reason?: string; err?: { message: string } });
    const outage = logged.filter((l) => l.message.startsWith('identity provider unavailable'));
    expect(outage).toHaveLength(1);
    expect(outage[0]).toMatchObject({ level: 'error', reason: 'auth_unavailable', err: { message: cause } });
    expect(logged.filter((l) => l.message === 'upload request refused')).toHaveLength(0);
    // Past the cooldown, one new fetch, and the provider's recovery is seen.
    idp.behave('ok');
    clock.offsetMs = 31_000;
    expect((await call(d, post(good, await bearer()))).status).toBe(201);
    expect(idp.fetches() - before).toBe(2);
  });

  test('a JWKS whose body stalls after the headers: concurrent requests all get 503 once the fetch timeout ends it', async () => {
    const d = deps({ jwksTimeoutMs: 200 });
    idp.behave('stall-body');
    const before = idp.fetches();
    const answers = await Promise.all(Array.from({ length: 5 }, async () => call(d, post(good, await bearer()))));
    expect(answers.map((a) => a.status)).toEqual([503, 503, 503, 503, 503]);
    expect(idp.fetches() - before).toBe(1);
  });

  test("a stalled JWKS fetch does not hold a request past its own invocation's deadline", async () => {
    const d = deps({ jwksTimeoutMs: 60_000 });
    idp.behave('stall-body');
    const res = await call(d, post(good, await bearer()), 300);
    expect(res.status).toBe(503);
    expect((JSON.parse(res.body) as { error: { code: string } }).error.code).toBe('auth_unavailable');
  });

  test('an unknown kid refetches once, then not again within the cooldown (401, not 503)', async () => {
    const clock = { offsetMs: 0 };
    const d = deps({ clock });
    expect((await call(d, post(good, await bearer()))).status).toBe(201);
    const before = idp.fetches();
    clock.offsetMs = 31_000;
    for (let i = 0; i < 3; i++) expect((await call(d, post(good, await bearer({ kid: 'rotated-away' })))).status).toBe(401);
    expect(idp.fetches() - before).toBe(1);
  });
});

test.each([
  [{ traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' }, '4bf92f3577b34da6a3ce929d0e0e4736'],
  [{ 'x-cloud-trace-context': '105445AA7843BC8BF206B12000100000/1;o=1' }, '105445aa7843bc8bf206b12000100000'],
  [{ 'x-amzn-trace-id': 'Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1' }, '5759e988bd862e3fe1be46a994272793'],
])('trace id from %j', (headers, id) => {
  expect(traceIdFrom(headers)).toBe(id);
});

test('a fresh trace id otherwise', () => {
  expect(traceIdFrom({})).toMatch(/^[0-9a-f]{32}$/);
});

describe('upload profiles', () => {
  const PROFILES = JSON.stringify({
    avatar: {
      variants: [{ name: 'square', width: 256, height: 256, fit: 'cover', formats: ['webp'] }],
      maxInputBytes: 5_000_000,
      allowedTypes: ['image/jpeg', 'image/png'],
    },
  });
  const withProfiles = (env: Record<string, string> = {}) => deps({ env: { PIXELPIPE_PROFILES: PROFILES, ...env } });

  test("the named profile is pinned in the signed target's metadata and its byte limit bounds the request", async () => {
    const d = withProfiles();
    const res = await call(d, post({ ...good, profile: 'avatar' }, await bearer()));
    expect(res.status).toBe(201);
    expect(d.signer.requests[0].metadata['pixelpipe-profile']).toBe('avatar');
    expect(d.signer.requests[0].maxBytes).toBe(good.size);
    const big = await call(d, post({ ...good, size: 5_000_001, profile: 'avatar' }, await bearer()));
    expect(big.status).toBe(413);
    expect(JSON.parse(big.body)).toMatchObject({ error: { code: 'too_large', message: 'size must be at most 5000000 bytes' } });
    // The same size is fine for the default profile (32 MiB).
    expect((await call(d, post({ ...good, size: 5_000_001 }, await bearer()))).status).toBe(201);
  });

  test("the profile's allowed types shape the target: a type only the default profile allows is a 415 for it", async () => {
    const d = withProfiles();
    const res = await call(d, post({ contentType: 'image/webp', size: 1000, profile: 'avatar' }, await bearer()));
    expect(res.status).toBe(415);
    expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'content_type_not_allowed', message: 'content type must be one of: image/jpeg, image/png' } });
    expect((await call(d, post({ contentType: 'image/webp', size: 1000 }, await bearer()))).status).toBe(201);
    expect(d.signer.requests).toHaveLength(1);
  });

  test('an unknown profile is a 400 unknown_profile naming the configured ones, and nothing is signed', async () => {
    const d = withProfiles();
    for (const profile of ['banner', 'AVATAR', '', '../default', 'a'.repeat(100)]) {
      const res = await call(d, post({ ...good, profile }, await bearer()));
      expect([profile, res.status]).toEqual([profile, 400]);
      expect(JSON.parse(res.body)).toEqual({ error: { code: 'unknown_profile', message: 'profile must be one of: default, avatar' } });
    }
    const notString = await call(d, post({ ...good, profile: 7 }, await bearer()));
    expect(notString.status).toBe(400);
    expect(JSON.parse(notString.body)).toMatchObject({ error: { code: 'invalid_request' } });
    expect(d.signer.requests).toHaveLength(0);
  });

  test('PIXELPIPE_DEFAULT_PROFILE is what a request without a profile gets; "default" can still be asked for by name', async () => {
    const d = withProfiles({ PIXELPIPE_DEFAULT_PROFILE: 'avatar' });
    expect((await call(d, post(good, await bearer()))).status).toBe(201);
    expect((await call(d, post({ ...good, profile: 'default' }, await bearer()))).status).toBe(201);
    expect(d.signer.requests.map((r) => r.metadata['pixelpipe-profile'])).toEqual(['avatar', 'default']);
  });
});
