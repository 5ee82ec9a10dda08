/**
 * The identity provider failing over real HTTP (a local JWKS server on 127.0.0.1, Node's own `fetch`):
 * headers followed by a body that never ends, and HTTP 500. Requests must get `503 auth_unavailable`
 * in bounded time and the provider must see one fetch per cooldown, not one per request. The same
 * cases in memory, with the clock injected, are in test/unit/upload.test.ts.
 */
import { JwtAuthenticator } from '../../shared/auth/jwt-authenticator';
import { loadConfig } from '../../shared/config';
import { handleUploadRequest, type UploadHttpDeps } from '../../shared/http/upload-http';
import { createInvocation } from '../../shared/invocation';
import { silentLogger } from '../../shared/logger';
import { FakeUrlSigner, FixedClock, SequentialIds } from '../../shared/testing/fakes';
import { startLocalIdp, type LocalIdp } from '../support/jwks';

let idp: LocalIdp;
beforeAll(async () => {
  idp = await startLocalIdp();
});
afterAll(() => idp.close());

function deps(): UploadHttpDeps {
  const config = loadConfig({ PIXELPIPE_JWKS_URL: idp.jwksUrl, PIXELPIPE_JWT_ISSUER: idp.issuer, PIXELPIPE_JWT_AUDIENCE: idp.audience });
  if (config.auth.mode !== 'jwt') throw new Error('jwt mode expected');
  // The fetch limit as deployed (3 s): the point is that it also ends a body that stalls.
  const authenticator = new JwtAuthenticator({ ...config.auth });
  return { config, authenticator, signer: new FakeUrlSigner(), ids: new SequentialIds(), clock: new FixedClock(), logger: silentLogger };
}

async function request(d: UploadHttpDeps) {
  const inv = createInvocation({ deadline: Date.now() + 10_000, traceId: '0'.repeat(31) + '1', logger: silentLogger });
  const body = JSON.stringify({ contentType: 'image/jpeg', size: 10 });
  try {
    const res = await handleUploadRequest(d, { method: 'POST', headers: { authorization: `Bearer ${await idp.token()}` }, body }, inv);
    return { status: res.status, code: (JSON.parse(res.body) as { error?: { code: string } }).error?.code };
  } finally {
    inv.dispose();
  }
}

test('headers, then a stalled body: 10 concurrent requests all get 503 auth_unavailable once the 3 s fetch limit ends it; one fetch', async () => {
  idp.behave('stall-body');
  const d = deps();
  const before = idp.fetches();
  const started = Date.now();
  const answers = await Promise.all(Array.from({ length: 10 }, () => request(d)));
  const elapsed = Date.now() - started;
  expect(answers).toEqual(Array.from({ length: 10 }, () => ({ status: 503, code: 'auth_unavailable' })));
  // Bounded by the fetch limit, not by the invocation (10 s) or the jest timeout; generous for a loaded machine.
  expect(elapsed).toBeLessThan(8000);
  expect(idp.fetches() - before).toBe(1);
  // Within the cooldown, the next requests are answered at once, without asking the provider again.
  for (let i = 0; i < 10; i++) expect(await request(d)).toEqual({ status: 503, code: 'auth_unavailable' });
  expect(idp.fetches() - before).toBe(1);
}, 20_000);

test('HTTP 500 from the JWKS: 20 requests → 503 auth_unavailable each, 1 fetch', async () => {
  idp.behave('http-500');
  const d = deps();
  const before = idp.fetches();
  for (let i = 0; i < 20; i++) expect(await request(d)).toEqual({ status: 503, code: 'auth_unavailable' });
  expect(idp.fetches() - before).toBe(1);
  idp.behave('ok');
  expect((await request(deps())).status).toBe(201);
});
