/**
 * Fault: the Pub/Sub broker goes away while a manifest is being announced.
 *
 * The real Pub/Sub emulator, the production `notify` entry (functions/gcp/notify.ts, built from the
 * environment exactly as deployed, default resilience policy) served by functions-framework on
 * 127.0.0.1, and the GCS fake holding the manifest. The emulator is stopped just before the
 * notification is delivered: the function must answer 5xx so the platform keeps the message. Then
 * the emulator comes back on the same port and this test plays the platform, redelivering the very
 * same CloudEvent with bounded exponential backoff until it is accepted. The subscriber must end up
 * with exactly one completion event carrying the deterministic id, even after one more redelivery.
 *
 * "Just before" rather than "during" the publish: killing the JVM takes longer than the notifier's
 * read-then-publish, so a kill timed for mid-publish would really land before or after it at random.
 * A publish that never reached the broker is the case that loses events if mishandled.
 */
import { join } from 'node:path';
import { PubSub, type Message, type Subscription } from '@google-cloud/pubsub';
import { Storage } from '@google-cloud/storage';
import { completionEventId, parseCompletionEvent } from '../../shared/events';
import type { Manifest } from '../../shared/manifest';
import { startGcsFake, type GcsFake } from '../servers/gcs-fake';
import { pubsubEmulatorMissing, startPubsubEmulator, type PubsubEmulator } from '../servers/pubsub-emulator';
import {
  applyEnv,
  functionEnv,
  gcsNotificationData,
  loadFunction,
  makeServiceAccount,
  sendCloudEvent,
  serve,
  waitFor,
  type CloudEventInput,
  type ServedFunction,
} from '../gcp/gcp-test-kit';

jest.setTimeout(150_000);

const GCP = join(__dirname, '..', '..', 'functions', 'gcp');
const ORIGINALS = 'pixelpipe-originals';
const VARIANTS = 'pixelpipe-variants';
const TOPIC = 'pixelpipe-events';
const PROJECT = 'pixelpipe-test';

/** Redelivery budget of the simulated platform (Eventarc / Pub/Sub push retry). */
const MAX_TRIES = 10;
const MAX_REDELIVERY_MS = 30_000;

const missing = pubsubEmulatorMissing();
if (missing && process.env.CI === 'true') throw new Error(`the Pub/Sub emulator is required under CI: ${missing}`);
if (missing) console.warn(`\n*** SKIPPING the Pub/Sub outage fault test: ${missing} ***\n`);
const describeIf = missing ? describe.skip : describe;

