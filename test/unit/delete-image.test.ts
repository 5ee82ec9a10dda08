/**
 * The delete cascade on in-memory fakes: what it removes, what it must leave (an overwrite's new
 * generation), redelivery, the race with a running processor and notifier, and its deadline.
 */
import sharp from 'sharp';
import { loadConfig, type PixelpipeConfig } from '../../shared/config';
import { EVENT_TYPES, parseCompletionEvent } from '../../shared/events';
import { SharpImageProcessor } from '../../shared/image/sharp-image-processor';
import { createLogger } from '../../shared/logger';
import type { ObjectStore, PutOptions } from '../../shared/ports';
import { FixedClock, MemoryEventPublisher } from '../../shared/testing/fakes';
import { testInvocation } from '../../shared/testing/invocation';
import { MemoryObjectStore } from '../../shared/testing/memory-object-store';
import { deleteImage, type DeleteDeps } from '../../shared/usecases/delete-image';
import { notifyCompletion } from '../../shared/usecases/notify-completion';
import { processImage } from '../../shared/usecases/process-image';
import { FaultyStore } from '../support/faulty-store';

const ID = '00000000-0000-4000-8000-00000000dead';
const KEY = `originals/alice/${ID}`;
const processor = new SharpImageProcessor();
let jpeg: Buffer;
beforeAll(async () => {
  jpeg = await sharp({ create: { width: 320, height: 240, channels: 3, background: { r: 200, g: 80, b: 40 } } })
    .jpeg()
    .toBuffer();
});

/** Wraps a store so a test can run something right after a given put (the delete, mid-processing). */
class SteppedStore extends MemoryObjectStore {
  afterPut?: (key: string) => Promise<void>;
  override async put(bucket: string, key: string, body: Buffer, options: PutOptions) {
    const info = await super.put(bucket, key, body, options);
    const hook = this.afterPut;
    if (hook) await hook(key);
    return info;
  }
}

function setup(store: MemoryObjectStore = new MemoryObjectStore()) {
  const config: PixelpipeConfig = loadConfig({ PIXELPIPE_AUTH_MODE: 'anonymous', PIXELPIPE_WEBP_EFFORT: '0', PIXELPIPE_PLACEHOLDER: 'false' });
  const publisher = new MemoryEventPublisher();
  const clock = new FixedClock();
  const deps: DeleteDeps = { store, publisher, clock, config };
  const upload = () =>
    store.put(config.buckets.originals, KEY, jpeg, { contentType: 'image/jpeg', metadata: { 'pixelpipe-trace': '4bf92f3577b34da6a3ce929d0e0e4736' } });
  const processDeps = { store, processor, clock, config };
  const processed = async () => {
    const info = await upload();
    const out = await processImage(processDeps, testInvocation(), { bucket: info.bucket, key: KEY, generation: info.generation });
    expect(out.status).toBe('processed');
    return info;
  };
  const derived = () => store.keys(config.buckets.variants).filter((k) => k.includes(ID));
  const notify = () => notifyCompletion({ store, publisher, config }, testInvocation(), { bucket: config.buckets.variants, key: `manifests/${ID}.json` });
  const types = () => publisher.messages.map((m) => parseCompletionEvent(m.body).type);
  return { config, store, publisher, deps, processDeps, upload, processed, derived, notify, types };
}

