/**
 * The images API through both clouds' handlers (API Gateway v2 events for AWS, Express-shaped
 * request/response for GCP), with real JWT verification against an in-memory JWKS: the authorization
 * matrix (owner, other user, no token, expired token) for every route, CORS, methods and routing.
 */
import { createImagesHandler as createAwsHandler } from '../../functions/aws/images-handler';
import { createImagesHandler as createGcpHandler } from '../../functions/gcp/images-handler';
import { JwtAuthenticator } from '../../shared/auth/jwt-authenticator';
import { newestFirstIds } from '../../shared/clock';
import { loadConfig } from '../../shared/config';
import type { ImagesHttpDeps } from '../../shared/http/images-http';
import { manifestKey } from '../../shared/keys';
import { silentLogger } from '../../shared/logger';
import { FakeUrlSigner } from '../../shared/testing/fakes';
import { MemoryObjectStore } from '../../shared/testing/memory-object-store';
import { createTestIdp, type TestIdp } from '../support/jwks';

let idp: TestIdp;
beforeAll(async () => {
  idp = await createTestIdp();
});

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}
type Call = (method: string, path: string, headers?: Record<string, string>) => Promise<Answer>;

async function setup() {
  const config = loadConfig({
    PIXELPIPE_JWKS_URL: idp.jwksUrl,
    PIXELPIPE_JWT_ISSUER: idp.issuer,
    PIXELPIPE_JWT_AUDIENCE: idp.audience,
    PIXELPIPE_CORS_ORIGINS: 'https://app.example.com',
  });
  const store = new MemoryObjectStore();
  const deps: ImagesHttpDeps = {
    config,
    store,
    signer: new FakeUrlSigner(),
    authenticator: new JwtAuthenticator({ jwksUrl: idp.jwksUrl, issuer: idp.issuer, audience: idp.audience, fetch: idp.fetch, logger: silentLogger }),
    logger: silentLogger,
  };
  const id = newestFirstIds().newId();
  const key = `originals/alice/${id}`;
  await store.put(config.buckets.originals, key, Buffer.from('jpeg'), { contentType: 'image/jpeg' });
  const manifest = {
    schemaVersion: 1,
    id,
    owner: 'alice',
    status: 'processed',
    source: { bucket: config.buckets.originals, key, generation: '1', bytes: 4 },
    variants: [{ name: 'thumb', format: 'webp', key: `variants/${id}/thumb.webp`, contentType: 'image/webp', width: 1, height: 1, bytes: 1 }],
    placeholder: null,
    bucket: config.buckets.variants,
    attempts: 1,
    createdAt: new Date().toISOString(),
    durationMs: 1,
  };
  await store.put(config.buckets.variants, manifestKey(config.layout, id), Buffer.from(JSON.stringify(manifest)), { contentType: 'application/json' });
  return { deps, store, id, key, config };
}

function awsCall(deps: ImagesHttpDeps): Call {
  const handler = createAwsHandler(deps);
  return async (method, path, headers = {}) => {
    const [rawPath, rawQueryString = ''] = path.split('?');
    const r = await handler(
      { version: '2.0', rawPath, rawQueryString, headers, requestContext: { http: { method, path: rawPath }, stage: '$default' } },
      { getRemainingTimeInMillis: () => 10_000 },
    );
    return { status: r.statusCode ?? 0, headers: (r.headers ?? {}) as Record<string, string>, body: r.body ?? '' };
  };
}

function gcpCall(deps: ImagesHttpDeps): Call {
  const handler = createGcpHandler(deps);
  return async (method, path, headers = {}) => {
    const out: Answer = { status: 0, headers: {}, body: '' };
    const res = {
      writableFinished: false,
      once: () => res,
      status: (s: number) => ((out.status = s), res),
      set: (h: Record<string, string>) => (Object.assign(out.headers, h), res),
      send: (b: string) => ((out.body = b), res),
    };
    await handler({ method, url: path, originalUrl: path, headers } as never, res as never);
    return out;
  };
}

