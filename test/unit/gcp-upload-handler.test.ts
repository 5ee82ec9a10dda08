/**
 * The GCP upload handler behind the body guard, without a server: a request is a readable stream that
 * passed `guardRequest` (as the diagnostics-channel hook does for every incoming request), so the
 * handler reads the body itself, bounded. The real framework is exercised in
 * test/faults/upload-framework.int.test.ts.
 */
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { guardedEntityHeaders, guardRequest } from '../../functions/gcp/body-guard';
import { createUploadHandler } from '../../functions/gcp/upload-handler';
import { AnonymousAuthenticator } from '../../shared/auth/jwt-authenticator';
import { loadConfig } from '../../shared/config';
import { silentLogger } from '../../shared/logger';
import { FakeUrlSigner, FixedClock, SequentialIds } from '../../shared/testing/fakes';

const good = JSON.stringify({ contentType: 'image/png', size: 10 });

function deps(env: Record<string, string> = {}) {
  const config = loadConfig({ PIXELPIPE_AUTH_MODE: 'anonymous', ...env });
  return {
    config,
    authenticator: new AnonymousAuthenticator(),
    signer: new FakeUrlSigner(),
    ids: new SequentialIds(),
    clock: new FixedClock(),
    logger: silentLogger,
  };
}

/** A guarded request whose body is `chunks` (a generator can stall). */
function request(headers: Record<string, string>, chunks: Iterable<Buffer> | AsyncIterable<Buffer>, path = '/'): IncomingMessage {
  const req = Readable.from(chunks) as unknown as IncomingMessage & { path: string };
  Object.assign(req, { method: 'POST', headers: { ...headers }, path });
  guardRequest(req);
  return req;
}

async function answer(handler: ReturnType<typeof createUploadHandler>, req: IncomingMessage) {
  const out = { status: 0, headers: {} as Record<string, string>, body: '' };
  const res = {
    writableFinished: false,
    once: () => res,
    status: (s: number) => ((out.status = s), res),
    set: (h: Record<string, string>) => (Object.assign(out.headers, h), res),
    send: (b: string) => ((out.body = b), res),
  };
  await handler(req as never, res as never);
  return { ...out, json: JSON.parse(out.body) as { error?: { code: string } } };
}

test('the guard moves Content-Type and Content-Encoding aside (no parser matches a request without a type) and keeps the framing headers', () => {
  const req = request({ 'content-type': 'application/json', 'content-encoding': 'br', 'content-length': '211' }, []);
  expect(req.headers).toEqual({ 'content-length': '211' });
  expect(guardedEntityHeaders(req)).toEqual({ 'content-type': 'application/json', 'content-encoding': 'br' });
  expect(guardedEntityHeaders({})).toBeUndefined();
});

test('behind the guard the handler reads the body itself and sees the original headers', async () => {
  const d = deps();
  const res = await answer(
    createUploadHandler(d),
    request({ 'content-type': 'application/json' }, [Buffer.from(good.slice(0, 5)), Buffer.from(good.slice(5))]),
  );
  expect(res.status).toBe(201);
  expect(d.signer.requests[0].contentType).toBe('image/png');
});

test('the original Content-Encoding is still refused (415), without reading a byte', async () => {
  let pulled = 0;
  function* body() {
    pulled++;
    yield Buffer.from(good);
  }
  const res = await answer(createUploadHandler(deps()), request({ 'content-type': 'application/json', 'content-encoding': 'gzip' }, body()));
  expect(res.status).toBe(415);
  expect(res.json.error?.code).toBe('content_encoding_not_allowed');
  expect(pulled).toBe(0);
});

test('over 16 KiB, declared or arriving, is a 413', async () => {
  const h = createUploadHandler(deps());
  const declared = await answer(h, request({ 'content-type': 'application/json', 'content-length': '20000' }, [Buffer.alloc(10)]));
  expect([declared.status, declared.json.error?.code]).toEqual([413, 'payload_too_large']);
  const arriving = await answer(
    h,
    request(
      { 'content-type': 'application/json' },
      Array.from({ length: 20 }, () => Buffer.alloc(1024, 0x20)),
    ),
  );
  expect([arriving.status, arriving.json.error?.code]).toEqual([413, 'payload_too_large']);
});

test('a body that stalls past the function timeout is a 408, not a wedged invocation', async () => {
  async function* stalls() {
    yield Buffer.from('{"contentType"');
    await new Promise(() => undefined);
  }
  const res = await answer(
    createUploadHandler(deps({ PIXELPIPE_FUNCTION_TIMEOUT_SECONDS: '1', PIXELPIPE_DEADLINE_RESERVE_MS: '0' })),
    request({ 'content-type': 'application/json' }, stalls()),
  );
  expect([res.status, res.json.error?.code]).toEqual([408, 'request_timeout']);
});

test('a path other than / or /uploads is a 404 before the body is read', async () => {
  const res = await answer(createUploadHandler(deps()), request({ 'content-type': 'application/json' }, [Buffer.from(good)], '/admin'));
  expect([res.status, res.json.error?.code]).toEqual([404, 'not_found']);
});
