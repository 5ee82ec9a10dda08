import { loadConfig } from '../../shared/config';
import { JwtAuthenticator, AnonymousAuthenticator } from '../../shared/auth/jwt-authenticator';
import { handleUploadRequest, traceIdFrom, type HttpResponse, type UploadHttpDeps } from '../../shared/http/upload-http';
import { silentLogger } from '../../shared/logger';
import { FakeUrlSigner, FixedClock, SequentialIds } from '../../shared/testing/fakes';
import { sanitizeFilename } from '../../shared/usecases/request-upload';
import { startLocalIdp, type LocalIdp } from '../support/jwks';

let idp: LocalIdp;
beforeAll(async () => {
  idp = await startLocalIdp();
});
afterAll(() => idp.close());

function deps(env: Record<string, string> = {}): UploadHttpDeps & { signer: FakeUrlSigner } {
  const config = loadConfig({
    PIXELPIPE_JWKS_URL: idp.jwksUrl,
    PIXELPIPE_JWT_ISSUER: idp.issuer,
    PIXELPIPE_JWT_AUDIENCE: idp.audience,
    PIXELPIPE_CORS_ORIGINS: 'https://app.example.com',
    PIXELPIPE_STATUS_URL_BASE: 'https://api.example.com/images',
    ...env,
  });
  const authenticator = config.auth.mode === 'jwt' ? new JwtAuthenticator(config.auth) : new AnonymousAuthenticator();
  return { config, authenticator, signer: new FakeUrlSigner(), ids: new SequentialIds(), clock: new FixedClock(), logger: silentLogger };
}

const post = (body: unknown, headers: Record<string, string> = {}) => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', ...headers },
  body: typeof body === 'string' ? body : JSON.stringify(body),
});
const good = { contentType: 'image/jpeg', size: 123456, filename: 'holiday.jpg' };

/** The JSON body of an answer: a grant (201) or an error (4xx/5xx); absent fields fail the assertions that need them. */
const answer = (res: HttpResponse) => JSON.parse(res.body) as { key: string; error: { code: string; message: string } } & Record<string, unknown>;

describe('upload endpoint', () => {
  test('201 with a server-chosen key, a pinned target and expiry', async () => {
    const d = deps();
    const res = await handleUploadRequest(
      d,
      post(good, { authorization: `Bearer ${await idp.token()}`, traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' }),
    );
    expect(res.status).toBe(201);
    const body = answer(res);
    expect(body).toEqual({
      id: '00000000-0000-4000-8000-000000000001',
      key: 'originals/alice/00000000-0000-4000-8000-000000000001',
      upload: { method: 'PUT', url: expect.any(String) as string, headers: expect.any(Object) as object },
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
      metadata: { 'pixelpipe-trace': '4bf92f3577b34da6a3ce929d0e0e4736', 'pixelpipe-filename': 'holiday.jpg' },
    });
    expect(res.headers['cache-control']).toBe('no-store');
  });

  test.each([
    ['../../etc/passwd', 'passwd'],
    ['/abs/path/x.png', 'x.png'],
    ['C:\\Users\\bob\\me.jpg', 'me.jpg'],
    ['evil\u202Egpj.exe', 'evilgpj.exe'],
    ['..', ''],
  ])('the filename %j never reaches the key', async (filename, display) => {
    const d = deps();
    const res = await handleUploadRequest(d, post({ ...good, filename }, { authorization: `Bearer ${await idp.token({ sub: 'bob' })}` }));
    expect(res.status).toBe(201);
    expect(answer(res).key).toMatch(/^originals\/bob\/[0-9a-f-]{36}$/);
    expect(sanitizeFilename(filename)).toBe(display);
  });

  test("a subject cannot write into another owner's prefix", async () => {
    const d = deps();
    const res = await handleUploadRequest(d, post(good, { authorization: `Bearer ${await idp.token({ sub: '../alice' })}` }));
    expect(answer(res).key).toMatch(/^originals\/u_[A-Za-z0-9]{32}\/[0-9a-f-]{36}$/);
  });

  test.each([
    ['no token', () => Promise.resolve(undefined)],
    ['not a bearer token', () => Promise.resolve('Basic YWxpY2U6cHc=')],
    ['expired', async () => `Bearer ${await idp.token({ expiresIn: Math.floor(Date.now() / 1000) - 120 })}`],
    ['wrong audience', async () => `Bearer ${await idp.token({ aud: 'someone-else' })}`],
    ['wrong issuer', async () => `Bearer ${await idp.token({ iss: 'https://evil.example.com/' })}`],
    ['bad signature', async () => `Bearer ${await idp.token({ key: 'other' })}`],
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
    const res = await handleUploadRequest(deps(), post(good, header ? { authorization: header } : {}));
    expect(res.status).toBe(401);
    expect(answer(res)).toEqual({ error: { code: 'unauthenticated', message: expect.any(String) as string } });
    expect(res.headers['www-authenticate']).toBe('Bearer');
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
    const res = await handleUploadRequest(deps(), post(body, { authorization: `Bearer ${await idp.token()}` }));
    expect(res.status).toBe(status);
    const parsed = answer(res);
    expect(parsed.error.code).toBe(code);
    expect(res.body).not.toMatch(/at \w+ \(|node_modules|\.ts:\d+/);
  });

  test('wrong method → 405; preflight from an allowed origin → 204 with CORS; other origins refused', async () => {
    const d = deps();
    expect((await handleUploadRequest(d, { method: 'GET', headers: {}, body: undefined })).status).toBe(405);
    const pre = await handleUploadRequest(d, { method: 'OPTIONS', headers: { origin: 'https://app.example.com' }, body: undefined });
    expect(pre.status).toBe(204);
    expect(pre.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(pre.headers['access-control-allow-headers']).toContain('authorization');
    const evil = await handleUploadRequest(d, { method: 'OPTIONS', headers: { origin: 'https://evil.example.com' }, body: undefined });
    expect(evil.status).toBe(403);
    expect(evil.headers['access-control-allow-origin']).toBeUndefined();
    const anyOrigin = Object.values(pre.headers).includes('*');
    expect(anyOrigin).toBe(false);
  });

  test('identity provider down → 503, retryable', async () => {
    const d = deps({ PIXELPIPE_JWKS_URL: 'http://127.0.0.1:9/jwks.json' });
    const res = await handleUploadRequest(d, post(good, { authorization: `Bearer ${await idp.token()}` }));
    expect(res.status).toBe(503);
    expect(answer(res).error.code).toBe('auth_unavailable');
  });

  test('anonymous mode (local development) signs for the anonymous owner', async () => {
    const res = await handleUploadRequest(deps({ PIXELPIPE_AUTH_MODE: 'anonymous' }), post(good));
    expect(res.status).toBe(201);
    expect(answer(res).key).toMatch(/^originals\/anonymous\//);
  });

  test('the key set is fetched once and cached across requests', async () => {
    const d = deps();
    const before = idp.fetches();
    for (let i = 0; i < 3; i++) await handleUploadRequest(d, post(good, { authorization: `Bearer ${await idp.token()}` }));
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
