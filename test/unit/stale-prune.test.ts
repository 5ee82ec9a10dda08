/**
 * `backfill --stale` and `--prune` after a recipe change: plans (counts and bytes), runs, reruns that do
 * nothing, interrupted and resumed runs, the profile filter, and that originals and manifests are never deleted.
 */
import sharp from 'sharp';
import { loadConfig, type PixelpipeConfig } from '../../shared/config';
import { readManifest } from '../../shared/usecases/process-image';
import { recipeOf, findProfile } from '../../shared/profiles';
import { FixedClock } from '../../shared/testing/fakes';
import { testInvocation } from '../../shared/testing/invocation';
import { MemoryObjectStore } from '../../shared/testing/memory-object-store';
import { SharpImageProcessor } from '../../shared/image/sharp-image-processor';
import { backfill } from '../../shared/usecases/backfill';
import { parseVariantObjectKey, pruneVariants } from '../../shared/usecases/prune-variants';
import type { ProcessDeps } from '../../shared/usecases/process-image';

const processor = new SharpImageProcessor();
const image = (n: number) =>
  sharp({ create: { width: 64, height: 48, channels: 3, background: { r: n * 20, g: 100, b: 50 } } })
    .jpeg()
    .toBuffer();
const BEFORE = [
  { name: 't', width: 32, formats: ['jpeg'] },
  { name: 'u', width: 16, formats: ['jpeg', 'webp'] },
];
// `t` changes width, `u` is gone, `v` is new.
const AFTER = [
  { name: 't', width: 24, formats: ['jpeg'] },
  { name: 'v', width: 8, formats: ['webp'] },
];
const AVATAR = { variants: [{ name: 'sq', width: 16, height: 16, fit: 'cover', formats: ['webp'] }] };

const configWith = (variants: unknown, avatar: unknown = AVATAR): PixelpipeConfig =>
  loadConfig({ PIXELPIPE_AUTH_MODE: 'anonymous', PIXELPIPE_VARIANTS: JSON.stringify(variants), PIXELPIPE_PROFILES: JSON.stringify({ avatar }) });
const id = (i: number) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
const opts = { concurrency: 2, maxImages: 1000 };
const pruneOpts = { concurrency: 2, maxDeletes: 1000, dryRun: false };

/** `n` default-profile originals and `avatars` avatar ones, processed under the BEFORE recipe. */
async function processedUnderOldRecipe(n: number, avatars = 0) {
  const store = new MemoryObjectStore();
  const old: ProcessDeps = { store, processor, clock: new FixedClock(), config: configWith(BEFORE) };
  let bytes = 0;
  for (let i = 0; i < n + avatars; i++) {
    const body = await image(i);
    bytes += body.length;
    const metadata: Record<string, string> = i >= n ? { 'pixelpipe-profile': 'avatar' } : {};
    await store.put(old.config.buckets.originals, `originals/alice/${id(i)}`, body, { contentType: 'image/jpeg', metadata });
  }
  expect(await backfill(old, testInvocation(), opts)).toMatchObject({ processed: n + avatars });
  const now: ProcessDeps = { ...old, config: configWith(AFTER) };
  const snapshot = () => ({
    originals: store.keys(now.config.buckets.originals),
    manifests: store.keys(now.config.buckets.variants).filter((k) => k.startsWith('manifests/')),
  });
  return { store, old, now, bytes, snapshot };
}
const variantKeys = (store: MemoryObjectStore, config: PixelpipeConfig) =>
  store
    .keys(config.buckets.variants)
    .filter((k) => k.startsWith('variants/'))
    .sort();