describe.each([
  ['AWS (API Gateway v2)', awsCall],
  ['GCP (functions-framework)', gcpCall],
])('images handler on %s', (_name, make) => {
  const bearer = async (over: Parameters<TestIdp['token']>[0] = {}) => ({ authorization: `Bearer ${await idp.token(over)}` });

  test('authorization matrix: owner 200/202, other user 404 (as for an unknown id), no token 401, expired token 401', async () => {
    const { deps, id, store, config } = await setup();
    const call = make(deps);
    const alice = await bearer({ sub: 'alice' });
    const bob = await bearer({ sub: 'bob' });
    const expired = await bearer({ sub: 'alice', expiresIn: Math.floor(Date.now() / 1000) - 600, iat: Math.floor(Date.now() / 1000) - 900 });
    const unknown = newestFirstIds().newId();

    const owner = await call('GET', `/images/${id}`, alice);
    expect(owner.status).toBe(200);
    const got = JSON.parse(owner.body) as { id: string; variants: Array<{ url?: string }> };
    expect(got.id).toBe(id);
    expect(got.variants.map((v) => v.url)).toEqual([
      `https://storage.test/${deps.config.buckets.variants}/${encodeURIComponent(`variants/${id}/thumb.webp`)}?expires=900`,
    ]);
    const ownList = JSON.parse((await call('GET', '/images?limit=5', alice)).body) as { images: Array<{ id: string }> };
    expect(ownList.images.map((i) => i.id)).toEqual([id]);

    const stranger = await call('GET', `/images/${id}`, bob);
    const missing = await call('GET', `/images/${unknown}`, bob);
    expect(stranger.status).toBe(404);
    expect(stranger.body).toBe(missing.body);
    expect(JSON.parse((await call('GET', '/images', bob)).body)).toEqual({ images: [] });
    expect((await call('DELETE', `/images/${id}`, bob)).status).toBe(404);

    for (const headers of [{}, expired, { authorization: 'Bearer not.a.jwt' }]) {
      for (const [method, path] of [
        ['GET', `/images/${id}`],
        ['GET', '/images'],
        ['DELETE', `/images/${id}`],
      ]) {
        const r = await call(method, path, headers);
        expect([method, path, r.status, r.headers['www-authenticate']]).toEqual([method, path, 401, 'Bearer']);
      }
    }
    // Nothing above deleted anything; the owner's delete does, and a second one is a 404.
    expect(store.keys(config.buckets.originals)).toHaveLength(1);
    const del = await call('DELETE', `/images/${id}`, alice);
    expect([del.status, JSON.parse(del.body)]).toEqual([202, { id, status: 'deleting' }]);
    expect(store.keys(config.buckets.originals)).toEqual([]);
    expect((await call('DELETE', `/images/${id}`, alice)).status).toBe(404);
  });

  test('CORS for the configured origin only, preflight without a token, methods and unknown paths', async () => {
    const { deps, id } = await setup();
    const call = make(deps);
    const pre = await call('OPTIONS', `/images/${id}`, { origin: 'https://app.example.com' });
    expect(pre.status).toBe(204);
    expect(pre.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(pre.headers['access-control-allow-methods']).toBe('GET, DELETE, OPTIONS');
    expect((await call('GET', '/images', { origin: 'https://evil.example' })).status).toBe(403);
    const wrong = await call('POST', '/images', await bearer());
    expect([wrong.status, wrong.headers.allow]).toEqual([405, 'GET']);
    expect((await call('PUT', `/images/${id}`, await bearer())).headers.allow).toBe('GET, DELETE');
    expect((await call('GET', '/elsewhere/x/y', await bearer())).status).toBe(404);
    const badLimit = await call('GET', '/images?limit=1000', await bearer());
    expect([badLimit.status, (JSON.parse(badLimit.body) as { error: { code: string } }).error.code]).toEqual([400, 'invalid_request']);
    expect((await call('GET', '/images?limit=1&limit=2', await bearer())).status).toBe(400);
  });
});
