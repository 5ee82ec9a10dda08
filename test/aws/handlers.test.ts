/**
 * The AWS handlers on in-memory fakes, driven by real-shaped S3 and API Gateway v2 events
 * (test/aws/fixtures/*.json).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT, createLocalJWKSet, exportJWK, generateKeyPair } from 'jose';
import { JwtAuthenticator } from '../../shared/auth/jwt-authenticator';
import { loadConfig, type PixelpipeConfig, type VariantSpec } from '../../shared/config';
import { ImageRejectedError, PixelpipeError, TransientError } from '../../shared/errors';
import { parseOutcomeEvent } from '../support/events';
import { createLogger } from '../../shared/logger';
import type { ImageProcessor, ListPage, ObjectInfo, ObjectStore, PutOptions, RenderResult, StoredObject } from '../../shared/ports';
import { FixedClock, MemoryEventPublisher, SequentialIds } from '../../shared/testing/fakes';
import { MemoryObjectStore } from '../../shared/testing/memory-object-store';
import { createNotifyHandler } from '../../functions/aws/notify-handler';
import { createProcessHandler } from '../../functions/aws/process-handler';
import { decodeS3Key } from '../../functions/aws/s3-event';
import { S3UrlSigner } from '../../functions/aws/s3-url-signer';
import { createUploadHandler } from '../../functions/aws/upload-handler';

const fixture = <T = Record<string, unknown>>(name: string): T => JSON.parse(readFileSync(join(__dirname, 'fixtures', name), 'utf8')) as T;

const ORIG = 'pixelpipe-test-originals-123456789012-us-east-1';
const VAR = 'pixelpipe-test-variants-123456789012-us-east-1';
const UUID = '6f1c2a4e-8b3d-4c5e-9f70-1a2b3c4d5e6f';

function config(extra: Record<string, string> = {}): PixelpipeConfig {
  return loadConfig({
    PIXELPIPE_ORIGINALS_BUCKET: ORIG,
    PIXELPIPE_VARIANTS_BUCKET: VAR,
    PIXELPIPE_TOPIC: 'arn:aws:sns:us-east-1:123456789012:pixelpipe-test-events',
    PIXELPIPE_CORS_ORIGINS: 'https://app.example.com',
    PIXELPIPE_AUTH_MODE: 'jwt',
    PIXELPIPE_JWKS_URL: 'https://idp.example.com/.well-known/jwks.json',
    PIXELPIPE_JWT_ISSUER: 'https://idp.example.com/',
    PIXELPIPE_JWT_AUDIENCE: 'pixelpipe',
    PIXELPIPE_VARIANTS: JSON.stringify([
      { name: 'thumb', width: 200, height: 200, fit: 'cover', formats: ['webp'] },
      { name: 'small', width: 480, formats: ['jpeg'] },
    ]),
    ...extra,
  });
}

/** Log lines as objects, so tests can assert on the per-record outcome line. */
function capturingLogger(): { logger: ReturnType<typeof createLogger>; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  return { logger: createLogger({ level: 'debug', sink: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) }), lines };
}

/**
 * The memory store with S3's notion of a generation (the MD5 ETag of a single-part upload), so the
 * eTags in the fixtures match the objects the tests put; plus per-key fault injection.
 */
class EtagStore implements ObjectStore {
  readonly inner = new MemoryObjectStore();
  readonly failGet = new Map<string, Error>();
  private readonly etags = new Map<string, string>();
  async get(bucket: string, key: string, o?: { maxBytes?: number }): Promise<StoredObject> {
    const f = this.failGet.get(key);
    if (f) throw f;
    const got = await this.inner.get(bucket, key, o);
    return { ...got, generation: md5(got.body) };
  }
  async head(bucket: string, key: string): Promise<ObjectInfo | null> {
    const h = await this.inner.head(bucket, key);
    return h && { ...h, generation: this.etags.get(`${bucket}/${key}`) ?? h.generation };
  }
  async put(bucket: string, key: string, body: Buffer, options: PutOptions): Promise<ObjectInfo> {
    const info = await this.inner.put(bucket, key, body, options);
    this.etags.set(`${bucket}/${key}`, md5(body));
    return { ...info, generation: md5(body) };
  }
  list(bucket: string, prefix: string, o?: { pageToken?: string; pageSize?: number }): Promise<ListPage> {
    return this.inner.list(bucket, prefix, o);
  }
  delete(bucket: string, key: string): Promise<void> {
    return this.inner.delete(bucket, key);
  }
}
const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');