describe('backfill --stale', () => {
  test('the plan counts the images whose recipe changed and their bytes; the run reprocesses them; a rerun does nothing', async () => {
    const { store, now, bytes } = await processedUnderOldRecipe(5);
    const plan = await backfill(now, testInvocation(), { ...opts, stale: true, dryRun: true });
    expect(plan).toMatchObject({ listed: 5, skipped: 0, processed: 0, bytes, reasons: { 'stale recipe': 5 } });
    expect(plan.keys).toHaveLength(5);
    // Without --stale the same images are current (their manifests are for this generation).
    expect(await backfill(now, testInvocation(), { ...opts, dryRun: true })).toMatchObject({ keys: [], skipped: 5 });

    const run = await backfill(now, testInvocation(), { ...opts, stale: true });
    expect(run).toMatchObject({ processed: 5, errors: 0, stoppedBy: 'done' });
    for (let i = 0; i < 5; i++) {
      const m = (await readManifest(store, now.config, id(i)))!;
      expect([m.recipe, m.variants.map((v) => `${v.name}.${v.format}:${v.width}`)]).toEqual([
        recipeOf(now.config, findProfile(now.config, 'default')!),
        ['t.jpeg:24', 'v.webp:8'],
      ]);
    }
    expect(await backfill(now, testInvocation(), { ...opts, stale: true })).toMatchObject({ processed: 0, skipped: 5, keys: [] });
  });

  test('manifests from before fingerprints (no recipe) are stale; failed manifests are not', async () => {
    const { store, now } = await processedUnderOldRecipe(2);
    const key = `manifests/${id(0)}.json`;
    const m = JSON.parse((await store.get(now.config.buckets.variants, key)).body.toString()) as Record<string, unknown>;
    delete m.recipe;
    await store.put(now.config.buckets.variants, key, Buffer.from(JSON.stringify(m)), { contentType: 'application/json' });
    const other = JSON.parse((await store.get(now.config.buckets.variants, `manifests/${id(1)}.json`)).body.toString()) as Record<string, unknown>;
    const failed = { ...other, status: 'failed', variants: [], reason: { code: 'corrupt_image', message: 'x' } };
    await store.put(now.config.buckets.variants, `manifests/${id(1)}.json`, Buffer.from(JSON.stringify(failed)), { contentType: 'application/json' });
    const sameRecipe: ProcessDeps = { ...now, config: configWith(BEFORE) };
    const plan = await backfill(sameRecipe, testInvocation(), { ...opts, stale: true, dryRun: true });
    expect([plan.keys, plan.reasons]).toEqual([[`originals/alice/${id(0)}`], { 'stale recipe': 1 }]);
  });

  test('--profile limits the run to images of that profile', async () => {
    const { now } = await processedUnderOldRecipe(3, 2);
    // Only the default profile's recipe changed.
    expect(await backfill(now, testInvocation(), { ...opts, stale: true, profile: 'avatar', dryRun: true })).toMatchObject({ keys: [], skipped: 5 });
    const plan = await backfill(now, testInvocation(), { ...opts, stale: true, profile: 'default', dryRun: true });
    expect(plan.keys.sort()).toEqual([0, 1, 2].map((i) => `originals/alice/${id(i)}`));
    // Force within a profile: the avatars only.
    expect((await backfill(now, testInvocation(), { ...opts, force: true, profile: 'avatar', dryRun: true })).keys.sort()).toEqual(
      [3, 4].map((i) => `originals/alice/${id(i)}`),
    );
    await expect(backfill(now, testInvocation(), { ...opts, profile: 'banner' })).rejects.toThrow('no profile "banner" is configured');
  });

  test('an interrupted --stale run resumes: each image is reprocessed once over both runs', async () => {
    const { store, now } = await processedUnderOldRecipe(8);
    const before = store.calls.length;
    const ac = new AbortController();
    const first = await backfill(now, testInvocation(), {
      concurrency: 1,
      maxImages: 100,
      stale: true,
      signal: ac.signal,
      onProgress: (p) => p.processed === 3 && ac.abort(),
    });
    expect(first.stoppedBy).toBe('aborted');
    expect(first.processed).toBeGreaterThanOrEqual(3);
    expect(first.processed).toBeLessThan(8);
    const second = await backfill(now, testInvocation(), { ...opts, stale: true });
    expect(second.processed).toBe(8 - first.processed);
    const manifestWrites = store.calls.slice(before).filter((c) => c.op === 'put' && c.key.startsWith('manifests/'));
    expect(manifestWrites).toHaveLength(8);
    expect(new Set(manifestWrites.map((c) => c.key)).size).toBe(8);
  });
});

