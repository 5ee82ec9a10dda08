/**
 * One end-to-end run of the GCP pipeline on this machine, wired the way it is deployed:
 *
 *   browser ──POST──▶ upload fn ──V4 PUT target──▶ browser ──signed PUT──▶ GCS (fake, verifies V4)
 *   GCS finalize (originals/) ──storage CloudEvent──▶ process fn ──variants + manifest──▶ GCS
 *   GCS finalize (manifests/) ──GCS notification message──▶ Pub/Sub topic "manifests" (emulator)
 *       ──real push subscription──▶ notify fn ──completion event──▶ topic "pixelpipe-events" ──pull──▶ us
 *
 * The fake's `onFinalize` stands in for Eventarc (originals) and for the bucket's Pub/Sub notification
 * configuration (manifests), which no local server provides.
 */
import { join } from 'node:path';
import { PubSub, type Message, type Subscription } from '@google-cloud/pubsub';
import sharp from 'sharp';
import type { ImageOutcomeEvent } from '../../shared/events';
import { parseOutcomeEvent } from '../support/events';
import { startGcsFake, type GcsFake, type GcsObjectResource } from '../servers/gcs-fake';
import { pubsubEmulatorMissing, startPubsubEmulator, type PubsubEmulator } from '../servers/pubsub-emulator';
import { applyEnv, functionEnv, loadFunction, makeServiceAccount, sendCloudEvent, serve, waitFor, type ServedFunction } from './gcp-test-kit';

jest.setTimeout(180_000);

const GCP = join(__dirname, '..', '..', 'functions', 'gcp');
const ORIGINALS = 'pixelpipe-originals';
const VARIANTS = 'pixelpipe-variants';
const PROJECT = 'pixelpipe-test';
const missing = pubsubEmulatorMissing();
const describeIf = missing && process.env.CI !== 'true' ? describe.skip : describe;
if (missing && process.env.CI !== 'true') console.warn(`\n*** SKIPPING GCP end-to-end test: ${missing} ***\n`);