describe('deleteImage', () => {
  test("removes every variant, the manifest and the state objects, then publishes a deleted event with the image's attributes", async () => {
    const { config, store, deps, publisher, processed, derived } = setup();
    const info = await processed();
    await store.put(config.buckets.variants, `state/${ID}/${info.generation}.attempts`, Buffer.from('1'), { contentType: 'text/plain' });
    // Another image's outputs share the bucket and must survive.
    await store.put(config.buckets.variants, 'variants/00000000-0000-4000-8000-00000000beef/thumb.webp', Buffer.from('x'), { contentType: 'image/webp' });
    expect(derived().length).toBeGreaterThanOrEqual(3);
    await store.delete(config.buckets.originals, KEY);

    const when = new Date('2026-03-01T10:00:00.000Z');
    const out = await deleteImage(deps, testInvocation(), { bucket: info.bucket, key: KEY, generation: info.generation, eventTime: when });

    expect(out).toMatchObject({ status: 'deleted', imageId: ID });
    expect(derived()).toEqual([]);
    expect(store.keys(config.buckets.variants)).toEqual(['variants/00000000-0000-4000-8000-00000000beef/thumb.webp']);
    expect(publisher.messages).toHaveLength(1);
    expect(publisher.messages[0].attributes).toEqual({ type: EVENT_TYPES.deleted, imageId: ID, owner: 'alice', status: 'deleted' });
    const event = parseCompletionEvent(publisher.messages[0].body);
    expect(event).toMatchObject({
      type: 'pixelpipe.image.deleted.v1',
      subject: ID,
      time: when.toISOString(),
      traceparent: expect.stringMatching(/^00-4bf92f3577b34da6a3ce929d0e0e4736-/) as string,
      data: {
        id: ID,
        owner: 'alice',
        status: 'deleted',
        source: { bucket: info.bucket, key: KEY, generation: info.generation },
        deletedAt: when.toISOString(),
      },
    });
  });

  test('lists in bounded pages and clears an image with more objects than one page', async () => {
    const { config, store, deps } = setup();
    for (let i = 0; i < 1203; i++) {
      await store.put(config.buckets.variants, `state/${ID}/${String(i).padStart(5, '0')}.attempts`, Buffer.from('1'), { contentType: 'text/plain' });
    }
    await deleteImage(deps, testInvocation(), { bucket: config.buckets.originals, key: KEY, generation: '1' });
    expect(store.keys(config.buckets.variants)).toEqual([]);
    const lists = store.calls.filter((c) => c.op === 'list');
    expect(lists.length).toBeGreaterThanOrEqual(3);
  });

  test('an overwrite leaves only the new generation and its outputs', async () => {
    const { config, store, deps, publisher, upload, processed, processDeps, derived } = setup();
    const old = await processed();
    const fresh = await upload();
    await processImage(processDeps, testInvocation(), { bucket: fresh.bucket, key: KEY, generation: fresh.generation });
    const before = derived();

    // GCS says which generation replaced the object; a platform that does not still leaves a live original.
    const overwritten = await deleteImage(deps, testInvocation(), {
      bucket: old.bucket,
      key: KEY,
      generation: old.generation,
      overwrittenByGeneration: fresh.generation,
    });
    const stale = await deleteImage(deps, testInvocation(), { bucket: old.bucket, key: KEY, generation: old.generation });

    expect(overwritten).toEqual({ status: 'ignored', reason: 'overwritten' });
    expect(stale).toEqual({ status: 'ignored', reason: 'original_exists' });
    expect(derived()).toEqual(before);
    const manifest = JSON.parse((await store.get(config.buckets.variants, `manifests/${ID}.json`)).body.toString()) as { source: { generation: string } };
    expect(manifest.source.generation).toBe(fresh.generation);
    expect(publisher.messages).toEqual([]);
  });

  test('a redelivered deletion succeeds again with the same event id; an unversioned one is identified by its sequencer', async () => {
    const { config, store, deps, publisher, processed, derived } = setup();
    const info = await processed();
    await store.delete(config.buckets.originals, KEY);
    const event = { bucket: info.bucket, key: KEY, generation: info.generation, eventTime: new Date('2026-03-01T10:00:00Z') };
    const first = await deleteImage(deps, testInvocation(), event);
    const second = await deleteImage(deps, testInvocation(), event);
    expect(first.status === 'deleted' && second.status === 'deleted' && second.eventId).toBe(first.status === 'deleted' && first.eventId);
    expect(derived()).toEqual([]);

    const s3 = { bucket: info.bucket, key: KEY, sequencer: '0055AED6DCD90281E5', eventTime: new Date('2026-03-01T10:00:00Z') };
    const a = await deleteImage(deps, testInvocation(), s3);
    const b = await deleteImage(deps, testInvocation(), s3);
    const c = await deleteImage(deps, testInvocation(), { ...s3, sequencer: '0055AED6DCD90281E6' });
    const ids = [a, b, c].map((o) => (o.status === 'deleted' ? o.eventId : o.status));
    expect(ids[0]).toBe(ids[1]);
    expect(ids[2]).not.toBe(ids[0]);
    expect(publisher.messages).toHaveLength(5);
  });

  test('keys outside the originals prefix are not cascaded', async () => {
    const { config, deps, publisher } = setup();
    await expect(deleteImage(deps, testInvocation(), { bucket: config.buckets.variants, key: `manifests/${ID}.json` })).resolves.toEqual({
      status: 'ignored',
      reason: 'outside_originals',
    });
    await expect(deleteImage(deps, testInvocation(), { bucket: config.buckets.originals, key: `variants/${ID}/thumb.webp` })).resolves.toEqual({
      status: 'ignored',
      reason: 'outside_originals',
    });
    expect(publisher.messages).toEqual([]);
  });
});

