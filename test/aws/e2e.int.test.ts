/**
 * The AWS flavour end to end on local servers: upload handler → browser-style multipart POST to s3rver
 * → S3 ObjectCreated event → process handler (real sharp) → manifest event → notify handler → local SNS
 * → SQS-shaped subscriber → `parseCompletionEvent`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { SNSClient } from '@aws-sdk/client-sns';
import { AnonymousAuthenticator } from '../../shared/auth/jwt-authenticator';
import { systemClock, uuidIds } from '../../shared/clock';
import { loadConfig } from '../../shared/config';
import { EVENT_TYPES } from '../../shared/events';
import { parseOutcomeEvent } from '../support/events';
import { SharpImageProcessor } from '../../shared/image/sharp-image-processor';
import { createLogger } from '../../shared/logger';
import type { UploadTarget } from '../../shared/ports';
import { createNotifyHandler } from '../../functions/aws/notify-handler';
import { createProcessHandler } from '../../functions/aws/process-handler';
import { S3ObjectStore } from '../../functions/aws/s3-object-store';
import { S3UrlSigner } from '../../functions/aws/s3-url-signer';
import { SnsEventPublisher } from '../../functions/aws/sns-event-publisher';
import { createUploadHandler } from '../../functions/aws/upload-handler';
import { startLocalS3, type LocalS3, type S3rverEvent } from '../servers/s3';
import { startLocalSns, type LocalSns, type MemoryQueue } from '../servers/sns';

const ORIG = 'e2e-originals';
const VAR = 'e2e-variants';
const SAMPLE = readFileSync(join(__dirname, '..', '..', 'samples', 'landscape.jpg'));

/**
 * s3rver's notification carries the raw key; S3 form-URL-encodes it (`+` for space). Re-encode so the
 * handlers see exactly what Lambda would deliver.
 */
function asDeliveredByS3(e: S3rverEvent): S3rverEvent {
  return {
    Records: e.Records.map((r) => ({
      ...r,
      eventVersion: '2.1',
      s3: {
        ...r.s3,
        object: {
          ...r.s3.object,
          key: r.s3.object.key
            .split('/')
            .map((s) => encodeURIComponent(s).replace(/%20/g, '+'))
            .join('/'),
        },
      },
    })),
  };
}

