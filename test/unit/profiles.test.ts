/**
 * Profiles at processing time: the profile comes from the original's pinned metadata only, its variants
 * and limits are what render uses, and the manifest and event record it with the recipe fingerprint.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { loadConfig, type PixelpipeConfig } from '../../shared/config';
import { buildCompletionEvent } from '../../shared/events';
import { SharpImageProcessor } from '../../shared/image/sharp-image-processor';
import { createLogger } from '../../shared/logger';
import { AUTO_QUALITY_VERSION, canonicalJson, findProfile, PROCESSOR_OUTPUT_VERSION, profileForOriginal, readCapBytes, recipeOf } from '../../shared/profiles';
import { FakeImageAnalyzer } from '../../shared/testing/fake-image-analyzer';
import { FixedClock } from '../../shared/testing/fakes';
import { createAnalysisStage } from '../../shared/usecases/analyze-image';
import { testInvocation } from '../../shared/testing/invocation';
import { MemoryObjectStore } from '../../shared/testing/memory-object-store';
import { processImage, type ProcessDeps } from '../../shared/usecases/process-image';

const photo = readFileSync(join(__dirname, '..', '..', 'samples', 'landscape.jpg'));
const ID = '00000000-0000-4000-8000-00000000abcd';
const KEY = `originals/alice/${ID}`;
const processor = new SharpImageProcessor();

const AVATAR = { variants: [{ name: 'square', width: 64, height: 64, fit: 'cover', formats: ['webp'] }], maxInputBytes: 5_000_000 };
const PRODUCT = { variants: [{ name: 'full', width: 300, formats: ['jpeg'] }], maxInputBytes: 64 * 1024 * 1024 };

function setup(env: Record<string, string> = {}) {
  const config: PixelpipeConfig = loadConfig({
    PIXELPIPE_AUTH_MODE: 'anonymous',
    PIXELPIPE_WEBP_EFFORT: '2',
    PIXELPIPE_VARIANTS: JSON.stringify([{ name: 'small', width: 100, formats: ['jpeg'] }]),
    PIXELPIPE_PROFILES: JSON.stringify({ avatar: AVATAR, product: PRODUCT }),
    ...env,
  });
  const store = new MemoryObjectStore();
  const lines: Array<Record<string, unknown>> = [];
  const deps: ProcessDeps = { store, processor, clock: new FixedClock(), config };
  const logger = createLogger({ sink: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) });
  const upload = (metadata: Record<string, string>, key = KEY, body = photo) =>
    store.put(config.buckets.originals, key, body, { contentType: 'image/jpeg', metadata });
  const run = async (metadata: Record<string, string>, key = KEY) => {
    const info = await upload(metadata, key);
    return processImage(deps, testInvocation({ logger }), { bucket: info.bucket, key, generation: info.generation });
  };
  return { config, store, deps, lines, upload, run };
}

describe('processing with the pinned profile', () => {
  test("the original's pixelpipe-profile metadata selects the variants; manifest and event carry profile and recipe", async () => {
    const { config, store, run } = setup();
    const out = await run({ 'pixelpipe-profile': 'avatar' });
    expect(out.status).toBe('processed');
    if (out.status !== 'processed') return;
    const m = out.manifest;
    expect(m.variants.map((v) => [v.name, v.format, v.width, v.height])).toEqual([['square', 'webp', 64, 64]]);
    const pixels = await sharp((await store.get(config.buckets.variants, m.variants[0].key)).body).metadata();
    expect([pixels.format, pixels.width, pixels.height]).toEqual(['webp', 64, 64]);
    expect(m.profile).toBe('avatar');
    expect(m.recipe).toBe(recipeOf(config, config.profiles.avatar));
    const { attributes } = buildCompletionEvent(m, '//pixelpipe', new Date());
    expect(attributes).toMatchObject({ profile: 'avatar', status: 'processed' });
  });

  test('no pinned profile (objects from before profiles, backfill) → the default profile', async () => {
    const { config, run } = setup();
    const out = await run({});
    expect(out.status === 'processed' && out.manifest.variants.map((v) => v.name)).toEqual(['small']);
    expect(out.status === 'processed' && [out.manifest.profile, out.manifest.recipe]).toEqual(['default', recipeOf(config, findProfile(config, 'default')!)]);
  });

  test('PIXELPIPE_DEFAULT_PROFILE applies to originals without a pinned profile', async () => {
    const { run } = setup({ PIXELPIPE_DEFAULT_PROFILE: 'product' });
    const out = await run({});
    expect(out.status === 'processed' && [out.manifest.profile, out.manifest.variants.map((v) => `${v.name}.${v.format}`)]).toEqual(['product', ['full.jpeg']]);
  });

  test('a pinned name no longer configured → processed with the default profile, and a warning naming it', async () => {
    const { run, lines } = setup();
    const out = await run({ 'pixelpipe-profile': 'banner' });
    expect(out.status === 'processed' && [out.manifest.profile, out.manifest.variants.map((v) => v.name)]).toEqual(['default', ['small']]);
    expect(lines.filter((l) => l.level === 'warn')).toEqual([
      expect.objectContaining({
        message: 'the pinned profile is no longer configured; processing with the default profile',
        pinned: 'banner',
        profile: 'default',
      }),
    ]);
  });

  test('the key cannot choose the profile: a key segment named like a profile changes nothing', async () => {
    const { run } = setup();
    const out = await run({}, `originals/avatar/${ID}`);
    expect(out.status === 'processed' && out.manifest.profile).toBe('default');
  });

  test("the read is capped at the largest profile's limit; the pinned profile's own cap is enforced before decoding", async () => {
    const { deps, store, upload, config } = setup({ PIXELPIPE_PROFILES: JSON.stringify({ avatar: { ...AVATAR, maxInputBytes: 200_000 }, product: PRODUCT }) });
    expect(readCapBytes(config)).toBe(64 * 1024 * 1024);
    expect(photo.length).toBeGreaterThan(200_000);
    const reads: Array<number | undefined> = [];
    const realGet = store.get.bind(store);
    store.get = (bucket, key, o) => {
      if (key === KEY) reads.push(o?.maxBytes);
      return realGet(bucket, key, o);
    };
    const render = jest.fn(processor.render.bind(processor));
    const info = await upload({ 'pixelpipe-profile': 'avatar' });
    const out = await processImage({ ...deps, processor: { render } }, testInvocation(), { bucket: info.bucket, key: KEY, generation: info.generation });
    expect(out.status).toBe('failed');
    if (out.status !== 'failed') return;
    expect(out.manifest.reason).toEqual({ code: 'too_many_bytes', message: `object has ${photo.length} bytes; the limit of profile avatar is 200000` });
    expect(out.manifest.profile).toBe('avatar');
    expect(out.manifest.recipe).toBeUndefined();
    expect(render).not.toHaveBeenCalled();
    expect(reads).toEqual([64 * 1024 * 1024]);
    // The same bytes are fine for a profile with a larger cap.
    const product = await upload({ 'pixelpipe-profile': 'product' });
    const ok = await processImage(deps, testInvocation(), { bucket: product.bucket, key: KEY, generation: product.generation });
    expect(ok.status).toBe('processed');
  });

  test("the profile's pixel limit is the one the decoder checks", async () => {
    const { run } = setup({ PIXELPIPE_PROFILES: JSON.stringify({ tiny: { ...AVATAR, maxInputBytes: 10_000_000, maxInputPixels: 1000 } }) });
    const out = await run({ 'pixelpipe-profile': 'tiny' });
    expect(out.status === 'failed' && out.manifest.reason?.code).toBe('too_many_pixels');
    expect((await run({})).status).toBe('processed');
  });
});

describe("a profile's analysis override", () => {
  test('moderation blocks for the chat profile only; the other profiles keep the global settings', async () => {
    const { config, store, deps, upload } = setup({
      PIXELPIPE_ANALYZER: 'vision',
      PIXELPIPE_PROFILES: JSON.stringify({ chat: { analysis: { moderation: 'block' } } }),
    });
    const analyzer = new FakeImageAnalyzer({ moderation: { verdict: 'flagged', categories: [{ name: 'adult', score: 0.97 }] } });
    const withStage: ProcessDeps = { ...deps, analysis: createAnalysisStage(analyzer, config.analysis, { sleep: () => Promise.resolve() }) };
    const go = async (metadata: Record<string, string>, key: string) => {
      const info = await upload(metadata, key);
      return processImage(withStage, testInvocation(), { bucket: info.bucket, key, generation: info.generation });
    };
    const chat = await go({ 'pixelpipe-profile': 'chat' }, KEY);
    expect(chat.status === 'failed' && [chat.manifest.profile, chat.manifest.reason?.code]).toEqual(['chat', 'content_blocked']);
    expect(analyzer.calls.at(-1)?.analyses).toEqual(['faces', 'moderation']);
    expect(store.keys(config.buckets.variants).filter((k) => k.startsWith(`variants/${ID}/`))).toEqual([]);
    const other = `originals/alice/00000000-0000-4000-8000-00000000abce`;
    const plain = await go({}, other);
    expect(plain.status === 'processed' && plain.manifest.profile).toBe('default');
    // The global settings: faces only, no moderation asked for, nothing blocked.
    expect(analyzer.calls.at(-1)?.analyses).toEqual(['faces']);
  });
});

describe('profileForOriginal', () => {
  const { config } = setup();
  test('reads only the pixelpipe-profile metadata; an empty value is absent', () => {
    expect(profileForOriginal(config, { 'pixelpipe-profile': 'avatar' }).profile.name).toBe('avatar');
    expect(profileForOriginal(config, { 'pixelpipe-profile': '' })).toEqual({ profile: findProfile(config, 'default') });
    expect(profileForOriginal(config, { profile: 'avatar' }).profile.name).toBe('default');
    // Inherited object members are not profiles.
    expect(profileForOriginal(config, { 'pixelpipe-profile': 'constructor' })).toMatchObject({ profile: { name: 'default' }, unknown: 'constructor' });
  });
});

describe('recipe fingerprint', () => {
  const base = { PIXELPIPE_AUTH_MODE: 'anonymous' };
  const recipe = (env: Record<string, string>, name = 'p') => {
    const c = loadConfig({ ...base, ...env });
    return recipeOf(c, findProfile(c, name)!);
  };
  const profiles = (p: unknown) => ({ PIXELPIPE_PROFILES: JSON.stringify({ p }) });

  test('stable across key order, variant order and spelled-out defaults', () => {
    const a = recipe(
      profiles({
        variants: [
          { name: 'a', width: 10, formats: ['webp'] },
          { name: 'b', height: 20 },
        ],
      }),
    );
    const b = recipe(
      profiles({
        variants: [
          { height: 20, name: 'b' },
          { formats: ['webp'], width: 10, name: 'a', fit: 'inside', withoutEnlargement: true },
        ],
      }),
    );
    expect(b).toBe(a);
    expect(a).toMatch(new RegExp(`^r${PROCESSOR_OUTPUT_VERSION}-[0-9a-f]{24}$`));
    // Limits that only accept or refuse inputs leave the outputs, and so the recipe, unchanged.
    expect(
      recipe(
        profiles({
          variants: [
            { name: 'a', width: 10, formats: ['webp'] },
            { name: 'b', height: 20 },
          ],
          maxInputBytes: 1000,
        }),
      ),
    ).toBe(a);
  });

  test('changes when a variant, a format, the encoder effort or frame handling changes', () => {
    const v = [{ name: 'a', width: 10, formats: ['webp'] }];
    const a = recipe(profiles({ variants: v }));
    const changed = [
      recipe(profiles({ variants: [{ ...v[0], width: 11 }] })),
      recipe(profiles({ variants: [{ ...v[0], formats: ['webp', 'avif'] }] })),
      recipe(profiles({ variants: [...v, { name: 'b', width: 5 }] })),
      recipe(profiles({ variants: [{ ...v[0], name: 'a2' }] })),
      recipe({ ...profiles({ variants: v }), PIXELPIPE_WEBP_EFFORT: '3' }),
      recipe(profiles({ variants: v, animated: false })),
    ];
    expect(new Set([a, ...changed]).size).toBe(changed.length + 1);
  });

  test('the quality target counts only for profiles with an "auto" variant', () => {
    const fixed = profiles({ variants: [{ name: 'a', width: 10 }] });
    expect(recipe({ ...fixed, PIXELPIPE_QUALITY_TARGET: 'ssim:0.99' })).toBe(recipe(fixed));
    const auto = profiles({ variants: [{ name: 'a', width: 10, quality: 'auto' }] });
    expect(recipe({ ...auto, PIXELPIPE_QUALITY_TARGET: 'ssim:0.99' })).not.toBe(recipe(auto));
  });

  test('an "auto" profile\'s recipe carries the search version (pinned), the default recipe does not', () => {
    // Pinned after AUTO_QUALITY_VERSION became 3 (smaller samples; at 2 with PROCESSOR_OUTPUT_VERSION 1 it was
    // r1-531c9a49300a253e799addad, with 2 r2-d6fcee8f763a473428fd8113, while the default recipe moved only with
    // the processor version); before version 2 this profile's recipe had no search version and differed.
    expect(AUTO_QUALITY_VERSION).toBe(3);
    expect(PROCESSOR_OUTPUT_VERSION).toBe(2);
    expect(recipe(profiles({ variants: [{ name: 'a', width: 10, quality: 'auto' }] }))).toBe('r2-6aa4b626437b861c391d3e95');
    expect(recipe({}, 'default')).toBe('r2-d4a867bb1fd4309e015c48e1');
  });

  test('the default recipe of a deployment without analysis is the fingerprint it had before analysis counted', () => {
    // Computed by the code before analysis settings entered the recipe, with PROCESSOR_OUTPUT_VERSION 2 (the
    // placeholder's ThumbHash now comes from 32 px and large JPEGs of PNG originals get the scan search, so
    // every image is meant to go stale; it was r1-6bd08dab9937e5524e4108c6). Any other change here makes every image stale.
    expect(recipe({}, 'default')).toBe('r2-d4a867bb1fd4309e015c48e1');
    expect(recipe({ PIXELPIPE_BLOCKED_PLACEHOLDER: 'neutral', PIXELPIPE_ANALYSIS_BUDGET_MS: '900' }, 'default')).toBe('r2-d4a867bb1fd4309e015c48e1');
  });

  test('analysis settings that change outputs or the manifest change it; retries and time budget do not', () => {
    const crop = profiles({ variants: [{ name: 'a', width: 10, height: 10, fit: 'cover', position: 'faces' }] });
    const none = recipe(crop);
    const embedded = recipe({ ...crop, PIXELPIPE_ANALYZER: 'embedded' });
    const vision = { ...crop, PIXELPIPE_ANALYZER: 'vision' };
    const changed = [
      embedded,
      recipe(vision),
      recipe({ ...vision, PIXELPIPE_ANALYSES: 'faces,labels' }),
      recipe({ ...vision, PIXELPIPE_MODERATION: 'flag' }),
      recipe({ ...vision, PIXELPIPE_MODERATION: 'block' }),
      recipe({ ...vision, PIXELPIPE_MODERATION: 'block', PIXELPIPE_BLOCKED_PLACEHOLDER: 'neutral' }),
      recipe({ ...crop, PIXELPIPE_ANALYZER: 'embedded', PIXELPIPE_FACE_DESCRIPTORS: 'true' }),
    ];
    expect(new Set([none, ...changed]).size).toBe(changed.length + 1);
    expect(recipe({ ...crop, PIXELPIPE_ANALYZER: 'embedded', PIXELPIPE_ANALYSIS_REQUIRED: 'true', PIXELPIPE_ANALYSIS_BUDGET_MS: '900' })).toBe(embedded);
    // Without moderation the placeholder of blocked images is never served, so it changes nothing.
    expect(recipe({ ...vision, PIXELPIPE_MODERATION: 'flag', PIXELPIPE_BLOCKED_PLACEHOLDER: 'neutral' })).toBe(
      recipe({ ...vision, PIXELPIPE_MODERATION: 'flag' }),
    );
  });

  test("a profile's own analysis settings change its recipe only", () => {
    const env = (p: unknown) => ({
      PIXELPIPE_ANALYZER: 'vision',
      PIXELPIPE_PROFILES: JSON.stringify({ p: { variants: [{ name: 'a', width: 10 }], ...(p as object) }, q: { variants: [{ name: 'a', width: 10 }] } }),
    });
    expect(recipe(env({ analysis: { moderation: 'block' } }))).not.toBe(recipe(env({})));
    expect(recipe(env({ analysis: { moderation: 'block' } }), 'q')).toBe(recipe(env({}), 'q'));
  });

  test('canonicalJson sorts keys at every depth and drops undefined members', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { y: 2, x: undefined, w: 'z' }], c: null } })).toBe('{"a":{"c":null,"d":[1,{"w":"z","y":2}]},"b":1}');
  });
});
