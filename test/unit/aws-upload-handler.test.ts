/**
 * The AWS upload handler's edge: which paths it answers (API Gateway routed the request, or a
 * `$default` route / Lambda function URL passed every path), compressed bodies as API Gateway passes
 * them (base64, unread), and the invocation deadline taken from Lambda's context.
 */
import { gzipSync } from 'node:zlib';
import { createUploadHandler } from '../../functions/aws/upload-handler';
import { AnonymousAuthenticator } from '../../shared/auth/jwt-authenticator';
import { loadConfig } from '../../shared/config';
import { silentLogger } from '../../shared/logger';
import { FakeUrlSigner, FixedClock, SequentialIds } from '../../shared/testing/fakes';

const good = JSON.stringify({ contentType: 'image/png', size: 10 });

function setup() {
  const signer = new FakeUrlSigner();
  const handler = createUploadHandler({
    config: loadConfig({ PIXELPIPE_AUTH_MODE: 'anonymous' }),
    authenticator: new AnonymousAuthenticator(),
    signer,
    ids: new SequentialIds(),
    clock: new FixedClock(),
    logger: silentLogger,
  });
  return { signer, handler };
}

const event = (over: { routeKey?: string; rawPath?: string; stage?: string; headers?: Record<string, string>; body?: string; isBase64Encoded?: boolean }) => ({
  version: '2.0',
  routeKey: over.routeKey ?? '$default',
  rawPath: over.rawPath ?? '/',
  headers: { 'content-type': 'application/json', ...over.headers },
  body: over.body ?? good,
  isBase64Encoded: over.isBase64Encoded ?? false,
  requestContext: { http: { method: 'POST', path: over.rawPath ?? '/' }, stage: over.stage ?? '$default' },
});

test.each([
  ['a $default route at /', { rawPath: '/' }, 201],
  ['a $default route at /uploads', { rawPath: '/uploads' }, 201],
  ['a $default route at /admin', { rawPath: '/admin' }, 404],
  ['a Lambda URL at /my/path (the official sample event’s path)', { rawPath: '/my/path', routeKey: undefined }, 404],
  ['a named stage: /prod/uploads', { rawPath: '/prod/uploads', stage: 'prod' }, 201],
  ['a named stage: /prod/admin', { rawPath: '/prod/admin', stage: 'prod' }, 404],
  ['a route API Gateway matched (POST /uploads)', { routeKey: 'POST /uploads', rawPath: '/uploads' }, 201],
  ['a route API Gateway matched under another path (the dev stack’s POST /api/uploads)', { routeKey: 'POST /api/uploads', rawPath: '/api/uploads' }, 201],
])('%s → %i', async (_what, over, status) => {
  const { handler } = setup();
  const res = await handler(event(over));
  expect(res.statusCode).toBe(status);
  if (status === 404) expect(JSON.parse(res.body!)).toEqual({ error: { code: 'not_found', message: 'no such endpoint' } });
});

test('a gzip body, base64 as API Gateway passes it, is refused with 415 and nothing is signed', async () => {
  const { handler, signer } = setup();
  const body = gzipSync(Buffer.from(good)).toString('base64');
  const res = await handler(event({ headers: { 'content-encoding': 'gzip' }, body, isBase64Encoded: true }));
  expect(res.statusCode).toBe(415);
  expect((JSON.parse(res.body!) as { error: { code: string } }).error.code).toBe('content_encoding_not_allowed');
  expect(signer.requests).toHaveLength(0);
});

test("the signer's deadline is Lambda's remaining time", async () => {
  const { handler, signer } = setup();
  const before = Date.now();
  const res = await handler(event({}), { getRemainingTimeInMillis: () => 4321 });
  expect(res.statusCode).toBe(201);
  const deadline = signer.uploadOptions[0]?.deadline ?? 0;
  expect(deadline).toBeGreaterThanOrEqual(before + 4321);
  expect(deadline).toBeLessThanOrEqual(Date.now() + 4321);
  expect(signer.uploadOptions[0]?.signal).toBeInstanceOf(AbortSignal);
});