describeIf('Pub/Sub outage while the notifier publishes', () => {
  let fake: GcsFake;
  let emulator: PubsubEmulator;
  let fn: ServedFunction;
  let storage: Storage;
  let restoreEnv: () => void = () => undefined;
  const clients: PubSub[] = [];
  const subscriptions: Subscription[] = [];

  beforeAll(async () => {
    const sa = makeServiceAccount();
    fake = await startGcsFake({ buckets: [ORIGINALS, VARIANTS] });
    emulator = (await startPubsubEmulator({ projectId: PROJECT }))!;
    restoreEnv = applyEnv(functionEnv({ storageUrl: fake.url, pubsubHost: emulator.host, keyFile: sa.keyFile }));
    storage = new Storage({ apiEndpoint: fake.url, projectId: PROJECT, retryOptions: { autoRetry: false } });
    fn = await serve(loadFunction(join(GCP, 'notify'), 'notify'));
  }, 120_000);

  afterAll(async () => {
    await fn?.close();
    for (const s of subscriptions) await s.close().catch(() => undefined);
    for (const c of clients) await c.close().catch(() => undefined);
    await emulator?.stop();
    await fake?.close();
    restoreEnv();
  });

  /** Topic + pull subscription on the emulator, and a collector of everything delivered (acked). */
  async function subscribe(name: string): Promise<{ pubsub: PubSub; received: Message[] }> {
    const pubsub = new PubSub({ projectId: PROJECT });
    clients.push(pubsub);
    const topic = pubsub.topic(TOPIC);
    const [exists] = await topic.exists();
    if (!exists) await topic.create();
    const [sub] = await topic.createSubscription(name);
    subscriptions.push(sub);
    const received: Message[] = [];
    sub.on('message', (m: Message) => {
      received.push(m);
      m.ack();
    });
    sub.on('error', () => undefined);
    return { pubsub, received };
  }

  async function writeManifest(id: string): Promise<{ bucket: string; name: string; generation: string; manifest: Manifest }> {
    const manifest: Manifest = {
      schemaVersion: 1,
      id,
      owner: 'alice',
      status: 'processed',
      source: { bucket: ORIGINALS, key: `originals/alice/${id}`, generation: '1700000000000001', bytes: 10 },
      variants: [{ name: 'thumb', format: 'webp', key: `variants/${id}/thumb.webp`, contentType: 'image/webp', width: 200, height: 200, bytes: 5 }],
      placeholder: null,
      bucket: VARIANTS,
      attempts: 1,
      createdAt: '2026-01-01T00:00:00.000Z',
      durationMs: 5,
    };
    const name = `manifests/${id}.json`;
    // The notifier announces only images whose original still exists (the delete cascade reports the rest).
    await storage.bucket(ORIGINALS).file(manifest.source.key).save(Buffer.from('jpeg'), { resumable: false, contentType: 'image/jpeg' });
    await storage.bucket(VARIANTS).file(name).save(JSON.stringify(manifest), { resumable: false, contentType: 'application/json' });
    const { resource } = fake.getObject(VARIANTS, name)!;
    return { bucket: VARIANTS, name, generation: resource.generation, manifest };
  }

  test('5xx while the broker is down; redelivery with backoff after it is back publishes exactly one event with the deterministic id', async () => {
    // functions-framework prints each failed invocation's error: collected here and checked below
    // (every failure must be a retryable one), instead of filling the test output with stacks.
    const crashes: string[] = [];
    const spy = jest.spyOn(console, 'error').mockImplementation((...args: unknown[]) => void crashes.push(args.map(String).join(' ')));
    // Sanity: the wiring works before the outage.
    const before = await subscribe('events-before-outage');
    const warm = await writeManifest('c0ffee00-0000-4000-8000-000000000001');
    const warmRes = await sendCloudEvent(fn.url, notification('warm-1', warm), 'structured');
    expect(warmRes.status).toBeLessThan(300);
    await waitFor(() => before.received.find((m) => m.attributes.imageId === warm.manifest.id), 15_000, 'the pre-outage event');
    for (const s of subscriptions.splice(0)) await s.close();
    await before.pubsub.close();

    // The outage: broker gone before the notification for this manifest arrives.
    const m = await writeManifest('c0ffee00-0000-4000-8000-000000000002');
    const expectedId = completionEventId(m.manifest);
    const event = notification('gcs-notification-42', m);
    await emulator.stop();
    // The platform retries during the outage too: every delivery is refused (5xx), and the repeated
    // failures open the function's circuit breaker (5 consecutive failures, open for 10 s).
    for (let i = 0; i < 3; i++) {
      const t0 = Date.now();
      const down = await sendCloudEvent(fn.url, event, i % 2 ? 'binary' : 'structured');
      console.log(`delivery ${i + 1} with the broker down answered ${down.status} after ${Date.now() - t0} ms`);
      expect(down.status).toBeGreaterThanOrEqual(500);
      // The 500 text is functions-framework's (NODE_ENV is not production here); it names the failure, not a key.
      expect(down.body).not.toContain(m.manifest.id);
    }

    // Back on the same port. The emulator keeps everything in memory, so topic and subscriptions are gone.
    await emulator.restart();
    const probe = new PubSub({ projectId: PROJECT });
    clients.push(probe);
    const [topicSurvived] = await probe.topic(TOPIC).exists();
    expect(topicSurvived).toBe(false);
    console.log(`emulator restarted on ${emulator.host}: it lost its state (topic ${TOPIC} gone); recreating the topic and a subscription`);
    const after = await subscribe('events-after-outage');

    // The platform redelivers the same event (same CloudEvent id) with capped exponential backoff.
    const tries: Array<{ status: number; atMs: number }> = [];
    const start = Date.now();
    let delay = 250;
    for (let i = 0; i < MAX_TRIES && Date.now() - start < MAX_REDELIVERY_MS; i++) {
      const res = await sendCloudEvent(fn.url, event, 'structured');
      tries.push({ status: res.status, atMs: Date.now() - start });
      if (res.status < 300) break;
      await new Promise((r) => setTimeout(r, Math.min(delay, MAX_REDELIVERY_MS - (Date.now() - start))));
      delay = Math.min(delay * 2, 4000);
    }
    console.log(`redeliveries after the restart: ${JSON.stringify(tries)}`);
    expect(tries.at(-1)!.status).toBeLessThan(300);
    expect(tries.length).toBeLessThanOrEqual(MAX_TRIES);
    expect(tries.at(-1)!.atMs).toBeLessThanOrEqual(MAX_REDELIVERY_MS);

    await waitFor(() => after.received.find((msg) => msg.attributes.imageId === m.manifest.id), 15_000, 'the completion event after recovery');
    // One more redelivery after success (an at-least-once platform may do that): same id again.
    const again = await sendCloudEvent(fn.url, event, 'binary');
    expect(again.status).toBeLessThan(300);
    await waitFor(
      () => (after.received.filter((msg) => msg.attributes.imageId === m.manifest.id).length >= 2 ? true : undefined),
      15_000,
      'the re-published event',
    );
    await new Promise((r) => setTimeout(r, 500));

    const mine = after.received.filter((msg) => msg.attributes.imageId === m.manifest.id).map((msg) => parseCompletionEvent(msg));
    expect(mine.every((e) => e.id === expectedId)).toBe(true);
    const deduped = new Map(mine.map((e) => [e.id, e]));
    expect([...deduped.keys()]).toEqual([expectedId]);
    expect(deduped.get(expectedId)).toMatchObject({
      subject: m.manifest.id,
      type: 'pixelpipe.image.processed.v1',
      data: { id: m.manifest.id, status: 'processed' },
    });
    console.log(`subscription received ${mine.length} message(s) for the image, ${deduped.size} after dedupe by event id (${expectedId})`);

    spy.mockRestore();
    expect(crashes.length).toBe(3 + tries.length - 1);
    for (const c of crashes) expect(c).toMatch(/^TransientError: /);
    console.log(`failed invocations (all TransientError): ${crashes.map((c) => c.split('\n')[0]).join(' | ')}`);
  });
});

/** The CloudEvent a GCS → Pub/Sub notification push produces; `id` stays fixed across redeliveries. */
function notification(id: string, object: { bucket: string; name: string; generation: string }): CloudEventInput {
  return {
    id,
    type: 'google.cloud.pubsub.topic.v1.messagePublished',
    source: `//pubsub.googleapis.com/projects/${PROJECT}/topics/pixelpipe-manifests`,
    data: gcsNotificationData(object),
  };
}