/** Renders every variant as a tiny fake output; `corrupt` bodies are rejected like sharp would. */
class FakeProcessor implements ImageProcessor {
  readonly inputs: string[] = [];
  render(input: Buffer, variants: VariantSpec[]): Promise<RenderResult> {
    this.inputs.push(input.toString());
    if (input.toString() === 'corrupt') return Promise.reject(new ImageRejectedError('corrupt_image', 'not a decodable image'));
    return Promise.resolve({
      probe: { mimeType: 'image/jpeg', format: 'jpeg', width: 4000, height: 3000, pages: 1, hasAlpha: false, hasProfile: false },
      outputs: variants.flatMap((v) =>
        v.formats.map((f) => ({
          variant: v.name,
          format: f === 'webp' ? ('webp' as const) : ('jpeg' as const),
          contentType: f === 'webp' ? 'image/webp' : 'image/jpeg',
          extension: f === 'webp' ? 'webp' : 'jpg',
          width: v.width ?? 100,
          height: v.height ?? Math.round(((v.width ?? 100) * 3) / 4),
          body: Buffer.from(`${v.name}.${f}`),
        })),
      ),
      placeholder: null,
      metrics: { decodeMs: 1, encodeMs: {} },
    });
  }
}

/** The four originals named by s3-put-originals.json, stored with the bytes whose MD5 the fixture carries. */
const ORIGINALS: Array<[string, string]> = [
  [`originals/alice/${UUID}`, 'original-1'],
  ['originals/alice/holiday photo 2024.jpg', 'original-space'],
  ['originals/alice/a+b.jpg', 'original-plus'],
  ['originals/alice/фото 😀.jpg', 'original-unicode'],
];

async function processSetup() {
  const store = new EtagStore();
  for (const [key, body] of ORIGINALS) await store.put(ORIG, key, Buffer.from(body), { contentType: 'image/jpeg' });
  const processor = new FakeProcessor();
  const { logger, lines } = capturingLogger();
  const handler = createProcessHandler({ store, processor, clock: new FixedClock(new Date('2026-03-10T12:00:02Z').getTime()), logger, config: config() });
  return { store, processor, lines, handler };
}

describe('S3 key decoding', () => {
  test.each([
    ['originals/alice/holiday+photo+2024.jpg', 'originals/alice/holiday photo 2024.jpg'],
    ['originals/alice/a%2Bb.jpg', 'originals/alice/a+b.jpg'],
    ['originals/alice/%D1%84%D0%BE%D1%82%D0%BE+%F0%9F%98%80.jpg', 'originals/alice/фото 😀.jpg'],
    ['originals/alice/100%25+done', 'originals/alice/100% done'],
  ])('%s → %s', (raw, decoded) => {
    expect(decodeS3Key(raw)).toBe(decoded);
  });
  test('invalid percent-encoding is refused', () => {
    expect(decodeS3Key('originals/alice/%E0%A4%A')).toBeNull();
  });
});

