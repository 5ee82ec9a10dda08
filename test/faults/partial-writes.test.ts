/**
 * A variant write fails halfway through an image: the invocation must fail (retryable) without
 * leaving writes running behind it. On Lambda a function is frozen once its handler settles and thawed
 * for the next invocation, so a write still running would resume inside someone else's invocation
 * (and steal the breaker's half-open trial there); Cloud Run throttles the CPU after the response.
 */
import { loadConfig } from '../../shared/config';
import { TransientError } from '../../shared/errors';
import { silentLogger } from '../../shared/logger';
import type { ImageProcessor, ObjectStore, PutOptions, RenderResult } from '../../shared/ports';
import { FixedClock } from '../../shared/testing/fakes';
import { MemoryObjectStore } from '../../shared/testing/memory-object-store';
import { processImage } from '../../shared/usecases/process-image';
import { testInvocation } from '../../shared/testing/invocation';

const ID = 'fa017000-0000-4000-8000-0000000000aa';
const KEY = `originals/alice/${ID}`;

/** Renders nine tiny outputs without sharp: this test is about the writes. */
const processor: ImageProcessor = {
  render(): Promise<RenderResult> {
    return Promise.resolve({
      probe: { mimeType: 'image/jpeg', format: 'jpeg', width: 640, height: 480, pages: 1, hasAlpha: false, hasProfile: false },
      outputs: Array.from({ length: 9 }, (_, i) => ({
        variant: `v${i}`,
        format: 'jpeg' as const,
        contentType: 'image/jpeg',
        extension: 'jpg',
        width: 10,
        height: 10,
        body: Buffer.from([i]),
      })),
      placeholder: null,
      metrics: { decodeMs: 1, encodeMs: {} },
    });
  },
};

/** Variant writes take 20 ms; the first one fails after 5 ms with a storage 503. */
class SlowFailingStore extends MemoryObjectStore implements ObjectStore {
  readonly started: Array<{ key: string; at: number }> = [];
  readonly settled: Array<{ key: string; at: number }> = [];
  override async put(bucket: string, key: string, body: Buffer, options: PutOptions) {
    if (!key.startsWith('variants/')) return super.put(bucket, key, body, options);
    this.started.push({ key, at: performance.now() });
    try {
      if (key.endsWith('/v0.jpg')) {
        await new Promise((r) => setTimeout(r, 5));
        throw new TransientError('storage_unavailable', 'gcs put failed with HTTP 503');
      }
      await new Promise((r) => setTimeout(r, 20));
      return await super.put(bucket, key, body, options);
    } finally {
      this.settled.push({ key, at: performance.now() });
    }
  }
}

test('after a failed variant write no further write starts, and the invocation fails only once those in flight have settled', async () => {
  const config = loadConfig({ PIXELPIPE_AUTH_MODE: 'anonymous' });
  const store = new SlowFailingStore();
  const info = await store.put(config.buckets.originals, KEY, Buffer.from('original'), { contentType: 'image/jpeg' });
  const deps = { store, processor, clock: new FixedClock(), logger: silentLogger, config };

  const err = await processImage(deps, testInvocation(), { bucket: info.bucket, key: KEY, generation: info.generation }).catch((e: unknown) => e);
  const failedAt = performance.now();
  expect(err).toBeInstanceOf(TransientError);
  const startedAtFailure = store.started.length;
  await new Promise((r) => setTimeout(r, 100));

  // Four in flight (the write concurrency) when the first failed; none of the other five ever started.
  expect(startedAtFailure).toBe(4);
  expect(store.started).toHaveLength(4);
  expect(store.settled).toHaveLength(4);
  expect(Math.max(...store.settled.map((s) => s.at))).toBeLessThanOrEqual(failedAt);
  // The attempt was counted and no manifest was written: the retry redoes the image.
  expect((await store.get(config.buckets.variants, `state/${ID}/${info.generation}.attempts`)).body.toString()).toBe('1');
  expect(await store.head(config.buckets.variants, `manifests/${ID}.json`)).toBeNull();
});