describe('a delete racing a running processor', () => {
  test.each([
    ['after the first variant is written', (key: string) => key.startsWith('variants/')],
    ['right after the manifest is written', (key: string) => key.startsWith('manifests/')],
  ])('deleted %s: the cascade waits for the lease, then nothing is left and no processed event follows', async (_when, trigger) => {
    const store = new SteppedStore();
    const { config, deps, upload, processDeps, derived, notify, types } = setup(store);
    const info = await upload();
    const deletion = { bucket: info.bucket, key: KEY, generation: info.generation };
    let busy: unknown;
    store.afterPut = async (key) => {
      if (busy || !trigger(key)) return;
      await store.delete(config.buckets.originals, KEY);
      busy = await deleteImage(deps, testInvocation(), deletion).catch((err: unknown) => err);
    };

    const out = await processImage(processDeps, testInvocation(), deletion);
    // The first delivery of the deletion found the lease and asked for a retry, having removed nothing.
    expect(busy).toMatchObject({ code: 'image_busy', retryable: true });
    expect(types()).toEqual([]);
    // The processor finished normally, with no delete of its own.
    expect(out.status).toBe('processed');
    expect(store.calls.filter((c) => c.op === 'delete' && c.bucket === config.buckets.variants)).toEqual([]);
    // The notification for the manifest write arrives, then the platform's retry of the deletion.
    await expect(notify()).resolves.toEqual({ status: 'ignored', reason: 'original_gone' });
    await expect(deleteImage(deps, testInvocation(), deletion)).resolves.toMatchObject({ status: 'deleted' });
    expect(derived()).toEqual([]);
    expect(types()).toEqual([EVENT_TYPES.deleted]);
  });

  test('a deletion cascaded before an attempt took its lease: the attempt finds the original gone and leaves only its released lease', async () => {
    const { config, store, deps, upload, processDeps, derived, types } = setup();
    const info = await upload();
    const deletion = { bucket: info.bucket, key: KEY, generation: info.generation };
    await store.delete(config.buckets.originals, KEY);
    await expect(deleteImage(deps, testInvocation(), deletion)).resolves.toMatchObject({ status: 'deleted' });
    // A late (redelivered) processing event for the deleted generation.
    await expect(processImage(processDeps, testInvocation(), deletion)).resolves.toEqual({ status: 'ignored', reason: 'object_gone' });
    const lease = `state/${ID}/${info.generation}.lease`;
    expect(derived()).toEqual([lease]);
    expect(JSON.parse((await store.get(config.buckets.variants, lease)).body.toString())).toEqual({ until: 0 });
    expect(types()).toEqual([EVENT_TYPES.deleted]);
  });

  test('the lease of an attempt that died ends with its deadline: the next delivery of the deletion proceeds', async () => {
    const { config, store, deps, processed, derived, types } = setup();
    const info = await processed();
    const lease = `state/${ID}/${info.generation}.lease`;
    const inv = testInvocation();
    await store.put(config.buckets.variants, lease, Buffer.from(JSON.stringify({ until: inv.now() + 60_000 })), { contentType: 'application/json' });
    await store.delete(config.buckets.originals, KEY);
    const deletion = { bucket: info.bucket, key: KEY, generation: info.generation };
    await expect(deleteImage(deps, inv, deletion)).rejects.toMatchObject({ code: 'image_busy' });
    await store.put(config.buckets.variants, lease, Buffer.from(JSON.stringify({ until: inv.now() - 1 })), { contentType: 'application/json' });
    await expect(deleteImage(deps, inv, deletion)).resolves.toMatchObject({ status: 'deleted' });
    expect(derived()).toEqual([]);
    expect(types()).toEqual([EVENT_TYPES.deleted]);
  });

  test('a deletion older than the event-age bound no longer waits for a lease', async () => {
    const { config, store, deps, processed, derived } = setup();
    const info = await processed();
    const inv = testInvocation();
    await store.put(config.buckets.variants, `state/${ID}/other.lease`, Buffer.from(JSON.stringify({ until: inv.now() + 60_000 })), {
      contentType: 'application/json',
    });
    await store.delete(config.buckets.originals, KEY);
    const old = new Date(deps.clock.now().getTime() - (config.retry.maxEventAgeSeconds + 1) * 1000);
    await expect(deleteImage(deps, inv, { bucket: info.bucket, key: KEY, generation: info.generation, eventTime: old })).resolves.toMatchObject({
      status: 'deleted',
    });
    expect(derived()).toEqual([]);
  });

  test('a manifest notified after its original was deleted (cascade not yet run) is not announced', async () => {
    const { config, store, deps, processed, derived, notify, types } = setup();
    const info = await processed();
    await store.delete(config.buckets.originals, KEY);
    await expect(notify()).resolves.toEqual({ status: 'ignored', reason: 'original_gone' });
    await deleteImage(deps, testInvocation(), { bucket: info.bucket, key: KEY, generation: info.generation });
    expect(derived()).toEqual([]);
    expect(types()).toEqual([EVENT_TYPES.deleted]);
  });
});