describeIf('GCP pipeline end to end (gcs-fake + Pub/Sub emulator + functions-framework)', () => {
  const sa = makeServiceAccount();
  let fake: GcsFake;
  let emulator: PubsubEmulator;
  let restoreEnv: () => void = () => undefined;
  let upload: ServedFunction;
  let processFn: ServedFunction;
  let notify: ServedFunction;
  let pubsub: PubSub;
  let events: Subscription;
  const received: Message[] = [];
  const triggerErrors: string[] = [];

  beforeAll(async () => {
    fake = await startGcsFake({ buckets: [ORIGINALS, VARIANTS], signers: { [sa.email]: sa.publicKey } });
    emulator = (await startPubsubEmulator({ projectId: PROJECT }))!;
    restoreEnv = applyEnv(
      functionEnv({
        storageUrl: fake.url,
        pubsubHost: emulator.host,
        keyFile: sa.keyFile,
        extra: { PIXELPIPE_PROFILES: JSON.stringify({ avatar: { variants: [{ name: 'square', width: 128, height: 128, fit: 'cover', formats: ['webp'] }] } }) },
      }),
    );
    upload = await serve(loadFunction(join(GCP, 'upload'), 'upload'));
    processFn = await serve(loadFunction(join(GCP, 'process'), 'process'));
    notify = await serve(loadFunction(join(GCP, 'notify'), 'notify'));

    pubsub = new PubSub({ projectId: PROJECT });
    const [manifests] = await pubsub.createTopic('manifests');
    // The path names the topic so functions-framework can turn the push body into a messagePublished event.
    await manifests.createSubscription('manifests-to-notify', {
      pushConfig: { pushEndpoint: `${notify.url}/projects/${PROJECT}/topics/manifests` },
      ackDeadlineSeconds: 60,
    });
    const [eventsTopic] = await pubsub.createTopic('pixelpipe-events');
    [events] = await eventsTopic.createSubscription('events-pull');
    events.on('message', (m: Message) => {
      received.push(m);
      m.ack();
    });

    fake.setOnFinalize(async (object: GcsObjectResource) => {
      if (object.bucket === ORIGINALS && object.name.startsWith('originals/')) {
        // Eventarc: deliver the storage event, retrying on 5xx like the platform would.
        for (let attempt = 1; attempt <= 3; attempt++) {
          const res = await sendCloudEvent(
            processFn.url,
            {
              type: 'google.cloud.storage.object.v1.finalized',
              source: `//storage.googleapis.com/projects/_/buckets/${ORIGINALS}`,
              subject: `objects/${object.name}`,
              data: object,
            },
            'structured',
          );
          if (res.status < 300) return;
          triggerErrors.push(`process answered ${res.status} (attempt ${attempt})`);
        }
      } else if (object.bucket === VARIANTS && object.name.startsWith('manifests/')) {
        // The bucket's Pub/Sub notification (prefix manifests/, OBJECT_FINALIZE, JSON_API_V1).
        await pubsub.topic('manifests').publishMessage({
          data: Buffer.from(JSON.stringify(object)),
          attributes: {
            bucketId: object.bucket,
            objectId: object.name,
            objectGeneration: object.generation,
            eventType: 'OBJECT_FINALIZE',
            eventTime: object.updated,
            payloadFormat: 'JSON_API_V1',
            notificationConfig: `projects/_/buckets/${VARIANTS}/notificationConfigs/1`,
          },
        });
      }
    });
  }, 180_000);

  afterAll(async () => {
    await events?.close();
    await pubsub?.close();
    await upload?.close();
    await processFn?.close();
    await notify?.close();
    await emulator?.stop();
    await fake?.close();
    restoreEnv();
  });

  test('upload → signed PUT → process → manifest → push → notify → processed event with variant sizes', async () => {
    const t0 = Date.now();
    const photo = await sharp(join(__dirname, '..', '..', 'samples', 'landscape.jpg'))
      .resize(2000, 1500, { fit: 'fill' })
      .jpeg({ quality: 85 })
      .toBuffer();
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';

    const res = await fetch(upload.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
      body: JSON.stringify({ contentType: 'image/jpeg', size: photo.length, filename: 'holiday.jpg' }),
      signal: AbortSignal.timeout(30_000),
    });
    expect(res.status).toBe(201);
    const grant = (await res.json()) as { id: string; key: string; upload: { method: 'PUT'; url: string; headers: Record<string, string> } };

    // A tampered request is refused by the storage server before the real one goes through.
    const tampered = await fetch(grant.upload.url, { method: 'PUT', headers: { ...grant.upload.headers, 'content-type': 'image/png' }, body: photo });
    expect(tampered.status).toBe(403);
    const put = await fetch(grant.upload.url, { method: 'PUT', headers: grant.upload.headers, body: photo });
    expect(put.status).toBe(200);

    const msg = await waitFor(() => received.find((m) => m.attributes.imageId === grant.id), 120_000, 'the completion event');
    const event: ImageOutcomeEvent = parseOutcomeEvent(msg);
    expect(triggerErrors).toEqual([]);
    expect(fake.finalizeErrors).toEqual([]);
    expect(msg.attributes).toMatchObject({
      type: 'pixelpipe.image.processed.v1',
      imageId: grant.id,
      owner: 'anonymous',
      status: 'processed',
      profile: 'default',
    });
    expect(event).toMatchObject({ type: 'pixelpipe.image.processed.v1', subject: grant.id, source: '//pixelpipe' });
    expect(event.traceparent).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
    const m = event.data;
    expect(m.source).toMatchObject({ key: grant.key, width: 2000, height: 1500, filename: 'holiday.jpg', bytes: photo.length });
    const size = (name: string, format: string) => {
      const v = m.variants.find((x) => x.name === name && x.format === format);
      return v && [v.width, v.height];
    };
    expect(size('thumb', 'webp')).toEqual([200, 200]);
    expect(size('thumb', 'jpeg')).toEqual([200, 200]);
    expect(size('small', 'webp')).toEqual([480, 360]);
    expect(size('small', 'jpeg')).toEqual([480, 360]);
    expect(size('medium', 'webp')).toEqual([1024, 768]);
    expect(size('large', 'jpeg')).toEqual([2000, 1500]); // 2048 requested, never enlarged
    expect(size('medium-gray', 'jpeg')).toEqual([1024, 768]);
    // The stored variants are what the event describes.
    for (const v of m.variants) {
      const stored = fake.getObject(VARIANTS, v.key);
      expect(stored).toBeDefined();
      const meta = await sharp(stored!.body).metadata();
      expect([meta.format, meta.width, meta.height]).toEqual([v.format, v.width, v.height]);
    }
    // Exactly one event for this image: the push was acknowledged, not redelivered.
    await new Promise((r) => setTimeout(r, 1000));
    expect(received.filter((x) => x.attributes.imageId === grant.id)).toHaveLength(1);
    console.info(`GCP e2e: upload to completion event in ${Date.now() - t0} ms`);
  });

  test('upload with a profile → pinned in x-goog-meta-pixelpipe-profile → processed with its variants → Pub/Sub profile attribute', async () => {
    const photo = await sharp(join(__dirname, '..', '..', 'samples', 'landscape.jpg'))
      .jpeg({ quality: 80 })
      .toBuffer();
    const res = await fetch(upload.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ contentType: 'image/jpeg', size: photo.length, profile: 'avatar' }),
      signal: AbortSignal.timeout(30_000),
    });
    expect(res.status).toBe(201);
    const grant = (await res.json()) as { id: string; key: string; upload: { method: 'PUT'; url: string; headers: Record<string, string> } };
    expect(grant.upload.headers['x-goog-meta-pixelpipe-profile']).toBe('avatar');
    // The storage server (verifying V4 like GCS) refuses the target with the profile switched.
    const switched = await fetch(grant.upload.url, {
      method: 'PUT',
      headers: { ...grant.upload.headers, 'x-goog-meta-pixelpipe-profile': 'default' },
      body: photo,
    });
    expect(switched.status).toBe(403);
    expect((await fetch(grant.upload.url, { method: 'PUT', headers: grant.upload.headers, body: photo })).status).toBe(200);

    const msg = await waitFor(() => received.find((m) => m.attributes.imageId === grant.id), 120_000, 'the completion event');
    expect(msg.attributes).toMatchObject({ status: 'processed', profile: 'avatar' });
    const m = parseOutcomeEvent(msg).data;
    expect([m.profile, m.variants.map((v) => [v.name, v.format, v.width, v.height])]).toEqual(['avatar', [['square', 'webp', 128, 128]]]);
    const meta = await sharp(fake.getObject(VARIANTS, m.variants[0].key)!.body).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['webp', 128, 128]);
  });
});