describe('AWS pipeline end to end (s3rver + local SNS)', () => {
  let s3: LocalS3;
  let sns: LocalSns;
  let queue: MemoryQueue;
  let topicArn: string;
  let snsClient: SNSClient;

  beforeAll(async () => {
    s3 = await startLocalS3([ORIG, VAR]);
    sns = await startLocalSns();
    topicArn = sns.createTopic('pixelpipe-e2e-events');
    queue = sns.subscribeQueue(topicArn);
    snsClient = new SNSClient({ endpoint: sns.endpoint, region: sns.region, credentials: { accessKeyId: 'test', secretAccessKey: 'test' }, maxAttempts: 1 });
  });
  afterAll(async () => {
    snsClient?.destroy();
    await sns?.close();
    await s3?.close();
  });

  test('upload → POST → process → notify → SNS → subscriber', async () => {
    const config = loadConfig({
      PIXELPIPE_ORIGINALS_BUCKET: ORIG,
      PIXELPIPE_VARIANTS_BUCKET: VAR,
      PIXELPIPE_TOPIC: topicArn,
      PIXELPIPE_AUTH_MODE: 'anonymous',
      PIXELPIPE_CORS_ORIGINS: 'https://app.example.com',
      PIXELPIPE_VARIANTS: JSON.stringify([
        { name: 'thumb', width: 200, height: 200, fit: 'cover', formats: ['webp'] },
        { name: 'small', width: 480, formats: ['jpeg', 'webp'] },
      ]),
      PIXELPIPE_SOURCE: '//pixelpipe/aws/e2e',
    });
    const logger = createLogger({ level: 'warn' });

    // 1. The upload function signs a POST target.
    const upload = createUploadHandler({
      signer: S3UrlSigner.fromClient(s3.client()),
      ids: uuidIds,
      clock: systemClock,
      config,
      authenticator: new AnonymousAuthenticator(),
      logger,
    });
    const apiEvent = JSON.parse(readFileSync(join(__dirname, 'fixtures', 'apigw-v2-post.json'), 'utf8')) as { headers: Record<string, string>; body: string };
    delete apiEvent.headers.authorization;
    apiEvent.body = JSON.stringify({ contentType: 'image/jpeg', size: SAMPLE.length, filename: 'landscape 1.jpg' });
    const res = await upload(apiEvent);
    expect(res.statusCode).toBe(201);
    const ticket = JSON.parse(res.body!) as { id: string; key: string; upload: UploadTarget };
    expect(ticket.upload.method).toBe('POST');
    if (ticket.upload.method !== 'POST') return;
    expect(ticket.upload.url).toBe(`${s3.endpoint}/${ORIG}`);

    // 2. The browser's multipart POST: every field, then the file last.
    const form = new FormData();
    for (const [k, v] of Object.entries(ticket.upload.fields)) form.append(k, v);
    form.append('file', new Blob([SAMPLE], { type: 'image/jpeg' }), 'landscape 1.jpg');
    const posted = await fetch(ticket.upload.url, { method: 'POST', body: form });
    expect(posted.status).toBe(204);
    const created = s3.events.find((e) => e.Records[0].s3.object.key === ticket.key);
    expect(created?.Records[0].eventName).toBe('ObjectCreated:Post');

    // 3. Process: the S3 notification for the original.
    const store = new S3ObjectStore(s3.client());
    const original = await store.head(ORIG, ticket.key);
    expect(original).toMatchObject({ size: SAMPLE.length, contentType: 'image/jpeg' });
    expect(decodeURIComponent(original!.metadata['pixelpipe-filename'])).toBe('landscape 1.jpg');
    const processHandler = createProcessHandler({ store, processor: new SharpImageProcessor(), clock: systemClock, logger, config });
    const processed = await processHandler(asDeliveredByS3(created!));
    expect(processed.outcomes).toEqual([expect.objectContaining({ key: ticket.key, status: 'processed', imageId: ticket.id })]);

    const thumb = await store.get(VAR, `variants/${ticket.id}/thumb.webp`);
    expect(thumb).toMatchObject({ contentType: 'image/webp', cacheControl: 'public, max-age=31536000, immutable' });
    const meta = await sharp(thumb.body).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['webp', 200, 200]);
    const small = await sharp((await store.get(VAR, `variants/${ticket.id}/small.jpg`)).body).metadata();
    expect([small.format, small.width, small.height]).toEqual(['jpeg', 480, Math.round((1065 * 480) / 1600)]);
    // A signed read URL for a variant works against the same endpoint.
    const read = await fetch(await S3UrlSigner.fromClient(s3.client()).signRead(VAR, `variants/${ticket.id}/small.webp`, 300));
    expect(read.status).toBe(200);
    expect((await sharp(Buffer.from(await read.arrayBuffer())).metadata()).width).toBe(480);

    // The outputs' own notifications never re-trigger processing.
    const outputEvents = s3.events.filter((e) => e.Records[0].s3.bucket.name === VAR);
    expect(outputEvents.length).toBeGreaterThanOrEqual(4);
    for (const e of outputEvents) {
      const r = await processHandler(asDeliveredByS3(e));
      expect(r.outcomes.every((o) => o.status === 'ignored')).toBe(true);
    }

    // 4. Notify: the S3 notification for the manifest (and none for anything else).
    const notify = createNotifyHandler({ store, publisher: new SnsEventPublisher(snsClient, topicArn), logger, config });
    for (const e of outputEvents.filter((x) => !x.Records[0].s3.object.key.startsWith('manifests/'))) {
      expect((await notify(asDeliveredByS3(e))).outcomes[0].status).toBe('ignored');
    }
    const manifestEvent = outputEvents.find((e) => e.Records[0].s3.object.key === `manifests/${ticket.id}.json`);
    const notified = await notify(asDeliveredByS3(manifestEvent!));
    expect(notified.outcomes).toEqual([expect.objectContaining({ status: 'published', imageId: ticket.id })]);

    // 5. The subscriber: an SQS queue subscribed to the topic, consumed by a Lambda.
    const [message] = await queue.receive(1, 5000);
    const envelope = JSON.parse(message.Body) as { Type: string; MessageAttributes: Record<string, { Type: string; Value: string }> };
    expect(envelope.Type).toBe('Notification');
    expect(envelope.MessageAttributes).toEqual({
      type: { Type: 'String', Value: EVENT_TYPES.processed },
      imageId: { Type: 'String', Value: ticket.id },
      owner: { Type: 'String', Value: 'anonymous' },
      status: { Type: 'String', Value: 'processed' },
      profile: { Type: 'String', Value: 'default' },
    });
    const event = parseOutcomeEvent(queue.toLambdaEvent([message]));
    expect(event).toMatchObject({ specversion: '1.0', type: EVENT_TYPES.processed, subject: ticket.id, source: '//pixelpipe/aws/e2e' });
    expect(event.data.source).toMatchObject({ bucket: ORIG, key: ticket.key, width: 1600, height: 1065, filename: 'landscape 1.jpg' });
    expect(event.data.variants.map((v) => [v.name, v.format, v.width, v.height]).sort()).toEqual(
      [
        ['small', 'jpeg', 480, 320],
        ['small', 'webp', 480, 320],
        ['thumb', 'webp', 200, 200],
      ].sort(),
    );
    expect(event.data.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(sns.published).toHaveLength(1);
  }, 60_000);

  test("upload with a profile → the original's metadata pins it → processed with that profile's variants → SNS profile attribute", async () => {
    const config = loadConfig({
      PIXELPIPE_ORIGINALS_BUCKET: ORIG,
      PIXELPIPE_VARIANTS_BUCKET: VAR,
      PIXELPIPE_TOPIC: topicArn,
      PIXELPIPE_AUTH_MODE: 'anonymous',
      PIXELPIPE_CORS_ORIGINS: 'https://app.example.com',
      PIXELPIPE_PROFILES: JSON.stringify({
        avatar: { variants: [{ name: 'square', width: 128, height: 128, fit: 'cover', formats: ['webp'] }], maxInputBytes: 2_000_000 },
      }),
    });
    const logger = createLogger({ level: 'warn' });
    const store = new S3ObjectStore(s3.client());
    const upload = createUploadHandler({
      signer: S3UrlSigner.fromClient(s3.client()),
      ids: uuidIds,
      clock: systemClock,
      config,
      authenticator: new AnonymousAuthenticator(),
      logger,
    });
    const apiEvent = JSON.parse(readFileSync(join(__dirname, 'fixtures', 'apigw-v2-post.json'), 'utf8')) as { headers: Record<string, string>; body: string };
    delete apiEvent.headers.authorization;
    apiEvent.body = JSON.stringify({ contentType: 'image/jpeg', size: SAMPLE.length, profile: 'avatar' });
    const res = await upload(apiEvent);
    expect(res.statusCode).toBe(201);
    const ticket = JSON.parse(res.body!) as { id: string; key: string; upload: UploadTarget };
    if (ticket.upload.method !== 'POST') throw new Error('expected a POST target');
    const form = new FormData();
    for (const [k, v] of Object.entries(ticket.upload.fields)) form.append(k, v);
    form.append('file', new Blob([SAMPLE], { type: 'image/jpeg' }), 'a.jpg');
    expect((await fetch(ticket.upload.url, { method: 'POST', body: form })).status).toBe(204);
    expect((await store.head(ORIG, ticket.key))?.metadata['pixelpipe-profile']).toBe('avatar');

    const created = s3.events.find((e) => e.Records[0].s3.object.key === ticket.key)!;
    const processed = await createProcessHandler({ store, processor: new SharpImageProcessor(), clock: systemClock, logger, config })(asDeliveredByS3(created));
    expect(processed.outcomes).toEqual([expect.objectContaining({ key: ticket.key, status: 'processed' })]);
    const square = await sharp((await store.get(VAR, `variants/${ticket.id}/square.webp`)).body).metadata();
    expect([square.format, square.width, square.height]).toEqual(['webp', 128, 128]);
    expect(await store.head(VAR, `variants/${ticket.id}/thumb.webp`)).toBeNull();

    const manifestEvent = s3.events.find((e) => e.Records[0].s3.object.key === `manifests/${ticket.id}.json`)!;
    const notify = createNotifyHandler({ store, publisher: new SnsEventPublisher(snsClient, topicArn), logger, config });
    expect((await notify(asDeliveredByS3(manifestEvent))).outcomes).toEqual([expect.objectContaining({ status: 'published' })]);
    const [message] = await queue.receive(1, 5000);
    const envelope = JSON.parse(message.Body) as { MessageAttributes: Record<string, { Type: string; Value: string }> };
    expect(envelope.MessageAttributes.profile).toEqual({ Type: 'String', Value: 'avatar' });
    const event = parseOutcomeEvent(queue.toLambdaEvent([message]));
    expect([event.data.profile, event.data.recipe, event.data.variants.map((v) => `${v.name}.${v.format}`)]).toEqual([
      'avatar',
      expect.stringMatching(/^r\d+-[0-9a-f]{24}$/),
      ['square.webp'],
    ]);
  }, 60_000);
});