describe('the cascade within its deadline', () => {
  beforeEach(() => jest.useFakeTimers({ now: Date.parse('2026-03-01T10:00:00Z') }));
  afterEach(() => jest.useRealTimers());

  test('a stalled delete fails the invocation as retryable before its deadline, with nothing still running', async () => {
    const faulty = new FaultyStore();
    const config = loadConfig({ PIXELPIPE_AUTH_MODE: 'anonymous', PIXELPIPE_FUNCTION_TIMEOUT_SECONDS: '30', PIXELPIPE_DEADLINE_RESERVE_MS: '2000' });
    await faulty.inner.put(config.buckets.variants, `variants/${ID}/thumb.webp`, Buffer.from('x'), { contentType: 'image/webp' });
    faulty.fault = (op) => (op === 'delete' ? 'hang' : undefined);
    const store: ObjectStore = faulty;
    const inv = testInvocation({ deadlineMs: 30_000, logger: createLogger({ sink: () => undefined }) });
    let settled: { err?: unknown; at: number } | undefined;
    deleteImage({ store, publisher: new MemoryEventPublisher(), clock: new FixedClock(), config }, inv, { bucket: config.buckets.originals, key: KEY }).then(
      () => (settled = { at: Date.now() }),
      (err: unknown) => (settled = { err, at: Date.now() }),
    );
    for (let t = 0; !settled && t < 120_000; t += 100) await jest.advanceTimersByTimeAsync(100);
    expect(settled?.err).toMatchObject({ retryable: true });
    expect(settled!.at).toBeLessThanOrEqual(inv.deadline - 2000);
    expect(faulty.running()).toEqual([]);
    inv.dispose();
  });
});
