/**
 * AWS's own sample Lambda events (aws/aws-lambda-go events/testdata; fixtures/README.md) through the
 * real Lambda handler factories on in-memory fakes, with a Lambda context object. Every sample is
 * either handled or refused, and the table says which and why.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { createLocalJWKSet, exportJWK, generateKeyPair } from 'jose';
import { createNotifyHandler } from '../../functions/aws/notify-handler';
import { createProcessHandler } from '../../functions/aws/process-handler';
import type { BatchResult } from '../../functions/aws/s3-event';
import { S3UrlSigner } from '../../functions/aws/s3-url-signer';
import { createUploadHandler } from '../../functions/aws/upload-handler';
import { JwtAuthenticator } from '../../shared/auth/jwt-authenticator';
import { loadConfig } from '../../shared/config';
import { SharpImageProcessor } from '../../shared/image/sharp-image-processor';
import { createLogger } from '../../shared/logger';
import { FixedClock, MemoryEventPublisher, SequentialIds } from '../../shared/testing/fakes';
import { MemoryObjectStore } from '../../shared/testing/memory-object-store';

const sample = (name: string): Record<string, unknown> =>
  JSON.parse(readFileSync(join(__dirname, 'fixtures', 'aws-events', name), 'utf8')) as Record<string, unknown>;

const config = loadConfig({
  PIXELPIPE_ORIGINALS_BUCKET: 'pixelpipe-originals',
  PIXELPIPE_VARIANTS_BUCKET: 'pixelpipe-variants',
  PIXELPIPE_TOPIC: 'arn:aws:sns:us-east-1:123456789012:pixelpipe-events',
  PIXELPIPE_CORS_ORIGINS: 'https://app.example.com',
  PIXELPIPE_AUTH_MODE: 'jwt',
  PIXELPIPE_JWKS_URL: 'https://idp.example.com/.well-known/jwks.json',
  PIXELPIPE_JWT_ISSUER: 'https://idp.example.com/',
  PIXELPIPE_JWT_AUDIENCE: 'pixelpipe',
});

const jwtSettings = (() => {
  if (config.auth.mode !== 'jwt') throw new Error('the conformance config uses jwt');
  return config.auth;
})();

/** A Lambda context as the runtime passes it (aws-lambda's `Context`). */
function lambdaContext(remainingMs = 30_000): Context {
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: 'pixelpipe-conformance',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:pixelpipe-conformance',
    memoryLimitInMB: '1024',
    awsRequestId: 'c6af9ac6-7b61-11e6-9a41-93e8deadbeef',
    logGroupName: '/aws/lambda/pixelpipe-conformance',
    logStreamName: '2026/12/03/[$LATEST]0123456789abcdef',
    getRemainingTimeInMillis: () => remainingMs,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  return { lines, logger: createLogger({ level: 'debug', sink: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) }) };
}

type LambdaHandler<R> = (event: unknown, context: Context) => Promise<R>;

function s3Handlers() {
  const { lines, logger } = capture();
  const store = new MemoryObjectStore();
  const publisher = new MemoryEventPublisher();
  const processHandler: LambdaHandler<BatchResult> = createProcessHandler({
    store,
    processor: new SharpImageProcessor(),
    clock: new FixedClock(),
    logger,
    config,
  });
  const notifyHandler: LambdaHandler<BatchResult> = createNotifyHandler({ store, publisher, logger, config });
  return { lines, store, publisher, process: processHandler, notify: notifyHandler };
}

