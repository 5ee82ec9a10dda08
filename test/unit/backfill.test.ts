import sharp from 'sharp';
import { loadConfig } from '../../shared/config';
import { SharpImageProcessor } from '../../shared/image/sharp-image-processor';
import { FixedClock } from '../../shared/testing/fakes';
import { MemoryObjectStore } from '../../shared/testing/memory-object-store';
import { backfill, reprocess } from '../../shared/usecases/backfill';
import { processImage, type ProcessDeps } from '../../shared/usecases/process-image';
import { testInvocation } from '../../shared/testing/invocation';

const processor = new SharpImageProcessor();
const small = (n: number) =>
  sharp({ create: { width: 64, height: 48, channels: 3, background: { r: n * 20, g: 100, b: 50 } } })
    .jpeg()
    .toBuffer();
const variants = JSON.stringify([{ name: 't', width: 32, formats: ['jpeg'] }]);

async function setup(n: number, env: Record<string, string> = {}) {
  const config = loadConfig({ PIXELPIPE_AUTH_MODE: 'anonymous', PIXELPIPE_VARIANTS: variants, ...env });
  const store = new MemoryObjectStore();
  const deps: ProcessDeps = { store, processor, clock: new FixedClock(), config };
  const keys: string[] = [];
  for (let i = 0; i < n; i++) {
    const key = `originals/owner${i % 3}/00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
    await store.put(config.buckets.originals, key, await small(i), { contentType: 'image/jpeg' });
    keys.push(key);
  }
  return { config, store, deps, keys };
}
const opts = { concurrency: 3, maxImages: 1000 };

test('processes originals without a manifest; a second run does nothing', async () => {
  const { deps, store, config } = await setup(7);
  const first = await backfill(deps, testInvocation(), opts);
  expect(first).toMatchObject({ listed: 7, processed: 7, skipped: 0, failed: 0, errors: 0, stoppedBy: 'done' });
  expect(store.keys(config.buckets.variants).filter((k) => k.startsWith('manifests/'))).toHaveLength(7);
  const putsBefore = store.calls.filter((c) => c.op === 'put').length;
  const second = await backfill(deps, testInvocation(), opts);
  expect(second).toMatchObject({ listed: 7, processed: 0, skipped: 7 });
  expect(store.calls.filter((c) => c.op === 'put').length).toBe(putsBefore);
});

test('dry run lists the work and writes nothing', async () => {
  const { deps, store, keys } = await setup(4);
  const r = await backfill(deps, testInvocation(), { ...opts, dryRun: true });
  expect(r.keys).toEqual([...keys].sort());
  expect(r.processed).toBe(0);
  expect(store.calls.filter((c) => c.op === 'put')).toHaveLength(4); // only the setup uploads
});

test('the hard cap stops a run; the next run continues where it stopped', async () => {
  const { deps } = await setup(10);
  expect(await backfill(deps, testInvocation(), { concurrency: 2, maxImages: 4 })).toMatchObject({ processed: 4, stoppedBy: 'cap' });
  expect(await backfill(deps, testInvocation(), { concurrency: 2, maxImages: 4 })).toMatchObject({ processed: 4, skipped: 4, stoppedBy: 'cap' });
  expect(await backfill(deps, testInvocation(), { concurrency: 2, maxImages: 4 })).toMatchObject({ processed: 2, skipped: 8, stoppedBy: 'done' });
});

test('an interrupted run resumes: nothing is processed twice', async () => {
  const { deps, store } = await setup(9);
  const ac = new AbortController();
  const first = await backfill(deps, testInvocation(), {
    concurrency: 1,
    maxImages: 100,
    signal: ac.signal,
    onProgress: (p) => {
      if (p.processed === 3) ac.abort();
    },
  });
  expect(first.stoppedBy).toBe('aborted');
  expect(first.processed).toBeGreaterThanOrEqual(3);
  expect(first.processed).toBeLessThan(9);
  const second = await backfill(deps, testInvocation(), opts);
  expect(second.processed).toBe(9 - first.processed);
  const manifestWrites = store.calls.filter((c) => c.op === 'put' && c.key.startsWith('manifests/'));
  expect(new Set(manifestWrites.map((c) => c.key)).size).toBe(manifestWrites.length);
});

test('loop-proof: in one bucket, with a trigger on every write, N originals mean N processings', async () => {
  const { deps, store } = await setup(12, { PIXELPIPE_ORIGINALS_BUCKET: 'one-bucket', PIXELPIPE_VARIANTS_BUCKET: 'one-bucket' });
  const outcomes: string[] = [];
  const triggered: Array<Promise<unknown>> = [];
  // Every object the backfill writes fires the processor, exactly as a bucket-wide trigger would.
  store.onPut = (o) =>
    triggered.push(processImage(deps, testInvocation(), { bucket: o.bucket, key: o.key, generation: o.generation }).then((r) => outcomes.push(r.status)));
  const r = await backfill(deps, testInvocation(), { concurrency: 4, maxImages: 1000 });
  while (triggered.length) await triggered.shift();
  expect(r.processed).toBe(12);
  expect(outcomes.every((s) => s === 'ignored')).toBe(true);
  for (let i = 0; i < 3; i++) expect((await backfill(deps, testInvocation(), opts)).processed).toBe(0);
});

test('a new generation is processed again; force reprocesses everything', async () => {
  const { deps, store, config, keys } = await setup(3);
  await backfill(deps, testInvocation(), opts);
  await store.put(config.buckets.originals, keys[1], await small(9), { contentType: 'image/jpeg' });
  expect(await backfill(deps, testInvocation(), opts)).toMatchObject({ processed: 1, skipped: 2 });
  expect(await backfill(deps, testInvocation(), { ...opts, force: true })).toMatchObject({ processed: 3 });
});

test('refuses prefixes and buckets that could contain outputs', async () => {
  const { deps } = await setup(0);
  await expect(backfill(deps, testInvocation(), { ...opts, prefix: 'variants/' })).rejects.toThrow(/inside originals\//);
  await expect(backfill(deps, testInvocation(), { ...opts, prefix: '' })).rejects.toThrow(/inside originals\//);
  await expect(backfill(deps, testInvocation(), { ...opts, bucket: 'pixelpipe-variants' })).rejects.toThrow(/only the originals bucket/);
});

test('reprocess --failed re-runs failed images after a fix (fresh attempt budget)', async () => {
  const { deps, store, config } = await setup(4, { PIXELPIPE_MAX_INPUT_PIXELS: '100' });
  expect(await backfill(deps, testInvocation(), opts)).toMatchObject({ failed: 4 });
  const fixed: ProcessDeps = { ...deps, config: loadConfig({ PIXELPIPE_AUTH_MODE: 'anonymous', PIXELPIPE_VARIANTS: variants }) };
  const r = await reprocess(fixed, testInvocation(), 'failed', { concurrency: 2, maxImages: 100 });
  expect(r).toMatchObject({ listed: 4, processed: 4, failed: 0 });
  expect(await reprocess(fixed, testInvocation(), 'failed', { concurrency: 2, maxImages: 100 })).toMatchObject({ listed: 0 });
  const one = store
    .keys(config.buckets.variants)
    .find((k) => k.startsWith('manifests/'))!
    .slice('manifests/'.length, -5);
  expect(await reprocess(fixed, testInvocation(), [one], { concurrency: 1, maxImages: 10 })).toMatchObject({ processed: 1 });
  await expect(reprocess(fixed, testInvocation(), ['00000000-0000-4000-8000-999999999999'], { concurrency: 1, maxImages: 10 })).rejects.toThrow(/no manifest/);
});