describe('prune', () => {
  test('stale images are left alone until --stale has run: their manifests still list the old variants', async () => {
    const { store, now } = await processedUnderOldRecipe(3);
    const r = await pruneVariants(now, testInvocation(), pruneOpts);
    expect(r).toMatchObject({ candidates: 0, deleted: 0, skippedImages: { 'stale recipe': 3 } });
    expect(variantKeys(store, now.config)).toHaveLength(9);
  });

  test('the plan names the objects of removed variants with their bytes; --apply deletes exactly those; a rerun finds nothing', async () => {
    const { store, now, snapshot } = await processedUnderOldRecipe(4);
    await backfill(now, testInvocation(), { ...opts, stale: true });
    const orphans = variantKeys(store, now.config).filter((k) => parseVariantObjectKey('variants/', k)?.name === 'u');
    expect(orphans).toHaveLength(8); // u.jpg and u.webp of 4 images
    const orphanBytes = (await Promise.all(orphans.map((k) => store.head(now.config.buckets.variants, k)))).reduce((n, o) => n + o!.size, 0);
    const kept = snapshot();
    const callsBefore = store.calls.length;

    const plan = await pruneVariants(now, testInvocation(), { ...pruneOpts, dryRun: true });
    expect(plan).toMatchObject({ candidates: 8, images: 4, bytes: orphanBytes, deleted: 0, errors: 0, stoppedBy: 'done' });
    expect(plan.keys.sort()).toEqual(orphans);
    expect(store.calls.slice(callsBefore).filter((c) => c.op === 'delete' || c.op === 'put')).toEqual([]);

    const run = await pruneVariants(now, testInvocation(), pruneOpts);
    expect(run).toMatchObject({ candidates: 8, deleted: 8, errors: 0 });
    const deletes = store.calls.slice(callsBefore).filter((c) => c.op === 'delete');
    expect(deletes.map((c) => c.key).sort()).toEqual(orphans);
    expect(deletes.every((c) => c.bucket === now.config.buckets.variants)).toBe(true);
    expect(snapshot()).toEqual(kept);
    expect(
      variantKeys(store, now.config)
        .map((k) => parseVariantObjectKey('variants/', k)!.name)
        .sort(),
    ).toEqual([...'tttt', ...'vvvv']);
    expect(await pruneVariants(now, testInvocation(), pruneOpts)).toMatchObject({ candidates: 0, deleted: 0 });
  });

  test('a format dropped from a variant that stays is pruned once --stale has run: its other formats and the rest stay', async () => {
    const { store, now } = await processedUnderOldRecipe(2);
    // `u` keeps its name and drops jpeg; `t` is unchanged.
    const dropped: ProcessDeps = { ...now, config: configWith([BEFORE[0], { ...BEFORE[1], formats: ['webp'] }]) };
    const before = variantKeys(store, dropped.config);
    const orphans = before.filter((k) => /\/u\.jpe?g$/.test(k));
    expect(orphans).toHaveLength(2);
    expect(await pruneVariants(dropped, testInvocation(), pruneOpts)).toMatchObject({ candidates: 0, skippedImages: { 'stale recipe': 2 } });
    await backfill(dropped, testInvocation(), { ...opts, stale: true });
    const plan = await pruneVariants(dropped, testInvocation(), { ...pruneOpts, dryRun: true });
    expect(plan).toMatchObject({ candidates: 2, images: 2, deleted: 0 });
    expect(plan.keys.sort()).toEqual(orphans);
    expect(await pruneVariants(dropped, testInvocation(), pruneOpts)).toMatchObject({ deleted: 2, errors: 0 });
    expect(variantKeys(store, dropped.config)).toEqual(before.filter((k) => !orphans.includes(k)));
    for (const i of [0, 1]) {
      const m = await readManifest(store, dropped.config, id(i), {});
      expect(m!.variants.map((v) => `${v.name}.${v.format}`).sort()).toEqual(['t.jpeg', 'u.webp']);
      expect(variantKeys(store, dropped.config).filter((k) => k.includes(id(i)))).toEqual(m!.variants.map((v) => v.key).sort());
    }
  });

  test('in one bucket, nothing but variant objects is ever a candidate (originals, manifests and state stay)', async () => {
    const store = new MemoryObjectStore();
    const one = (variants: unknown) =>
      loadConfig({
        PIXELPIPE_AUTH_MODE: 'anonymous',
        PIXELPIPE_ORIGINALS_BUCKET: 'one',
        PIXELPIPE_VARIANTS_BUCKET: 'one',
        PIXELPIPE_VARIANTS: JSON.stringify(variants),
      });
    const old: ProcessDeps = { store, processor, clock: new FixedClock(), config: one(BEFORE) };
    for (let i = 0; i < 2; i++) await store.put('one', `originals/alice/${id(i)}`, await image(i), { contentType: 'image/jpeg' });
    await backfill(old, testInvocation(), opts);
    const now: ProcessDeps = { ...old, config: one(AFTER) };
    await backfill(now, testInvocation(), { ...opts, stale: true });
    const others = store.keys('one').filter((k) => !k.startsWith('variants/'));
    const r = await pruneVariants(now, testInvocation(), pruneOpts);
    expect(r.deleted).toBe(4);
    expect(r.keys.every((k) => /^variants\/[^/]+\/u\.(jpg|webp)$/.test(k))).toBe(true);
    expect(store.keys('one').filter((k) => !k.startsWith('variants/'))).toEqual(others);
  });

  test('images without a manifest (perhaps processing now), failed ones and other profiles are skipped and counted', async () => {
    const { store, now } = await processedUnderOldRecipe(2, 1);
    await backfill(now, testInvocation(), { ...opts, stale: true });
    // An image in flight: variants written, manifest not yet.
    await store.put(now.config.buckets.variants, `variants/${id(9)}/u.jpg`, Buffer.from('x'), { contentType: 'image/jpeg' });
    await store.delete(now.config.buckets.variants, `manifests/${id(1)}.json`);
    const r = await pruneVariants(now, testInvocation(), { ...pruneOpts, dryRun: true, profile: 'default' });
    expect(r.skippedImages).toEqual({ 'no manifest': 2, 'other profile': 1 });
    expect(r.keys.sort()).toEqual([`variants/${id(0)}/u.jpg`, `variants/${id(0)}/u.webp`]);
  });

  test('an interrupted prune resumes: every orphan deleted once over both runs; the cap stops a run', async () => {
    const { store, now } = await processedUnderOldRecipe(6);
    await backfill(now, testInvocation(), { ...opts, stale: true });
    const before = store.calls.length;
    const capped = await pruneVariants(now, testInvocation(), { ...pruneOpts, maxDeletes: 3 });
    expect(capped).toMatchObject({ stoppedBy: 'cap', deleted: 3 });
    const ac = new AbortController();
    const aborted = await pruneVariants(now, testInvocation(), {
      ...pruneOpts,
      concurrency: 1,
      signal: ac.signal,
      onProgress: (p) => p.deleted >= 2 && ac.abort(),
    });
    expect(aborted.stoppedBy).toBe('aborted');
    expect(aborted.deleted).toBeLessThan(9);
    const rest = await pruneVariants(now, testInvocation(), pruneOpts);
    expect(rest.stoppedBy).toBe('done');
    expect(capped.deleted + aborted.deleted + rest.deleted).toBe(12);
    const deletes = store.calls.slice(before).filter((c) => c.op === 'delete');
    expect(deletes).toHaveLength(12);
    expect(new Set(deletes.map((c) => c.key)).size).toBe(12);
    expect(await pruneVariants(now, testInvocation(), pruneOpts)).toMatchObject({ candidates: 0 });
  });
});

test('parseVariantObjectKey takes variants/<id>/<name>.<ext> only', () => {
  expect(parseVariantObjectKey('variants/', `variants/${id(1)}/thumb.webp`)).toEqual({ id: id(1), name: 'thumb' });
  for (const k of ['variants/x/y/thumb.webp', 'variants/x/thumb', 'originals/x/thumb.jpg', 'variants/thumb.jpg'])
    expect(parseVariantObjectKey('variants/', k)).toBeNull();
});