async function uploadHandler() {
  const { lines, logger } = capture();
  const { publicKey } = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256' };
  const handler: LambdaHandler<APIGatewayProxyStructuredResultV2> = createUploadHandler({
    signer: new S3UrlSigner({ region: 'us-east-1', credentials: () => Promise.resolve({ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' }) }),
    ids: new SequentialIds(),
    clock: new FixedClock(),
    config,
    authenticator: new JwtAuthenticator(jwtSettings, createLocalJWKSet({ keys: [jwk] })),
    logger,
  });
  return { lines, handler };
}

/** S3 notifications: the key arrives form-encoded ("Happy%20Face.jpg") and is decoded before use. */
const S3_SAMPLES: Array<[sample: string, fn: 'process' | 'notify', reason: string, why: string]> = [
  ['s3-event.json', 'process', 'outside_originals', 'bucket "sourcebucket" is not the originals bucket and the key is not under originals/'],
  ['s3-event-with-decoded.json', 'process', 'outside_originals', 'same record; the extra urlDecodedKey field is not used'],
  ['s3-event.json', 'notify', 'not_a_manifest', 'the key is not manifests/<id>.json'],
  ['s3-event-with-decoded.json', 'notify', 'not_a_manifest', 'the key is not manifests/<id>.json'],
];

/** Events of other sources reaching an S3-triggered function: a wiring mistake, logged and acknowledged. */
const FOREIGN_SAMPLES: Array<[sample: string, fn: 'process' | 'notify']> = [
  ['sns-event.json', 'process'],
  ['sns-event.json', 'notify'],
  ['sqs-event.json', 'process'],
  ['sqs-event.json', 'notify'],
];

/** HTTP events to the upload function (API Gateway HTTP API v2 and a Lambda function URL share payload 2.0). */
const HTTP_SAMPLES: Array<[sample: string, variant: string, status: number, code: string, why: string]> = [
  ['apigw-v2-request-no-authorizer.json', 'as published', 405, 'method_not_allowed', 'a GET; the upload endpoint takes POST'],
  [
    'apigw-v2-request-jwt-authorizer.json',
    'as published',
    404,
    'not_found',
    'path /my/path on the $default route: only / and /uploads are the upload endpoint',
  ],
  [
    'apigw-v2-request-jwt-authorizer.json',
    'as a POST to /uploads',
    401,
    'unauthenticated',
    'the API Gateway authorizer’s claims are not a credential: the function verifies a bearer token itself',
  ],
  ['lambda-urls-request.json', 'as published', 404, 'not_found', 'path /my/path of a function URL: only / and /uploads are the upload endpoint'],
  ['lambda-urls-request.json', 'to /uploads', 400, 'invalid_json', 'a POST whose body "Hello from client!" is not JSON'],
];

describe('AWS sample S3 events through the process and notify handlers', () => {
  test.each(S3_SAMPLES)('%s → %s: ignored, %s (%s)', async (name, fn, reason) => {
    const h = s3Handlers();
    const result = await h[fn](sample(name), lambdaContext());
    expect(result).toEqual({ outcomes: [{ bucket: 'sourcebucket', key: 'Happy Face.jpg', status: 'ignored', reason }], batchItemFailures: [] });
    expect(h.publisher.messages).toEqual([]);
    expect(await h.store.list('pixelpipe-variants', '')).toMatchObject({ items: [] });
  });

  test('s3-event.json pointed at one of our originals: handled; its 1970 eventTime is past the event-age budget, so failed with retries_exhausted, and notify publishes that', async () => {
    const h = s3Handlers();
    const key = 'originals/alice/6f1c2a4e-8b3d-4c5e-9f70-1a2b3c4d5e6f';
    const put = await h.store.put('pixelpipe-originals', key, Buffer.from('not decoded: the age check comes first'), { contentType: 'image/jpeg' });
    // Only what names the object changes; eventTime, eTag, sequencer and the rest are AWS's.
    const event = sample('s3-event.json') as { Records: Array<{ s3: { bucket: { name: string }; object: { key: string; versionId: string } } }> };
    event.Records[0].s3.bucket.name = 'pixelpipe-originals';
    event.Records[0].s3.object.key = encodeURIComponent(key);
    event.Records[0].s3.object.versionId = put.generation;
    const processed = await h.process(event, lambdaContext());
    expect(processed.outcomes).toEqual([
      { bucket: 'pixelpipe-originals', key, status: 'failed', imageId: '6f1c2a4e-8b3d-4c5e-9f70-1a2b3c4d5e6f', reason: 'retries_exhausted' },
    ]);

    const manifest = sample('s3-event.json') as typeof event;
    manifest.Records[0].s3.bucket.name = 'pixelpipe-variants';
    manifest.Records[0].s3.object.key = 'manifests/6f1c2a4e-8b3d-4c5e-9f70-1a2b3c4d5e6f.json';
    const notified = await h.notify(manifest, lambdaContext());
    expect(notified.outcomes).toMatchObject([{ status: 'published', reason: 'failed' }]);
    expect(h.publisher.messages).toHaveLength(1);
  });

  test.each(FOREIGN_SAMPLES)('%s → %s: refused as not an S3 event notification (invalid_event), acknowledged', async (name, fn) => {
    const h = s3Handlers();
    const result = await h[fn](sample(name), lambdaContext());
    expect(result).toEqual({ outcomes: [], batchItemFailures: [] });
    expect(h.lines.filter((l) => l.level === 'error').map((l) => l.reason)).toEqual(['invalid_event']);
  });
});

describe('AWS sample HTTP events through the upload handler', () => {
  test.each(HTTP_SAMPLES)('%s (%s) → %d %s: %s', async (name, variant, status, code) => {
    const { handler, lines } = await uploadHandler();
    const event = sample(name) as { rawPath: string; requestContext: { http: { method: string; path: string } } };
    // Only the method and path change; headers, authorizer claims, body and the rest are AWS's.
    if (variant.includes('POST')) event.requestContext.http.method = 'POST';
    if (variant.includes('/uploads')) event.rawPath = event.requestContext.http.path = '/uploads';
    const res = await handler(event, lambdaContext());
    expect(res.statusCode).toBe(status);
    expect((JSON.parse(res.body ?? '{}') as { error?: { code?: string } }).error?.code).toBe(code);
    const refusal = lines.find((l) => l.message === 'upload request refused');
    expect(refusal).toMatchObject({ reason: code, status });
  });

  test('the trace id comes from the sample’s x-amzn-trace-id header (Root=1-5e9f0c65-1de4d666d4dd26aced652b6c)', async () => {
    const { handler, lines } = await uploadHandler();
    await handler(sample('apigw-v2-request-no-authorizer.json'), lambdaContext());
    expect(lines.map((l) => l.traceId)).toContain('5e9f0c651de4d666d4dd26aced652b6c');
  });
});