describe('process handler (S3 ObjectCreated)', () => {
  test('processes every record of a multi-record event, with keys decoded, and reports each outcome', async () => {
    const { store, processor, handler, lines } = await processSetup();
    const result = await handler(fixture('s3-put-originals.json'));
    expect(result.outcomes.map((o) => [o.key, o.status])).toEqual(ORIGINALS.map(([k]) => [k, 'processed']));
    expect(result.batchItemFailures).toEqual([]);
    expect(processor.inputs).toEqual(ORIGINALS.map(([, b]) => b));
    expect(result.outcomes[0].imageId).toBe(UUID);
    const manifests = store.inner.keys(VAR).filter((k) => k.startsWith('manifests/'));
    expect(manifests).toHaveLength(4);
    expect(manifests).toContain(`manifests/${UUID}.json`);
    const m: unknown = JSON.parse((await store.get(VAR, `manifests/${UUID}.json`)).body.toString());
    expect(m).toMatchObject({ status: 'processed', owner: 'alice', source: { generation: '5c830655231562750d131191b6cacace' } });
    expect(store.inner.keys(VAR)).toContain(`variants/${UUID}/thumb.webp`);
    const summary = lines.find((l) => l.message === 'process: 4 record(s)');
    expect(summary?.outcomes).toHaveLength(4);
  });

  test('a redelivered event is recognised per record as a duplicate (cheap Lambda retries)', async () => {
    const { handler, processor } = await processSetup();
    await handler(fixture('s3-put-originals.json'));
    const again = await handler(fixture('s3-put-originals.json'));
    expect(again.outcomes.map((o) => o.status)).toEqual(['duplicate', 'duplicate', 'duplicate', 'duplicate']);
    expect(processor.inputs).toHaveLength(4);
  });

  test('a transient failure in one record fails the invocation after the other records were processed', async () => {
    const { store, handler, lines } = await processSetup();
    store.failGet.set('originals/alice/a+b.jpg', new TransientError('storage_unavailable', 'S3 503 SlowDown'));
    const err = await handler(fixture('s3-put-originals.json')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect((err as TransientError).message).toMatch(/1 of 4 record\(s\) failed transiently \(originals\/alice\/a\+b\.jpg\)/);
    const manifests = store.inner.keys(VAR).filter((k) => k.startsWith('manifests/'));
    expect(manifests).toHaveLength(3);
    // The attempt was counted for the poison-object guard.
    expect(store.inner.keys(VAR).some((k) => k.startsWith('state/') && k.endsWith('b60c59bf55f75ddcc2cc2b25b71ab279.attempts'))).toBe(true);
    const summary = lines.find((l) => l.message === 'process: 4 record(s)')!;
    expect(summary.batchItemFailures).toEqual([{ itemIdentifier: 'originals/alice/a+b.jpg' }]);
    expect((summary.outcomes as Array<{ status: string }>).map((o) => o.status)).toEqual(['processed', 'processed', 'retry', 'processed']);
  });

  test('a permanent failure writes a failed manifest and does not throw', async () => {
    const { store, handler } = await processSetup();
    await store.put(ORIG, 'originals/alice/a+b.jpg', Buffer.from('corrupt'), { contentType: 'image/jpeg' });
    const event = fixture<{ Records: Array<{ s3: { object: { eTag: string } } }> }>('s3-put-originals.json');
    event.Records[2].s3.object.eTag = md5(Buffer.from('corrupt'));
    const result = await handler(event);
    expect(result.outcomes[2]).toMatchObject({ key: 'originals/alice/a+b.jpg', status: 'failed', reason: 'corrupt_image' });
    const failed = result.outcomes[2].imageId!;
    const m: unknown = JSON.parse((await store.get(VAR, `manifests/${failed}.json`)).body.toString());
    expect(m).toMatchObject({ status: 'failed', reason: { code: 'corrupt_image' }, variants: [] });
    expect(result.outcomes.filter((o) => o.status === 'processed')).toHaveLength(3);
  });

  test('a permanent infrastructure error (e.g. access denied) is logged and acknowledged, not retried', async () => {
    const { store, handler, lines } = await processSetup();
    store.failGet.set(`originals/alice/${UUID}`, new PixelpipeError('internal', 'AccessDenied', { retryable: false }));
    const result = await handler(fixture('s3-put-originals.json'));
    expect(result.outcomes[0]).toMatchObject({ status: 'error', reason: 'internal' });
    expect(lines.some((l) => l.level === 'error' && String(l.message).includes('permanent failure'))).toBe(true);
  });

  test('its own outputs (variants, manifests, state, wrong bucket, bare prefix) never re-trigger processing', async () => {
    const { store, handler, processor } = await processSetup();
    const before = store.inner.calls.length;
    const result = await handler(fixture('s3-put-outputs.json'));
    expect(result.outcomes.map((o) => [o.status, o.reason])).toEqual(Array(5).fill(['ignored', 'outside_originals']));
    expect(processor.inputs).toHaveLength(0);
    expect(store.inner.calls.slice(before).filter((c) => c.op === 'put')).toEqual([]);
  });

  test('S3 test events and foreign payloads are acknowledged without work', async () => {
    const { handler, lines } = await processSetup();
    await expect(handler(fixture('s3-test-event.json'))).resolves.toEqual({ outcomes: [], batchItemFailures: [] });
    expect(lines.filter((l) => l.level === 'error')).toHaveLength(0);
    await expect(handler({ hello: 'world' })).resolves.toEqual({ outcomes: [], batchItemFailures: [] });
    expect(lines.filter((l) => l.level === 'error')).toHaveLength(1);
  });
});

describe('notify handler (S3 ObjectCreated on manifests/)', () => {
  async function notifySetup() {
    const store = new EtagStore();
    const processor = new FakeProcessor();
    await store.put(ORIG, `originals/alice/${UUID}`, Buffer.from('original-1'), { contentType: 'image/jpeg' });
    const { logger } = capturingLogger();
    const cfg = config();
    await createProcessHandler({ store, processor, clock: new FixedClock(), logger, config: cfg })(fixture('s3-put-originals.json')).catch(() => undefined);
    const publisher = new MemoryEventPublisher();
    const handler = createNotifyHandler({ store, publisher, logger, config: cfg });
    return { store, publisher, handler };
  }

  test('publishes the CloudEvent for a manifest with filter attributes', async () => {
    const { publisher, handler } = await notifySetup();
    const result = await handler(fixture('s3-put-manifest.json'));
    expect(result.outcomes).toEqual([expect.objectContaining({ key: `manifests/${UUID}.json`, status: 'published', imageId: UUID })]);
    expect(publisher.messages).toHaveLength(1);
    expect(publisher.messages[0].attributes).toEqual({
      type: 'pixelpipe.image.processed.v1',
      imageId: UUID,
      owner: 'alice',
      status: 'processed',
      profile: 'default',
    });
    const event = parseOutcomeEvent(publisher.messages[0].body);
    expect(event.data.variants.map((v) => [v.name, v.width, v.height])).toEqual([
      ['thumb', 200, 200],
      ['small', 480, 360],
    ]);
  });

  test('ignores everything that is not a manifest object creation', async () => {
    const { publisher, handler } = await notifySetup();
    const result = await handler(fixture('s3-put-not-manifests.json'));
    expect(result.outcomes.map((o) => o.status)).toEqual(['ignored', 'ignored', 'ignored', 'ignored', 'ignored']);
    expect(result.outcomes[4].reason).toBe('not_object_created');
    expect(publisher.messages).toHaveLength(0);
  });

  test('a failed publish (transient or not) fails the invocation so Lambda retries and then dead-letters it', async () => {
    const { publisher, handler } = await notifySetup();
    publisher.failNext(new TransientError('publish_failed', 'SNS 500'));
    await expect(handler(fixture('s3-put-manifest.json'))).rejects.toBeInstanceOf(TransientError);
    publisher.failNext(new PixelpipeError('internal', 'AuthorizationError', { retryable: false }));
    const err = await handler(fixture('s3-put-manifest.json')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect((err as Error).message).toMatch(/failed transiently/);
    await expect(handler(fixture('s3-put-manifest.json'))).resolves.toMatchObject({ outcomes: [{ status: 'published' }] });
  });
});

/** The JSON body of a 201 from the upload handler. */
interface UploadResponse {
  key: string;
  upload: { method: string; url: string; headers: Record<string, string>; fields: Record<string, string> };
}

describe('upload handler (API Gateway HTTP API v2)', () => {
  let token: string;
  let handler: ReturnType<typeof createUploadHandler>;
  beforeAll(async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' };
    const cfg = config();
    if (cfg.auth.mode !== 'jwt') throw new Error('jwt config expected');
    token = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setSubject('alice')
      .setIssuer(cfg.auth.issuer)
      .setAudience(cfg.auth.audience)
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(privateKey);
    const { logger } = capturingLogger();
    handler = createUploadHandler({
      // Presigning is local: static credentials, no request to AWS.
      signer: new S3UrlSigner({ region: 'us-east-1', credentials: () => Promise.resolve({ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' }) }),
      ids: new SequentialIds(),
      clock: new FixedClock(),
      config: cfg,
      authenticator: new JwtAuthenticator(cfg.auth, createLocalJWKSet({ keys: [jwk] })),
      logger,
    });
  });

  const withToken = (name: string, auth: string | undefined): Record<string, unknown> => {
    const e = fixture<{ headers: Record<string, string | undefined> }>(name);
    if (auth === undefined) delete e.headers.authorization;
    else e.headers.authorization = auth;
    return e;
  };

  test.each(['apigw-v2-post.json', 'apigw-v2-post-base64.json'])('%s: 201 with a presigned POST target pinned to key, type and size', async (name) => {
    const res = await handler(withToken(name, `Bearer ${token}`));
    expect(res.statusCode).toBe(201);
    expect(res.headers).toMatchObject({ 'access-control-allow-origin': 'https://app.example.com', 'content-type': 'application/json; charset=utf-8' });
    const body = JSON.parse(res.body!) as UploadResponse;
    expect(body.key).toMatch(/^originals\/alice\/00000000-0000-4000-8000-00000000000\d$/);
    expect(body.upload).toMatchObject({ method: 'POST', url: `https://${ORIG}.s3.us-east-1.amazonaws.com/`, headers: {} });
    expect(body.upload.fields).toMatchObject({ key: body.key, 'Content-Type': 'image/jpeg', 'x-amz-meta-pixelpipe-trace': '4bf92f3577b34da6a3ce929d0e0e4736' });
    expect(decodeURIComponent(body.upload.fields['x-amz-meta-pixelpipe-filename'])).toBe('IMG 0001 ü.jpg');
    const policy = JSON.parse(Buffer.from(body.upload.fields.Policy, 'base64').toString()) as { conditions: unknown[] };
    expect(policy.conditions).toContainEqual(['content-length-range', 1, 123456]);
  });

  test('OPTIONS preflight from an allowed origin: 204 with CORS headers, no auth needed', async () => {
    const res = await handler(fixture('apigw-v2-options.json'));
    expect(res.statusCode).toBe(204);
    expect(res.headers).toMatchObject({ 'access-control-allow-origin': 'https://app.example.com', 'access-control-allow-methods': 'POST, OPTIONS' });
  });

  test('a foreign origin is refused, and never answered with a wildcard', async () => {
    const e = fixture<{ headers: Record<string, string> }>('apigw-v2-options.json');
    e.headers.origin = 'https://evil.example.net';
    const res = await handler(e);
    expect(res.statusCode).toBe(403);
    expect(JSON.stringify(res.headers)).not.toContain('*');
  });

  test.each([
    ['missing', undefined],
    ['garbage', 'Bearer not.a.jwt'],
    ['wrong scheme', `Basic ${Buffer.from('a:b').toString('base64')}`],
  ])('%s token: 401 with WWW-Authenticate', async (_what, auth) => {
    const res = await handler(withToken('apigw-v2-post.json', auth));
    expect(res.statusCode).toBe(401);
    expect(res.headers).toMatchObject({ 'www-authenticate': 'Bearer' });
    expect((JSON.parse(res.body!) as { error: { code: string } }).error.code).toBe('unauthenticated');
  });

  test('invalid bodies are 4xx JSON errors; a non-API-Gateway event is a 400', async () => {
    const e = withToken('apigw-v2-post.json', `Bearer ${token}`) as { body: string };
    e.body = JSON.stringify({ contentType: 'image/jpeg', size: 10_000_000_000 });
    expect((await handler(e)).statusCode).toBe(413);
    e.body = '{not json';
    expect((await handler(e)).statusCode).toBe(400);
    const big = withToken('apigw-v2-post-base64.json', `Bearer ${token}`) as { body: string };
    big.body = Buffer.from('x'.repeat(100_000)).toString('base64');
    expect((await handler(big)).statusCode).toBe(413);
    expect((await handler({ Records: [] })).statusCode).toBe(400);
  });
});
