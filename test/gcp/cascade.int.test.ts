/**
 * The GCP delete cascade end to end on the GCS fake: the process, notify, images and cascade handlers
 * with the real GcsObjectStore and GcsUrlSigner, an image uploaded and processed, read through the
 * images API (its signed URLs verified and served by the fake), its original deleted through it, a
 * `google.cloud.storage.object.v1.deleted` CloudEvent (shaped like Google's sample data) delivered, and
 * nothing left under the image's prefixes. Events go to an in-memory publisher (the Pub/Sub adapter
 * has its own emulator tests).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Storage } from '@google-cloud/storage';
import sharp from 'sharp';
import { createCascadeHandler } from '../../functions/gcp/cascade-handler';
import { parseDeletion } from '../../functions/gcp/cloud-events';
import { GcsObjectStore } from '../../functions/gcp/gcs-object-store';
import { GcsUrlSigner } from '../../functions/gcp/gcs-url-signer';
import { credentialsFromJson } from '../../functions/gcp/google-auth';
import { createImagesHandler } from '../../functions/gcp/images-handler';
import { createNotifyHandler } from '../../functions/gcp/notify-handler';
import { createProcessHandler } from '../../functions/gcp/process-handler';
import { systemClock } from '../../shared/clock';
import { loadConfig } from '../../shared/config';
import { EVENT_TYPES, parseCompletionEvent } from '../../shared/events';
import { SharpImageProcessor } from '../../shared/image/sharp-image-processor';
import { silentLogger } from '../../shared/logger';
import { CircuitBreaker } from '../../shared/resilience';
import { MemoryEventPublisher } from '../../shared/testing/fakes';
import { startGcsFake, type GcsFake } from '../servers/gcs-fake';
import { fakeServiceAccount } from '../support/google-fake';

jest.setTimeout(60_000);

const ORIGINALS = 'pixelpipe-originals';
const VARIANTS = 'pixelpipe-variants';
const ID = '00000000-0000-4000-8000-0000000ca5ca';
const KEY = `originals/alice/${ID}`;

describe("GCP cascade: Google's sample deleted-object data", () => {
  test('parses the sample as a deletion with its generation and deletion time', () => {
    const data = JSON.parse(readFileSync(join(__dirname, 'fixtures', 'StorageObjectData-complex.json'), 'utf8')) as Record<string, unknown>;
    expect(parseDeletion({ id: 'x', type: 'google.cloud.storage.object.v1.deleted', data })).toEqual({
      ok: true,
      value: { bucket: 'sample-bucket', key: 'MyFile', generation: '96883251', eventTime: new Date('2020-05-18T09:07:51.799Z') },
    });
  });

  test('an OBJECT_DELETE notification with overwrittenByGeneration is a deletion marked as an overwrite; OBJECT_FINALIZE is not a deletion', () => {
    const notification = (eventType: string, extra: Record<string, string> = {}) => ({
      id: 'n',
      type: 'google.cloud.pubsub.topic.v1.messagePublished',
      data: {
        message: { attributes: { bucketId: ORIGINALS, objectId: KEY, objectGeneration: '5', eventType, eventTime: '2026-03-01T10:00:00.123456Z', ...extra } },
      },
    });
    expect(parseDeletion(notification('OBJECT_DELETE', { overwrittenByGeneration: '6' }))).toMatchObject({
      ok: true,
      value: { bucket: ORIGINALS, key: KEY, generation: '5', overwrittenByGeneration: '6' },
    });
    expect(parseDeletion(notification('OBJECT_FINALIZE'))).toMatchObject({ ok: false, ignored: true });
  });
});

describe('GCP cascade against the GCS fake', () => {
  let fake: GcsFake;
  let storage: Storage;
  const signerAccount = fakeServiceAccount('images@pixelpipe-test.iam.gserviceaccount.com');
  beforeAll(async () => {
    fake = await startGcsFake({ buckets: [ORIGINALS, VARIANTS], signers: { [signerAccount.email]: signerAccount.publicKey } });
    storage = new Storage({ apiEndpoint: fake.url, projectId: 'pixelpipe-test', retryOptions: { autoRetry: false } });
  });
  afterAll(async () => {
    await fake?.close();
  });

  test('upload → process → notify → GET /images/{id} URLs fetch → DELETE → deleted event → nothing left under the prefixes', async () => {
    const config = loadConfig({
      PIXELPIPE_AUTH_MODE: 'anonymous',
      PIXELPIPE_WEBP_EFFORT: '0',
      PIXELPIPE_ORIGINALS_BUCKET: ORIGINALS,
      PIXELPIPE_VARIANTS_BUCKET: VARIANTS,
    });
    const policy = {
      retry: { attempts: 2, baseDelayMs: 5, maxDelayMs: 10 },
      breaker: new CircuitBreaker('cascade-test', { failureThreshold: 100, openMs: 1000 }),
      timeoutMs: 5000,
    };
    const store = new GcsObjectStore(storage, { policy });
    const publisher = new MemoryEventPublisher();
    const deps = { store, publisher, clock: systemClock, config, logger: silentLogger };
    const processHandler = createProcessHandler({ ...deps, processor: new SharpImageProcessor() });
    const notifyHandler = createNotifyHandler(deps);
    const cascadeHandler = createCascadeHandler(deps);

    const body = await sharp({ create: { width: 640, height: 480, channels: 3, background: '#3366aa' } })
      .jpeg()
      .toBuffer();
    const original = await store.put(ORIGINALS, KEY, body, { contentType: 'image/jpeg' });
    await processHandler({
      id: 'f1',
      type: 'google.cloud.storage.object.v1.finalized',
      data: { bucket: ORIGINALS, name: KEY, generation: original.generation },
    });
    await notifyHandler({
      id: 'f2',
      type: 'google.cloud.storage.object.v1.finalized',
      data: { bucket: VARIANTS, name: `manifests/${ID}.json`, generation: '1' },
    });
    const derived = () => fake.listObjects(VARIANTS).filter((o) => o.name.includes(ID));
    expect(derived().length).toBeGreaterThan(1);

    // The images API as the owner sees it (authentication has its own tests; here the caller is alice).
    const images = createImagesHandler({
      store,
      signer: new GcsUrlSigner(credentialsFromJson(signerAccount.keyJson, 'test key'), { host: fake.url }),
      config,
      logger: silentLogger,
      authenticator: { authenticate: () => Promise.resolve({ subject: 'alice', anonymous: false }) },
    });
    const api = async (method: string, path: string) => {
      const out = { status: 0, body: '' };
      const res = {
        writableFinished: false,
        once: () => res,
        status: (s: number) => ((out.status = s), res),
        set: () => res,
        send: (b: string) => ((out.body = b), res),
      };
      await images({ method, url: path, originalUrl: path, headers: {} } as never, res as never);
      return out;
    };
    const got = await api('GET', `/images/${ID}`);
    expect(got.status).toBe(200);
    const manifest = JSON.parse(got.body) as { variants: Array<{ name: string; format: string; width: number; height: number; url: string }> };
    expect(manifest.variants.filter((x) => x.name === 'thumb').length).toBeGreaterThan(0);
    for (const v of manifest.variants.filter((x) => x.name === 'thumb')) {
      const res = await fetch(v.url);
      expect(res.status).toBe(200);
      const meta = await sharp(Buffer.from(await res.arrayBuffer())).metadata();
      expect([meta.format, meta.width, meta.height]).toEqual([v.format, v.width, v.height]);
    }
    expect(JSON.parse((await api('GET', '/images')).body)).toMatchObject({ images: [{ id: ID, status: 'processed' }] });

    const resource = fake.getObject(ORIGINALS, KEY)!.resource;
    expect((await api('DELETE', `/images/${ID}`)).status).toBe(202);
    expect(fake.getObject(ORIGINALS, KEY)).toBeUndefined();
    const deleted = {
      id: 'd1',
      type: 'google.cloud.storage.object.v1.deleted',
      time: '2026-03-01T10:00:00.000Z',
      data: { ...resource, timeDeleted: '2026-03-01T10:00:00.000Z' },
    };
    await cascadeHandler(deleted);
    // Eventarc redelivers at least once: harmless.
    await cascadeHandler(deleted);

    expect(derived()).toEqual([]);
    expect((await api('GET', `/images/${ID}`)).status).toBe(404);
    const events = publisher.messages.map((m) => parseCompletionEvent(m.body));
    expect(events.map((e) => e.type)).toEqual([EVENT_TYPES.processed, EVENT_TYPES.deleted, EVENT_TYPES.deleted]);
    expect(events[1].id).toBe(events[2].id);
    expect(events[1]).toMatchObject({
      subject: ID,
      time: '2026-03-01T10:00:00.000Z',
      data: { source: { bucket: ORIGINALS, key: KEY, generation: original.generation } },
    });
  });
});
