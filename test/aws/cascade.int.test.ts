/**
 * The AWS delete cascade end to end on s3rver: the process, notify, images and cascade Lambda handlers
 * with the real S3ObjectStore and S3UrlSigner (the images API's GET gives URLs that fetch, its DELETE
 * removes the original), each driven by the notification s3rver itself emitted (ObjectCreated for the
 * original and the manifest, ObjectRemoved:Delete for the deleted original), and nothing left under the
 * image's prefixes. Events go to an in-memory publisher (the SNS adapter has its own tests).
 */
import sharp from 'sharp';
import { createCascadeHandler } from '../../functions/aws/cascade-handler';
import { createImagesHandler } from '../../functions/aws/images-handler';
import { createNotifyHandler } from '../../functions/aws/notify-handler';
import { createProcessHandler } from '../../functions/aws/process-handler';
import { S3ObjectStore } from '../../functions/aws/s3-object-store';
import { S3UrlSigner } from '../../functions/aws/s3-url-signer';
import { systemClock } from '../../shared/clock';
import { loadConfig } from '../../shared/config';
import { EVENT_TYPES, parseCompletionEvent } from '../../shared/events';
import { SharpImageProcessor } from '../../shared/image/sharp-image-processor';
import { silentLogger } from '../../shared/logger';
import { CircuitBreaker } from '../../shared/resilience';
import { MemoryEventPublisher } from '../../shared/testing/fakes';
import { startLocalS3, type LocalS3, type S3rverEvent } from '../servers/s3';

jest.setTimeout(60_000);

const ORIGINALS = 'pixelpipe-originals';
const VARIANTS = 'pixelpipe-variants';
const ID = '00000000-0000-4000-8000-0000000ca5cb';
const KEY = `originals/alice/${ID}`;

let s3: LocalS3;
beforeAll(async () => {
  s3 = await startLocalS3([ORIGINALS, VARIANTS]);
});
afterAll(async () => {
  await s3?.close();
});

/** The record s3rver emitted for `key`, as S3 delivers it to Lambda (source set; our keys need no encoding). */
function lambdaEvent(bucket: string, key: string, eventPrefix: string): { Records: S3rverEvent['Records'] } {
  const record = s3.events
    .flatMap((e) => e.Records)
    .filter((r) => r.s3.bucket.name === bucket && r.s3.object.key === key && r.eventName.startsWith(eventPrefix))
    .pop();
  if (!record) throw new Error(`s3rver emitted no ${eventPrefix} record for ${bucket}/${key}`);
  return { Records: [{ ...record, eventSource: 'aws:s3' }] };
}

test('upload → process → notify → GET /images/{id} URLs fetch → DELETE → deleted event → nothing left under the prefixes', async () => {
  const config = loadConfig({
    PIXELPIPE_AUTH_MODE: 'anonymous',
    PIXELPIPE_WEBP_EFFORT: '0',
    PIXELPIPE_ORIGINALS_BUCKET: ORIGINALS,
    PIXELPIPE_VARIANTS_BUCKET: VARIANTS,
  });
  const policy = {
    retry: { attempts: 2, baseDelayMs: 5, maxDelayMs: 10 },
    breaker: new CircuitBreaker('cascade-s3', { failureThreshold: 100, openMs: 1000 }),
    timeoutMs: 5000,
  };
  const store = new S3ObjectStore(s3.client(), { policy });
  const publisher = new MemoryEventPublisher();
  const deps = { store, publisher, clock: systemClock, config, logger: silentLogger };
  const processHandler = createProcessHandler({ ...deps, processor: new SharpImageProcessor() });
  const notifyHandler = createNotifyHandler(deps);
  const cascadeHandler = createCascadeHandler(deps);

  const body = await sharp({ create: { width: 640, height: 480, channels: 3, background: '#aa6633' } })
    .jpeg()
    .toBuffer();
  await store.put(ORIGINALS, KEY, body, { contentType: 'image/jpeg' });
  expect((await processHandler(lambdaEvent(ORIGINALS, KEY, 'ObjectCreated:'))).outcomes).toMatchObject([{ status: 'processed' }]);
  await notifyHandler(lambdaEvent(VARIANTS, `manifests/${ID}.json`, 'ObjectCreated:'));
  const derived = async () => {
    const keys: string[] = [];
    for (const prefix of [`variants/${ID}/`, `manifests/${ID}`, `state/${ID}/`]) keys.push(...(await store.list(VARIANTS, prefix)).items.map((o) => o.key));
    return keys;
  };
  expect((await derived()).length).toBeGreaterThan(1);

  // The images API as the owner sees it (authentication has its own tests; here the caller is alice).
  const images = createImagesHandler({
    store,
    signer: S3UrlSigner.fromClient(s3.client()),
    config,
    logger: silentLogger,
    authenticator: { authenticate: () => Promise.resolve({ subject: 'alice', anonymous: false }) },
  });
  const api = (method: string, path: string) =>
    images({ version: '2.0', rawPath: path, headers: {}, requestContext: { http: { method, path } } }, { getRemainingTimeInMillis: () => 10_000 });
  const got = await api('GET', `/images/${ID}`);
  expect(got.statusCode).toBe(200);
  const manifest = JSON.parse(got.body ?? '') as { variants: Array<{ name: string; format: string; width: number; height: number; url: string }> };
  expect(manifest.variants.length).toBeGreaterThan(1);
  expect(manifest.variants.filter((x) => x.name === 'thumb').length).toBeGreaterThan(0);
  for (const v of manifest.variants.filter((x) => x.name === 'thumb')) {
    const res = await fetch(v.url);
    expect(res.status).toBe(200);
    const meta = await sharp(Buffer.from(await res.arrayBuffer())).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual([v.format === 'jpeg' ? 'jpeg' : v.format, v.width, v.height]);
  }
  const listed = JSON.parse((await api('GET', '/images')).body ?? '') as { images: Array<{ id: string; status: string }> };
  expect(listed.images).toMatchObject([{ id: ID, status: 'processed' }]);
  expect((await api('DELETE', `/images/${ID}`)).statusCode).toBe(202);
  expect(await store.head(ORIGINALS, KEY)).toBeNull();
  const removed = lambdaEvent(ORIGINALS, KEY, 'ObjectRemoved:');
  expect(removed.Records[0].eventName).toBe('ObjectRemoved:Delete');
  // The process handler ignores removals; the cascade handler ignores creations.
  await expect(processHandler(removed)).resolves.toMatchObject({ outcomes: [{ status: 'ignored', reason: 'not_object_created' }] });
  await expect(cascadeHandler(lambdaEvent(ORIGINALS, KEY, 'ObjectCreated:'))).resolves.toMatchObject({
    outcomes: [{ status: 'ignored', reason: 'not_object_removed' }],
  });
  await expect(cascadeHandler(removed)).resolves.toMatchObject({ outcomes: [{ status: 'deleted', imageId: ID }] });
  // Lambda's async retry may deliver the same record again: harmless.
  await expect(cascadeHandler(removed)).resolves.toMatchObject({ outcomes: [{ status: 'deleted', imageId: ID }] });

  expect(await derived()).toEqual([]);
  expect((await api('GET', `/images/${ID}`)).statusCode).toBe(404);
  const events = publisher.messages.map((m) => parseCompletionEvent(m.body));
  expect(events.map((e) => e.type)).toEqual([EVENT_TYPES.processed, EVENT_TYPES.deleted, EVENT_TYPES.deleted]);
  expect(events[1].id).toBe(events[2].id);
  expect(publisher.messages[1].attributes).toEqual({ type: EVENT_TYPES.deleted, imageId: ID, owner: 'alice', status: 'deleted' });
});

test('a delete while processing: the cascade waits for the lease (retryable), the processor deletes nothing, the retried cascade leaves nothing', async () => {
  const config = loadConfig({
    PIXELPIPE_AUTH_MODE: 'anonymous',
    PIXELPIPE_WEBP_EFFORT: '0',
    PIXELPIPE_ORIGINALS_BUCKET: ORIGINALS,
    PIXELPIPE_VARIANTS_BUCKET: VARIANTS,
  });
  const policy = {
    retry: { attempts: 2, baseDelayMs: 5, maxDelayMs: 10 },
    breaker: new CircuitBreaker('race-s3', { failureThreshold: 100, openMs: 1000 }),
    timeoutMs: 5000,
  };
  const id = '00000000-0000-4000-8000-0000000ace01';
  const key = `originals/alice/${id}`;
  const plain = new S3ObjectStore(s3.client(), { policy });
  const publisher = new MemoryEventPublisher();
  const deps = { store: plain, publisher, clock: systemClock, config, logger: silentLogger };
  const cascadeHandler = createCascadeHandler(deps);
  let busy: unknown;
  const deletes: string[] = [];
  /** The processor's store: after its first variant is written, the user deletes the original and S3 notifies the cascade. */
  class RacingStore extends S3ObjectStore {
    override async put(...args: Parameters<S3ObjectStore['put']>) {
      const info = await super.put(...args);
      if (busy === undefined && args[1].startsWith(`variants/${id}/`)) {
        await plain.delete(ORIGINALS, key);
        // s3rver emits its notification right after answering the delete.
        for (let i = 0; i < 200 && !s3.events.some((e) => e.Records.some((r) => r.s3.object.key === key && r.eventName.startsWith('ObjectRemoved:'))); i++) {
          await new Promise((r) => setTimeout(r, 10));
        }
        busy = await cascadeHandler(lambdaEvent(ORIGINALS, key, 'ObjectRemoved:')).catch((err: unknown) => err);
      }
      return info;
    }
    override async delete(...args: Parameters<S3ObjectStore['delete']>) {
      deletes.push(args[1]);
      return super.delete(...args);
    }
  }
  const processHandler = createProcessHandler({ ...deps, store: new RacingStore(s3.client(), { policy }), processor: new SharpImageProcessor() });
  const notifyHandler = createNotifyHandler(deps);

  const body = await sharp({ create: { width: 320, height: 240, channels: 3, background: '#33aa66' } })
    .jpeg()
    .toBuffer();
  await plain.put(ORIGINALS, key, body, { contentType: 'image/jpeg' });
  await expect(processHandler(lambdaEvent(ORIGINALS, key, 'ObjectCreated:'))).resolves.toMatchObject({ outcomes: [{ status: 'processed' }] });
  expect(busy).toMatchObject({ code: 'image_busy', retryable: true });
  expect(deletes).toEqual([]);
  // The manifest's notification arrives after the deletion: not announced.
  await notifyHandler(lambdaEvent(VARIANTS, `manifests/${id}.json`, 'ObjectCreated:'));
  // Lambda's retry of the deletion, after the attempt released its lease.
  await expect(cascadeHandler(lambdaEvent(ORIGINALS, key, 'ObjectRemoved:'))).resolves.toMatchObject({ outcomes: [{ status: 'deleted', imageId: id }] });
  const left: string[] = [];
  for (const prefix of [`variants/${id}/`, `manifests/${id}`, `state/${id}/`]) left.push(...(await plain.list(VARIANTS, prefix)).items.map((o) => o.key));
  expect(left).toEqual([]);
  expect(publisher.messages.map((m) => parseCompletionEvent(m.body).type)).toEqual([EVENT_TYPES.deleted]);
});
