/**
 * `PIXELPIPE_BLOCKED_PLACEHOLDER`: a blocked image's variant URLs serve a flat stand-in of the right size
 * and format, marked as such, while the manifest still ends `failed` / `content_blocked`.
 */
import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { loadConfig, NEUTRAL_PLACEHOLDER } from '../../shared/config';
import { ConfigError } from '../../shared/errors';
import { buildCompletionEvent } from '../../shared/events';
import { SharpImageProcessor } from '../../shared/image/sharp-image-processor';
import { parseManifest } from '../../shared/manifest';
import { FakeImageAnalyzer } from '../../shared/testing/fake-image-analyzer';
import { FixedClock } from '../../shared/testing/fakes';
import { testInvocation } from '../../shared/testing/invocation';
import { MemoryObjectStore } from '../../shared/testing/memory-object-store';
import { createAnalysisStage } from '../../shared/usecases/analyze-image';
import { processImage, type ProcessDeps } from '../../shared/usecases/process-image';
import { facePhotoPath } from '../support/faces';

const photo = readFileSync(facePhotoPath('group-3.jpg'));
const ID = '00000000-0000-4000-8000-0000000b10c7';
const VARIANTS = [
  { name: 'thumb', width: 200, height: 200, fit: 'cover', position: 'faces', formats: ['webp', 'jpeg'] },
  { name: 'medium', width: 480, formats: ['avif', 'original'] },
];
const FLAGGED = { verdict: 'flagged' as const, categories: [{ name: 'explicit', score: 0.97 }] };

function setup(env: Record<string, string>, analyzer = new FakeImageAnalyzer({ moderation: FLAGGED })) {
  const config = loadConfig({
    PIXELPIPE_AUTH_MODE: 'anonymous',
    PIXELPIPE_PLACEHOLDER: 'true',
    PIXELPIPE_VARIANTS: JSON.stringify(VARIANTS),
    PIXELPIPE_ANALYZER: 'vision',
    PIXELPIPE_MODERATION: 'block',
    ...env,
  });
  const store = new MemoryObjectStore();
  const processor = new SharpImageProcessor();
  const deps: ProcessDeps = { store, processor, clock: new FixedClock(), config, analysis: createAnalysisStage(analyzer, config.analysis) };
  const run = async (input = photo, metadata: Record<string, string> = {}) => {
    const info = await store.put(config.buckets.originals, `originals/alice/${ID}`, input, { contentType: 'image/jpeg', metadata });
    return processImage(deps, testInvocation(), { bucket: info.bucket, key: info.key, generation: info.generation });
  };
  return { config, store, processor, run };
}

/** Mean and spread of a decoded image's RGB samples. */
async function stats(body: Buffer) {
  const s = await sharp(body).stats();
  return s.channels.slice(0, 3).map((c) => ({ mean: c.mean, stdev: c.stdev }));
}

describe('blocked-image placeholders', () => {
  test('config: none by default; neutral, #rgb and #rrggbb accepted (per profile too); anything else names the variable', () => {
    const base = { PIXELPIPE_AUTH_MODE: 'anonymous' };
    expect(loadConfig(base).analysis.blockedPlaceholder).toBe('none');
    expect(loadConfig({ ...base, PIXELPIPE_BLOCKED_PLACEHOLDER: 'neutral' }).analysis.blockedPlaceholder).toBe(NEUTRAL_PLACEHOLDER);
    expect(loadConfig({ ...base, PIXELPIPE_BLOCKED_PLACEHOLDER: '#FA0' }).analysis.blockedPlaceholder).toBe('#ffaa00');
    expect(loadConfig({ ...base, PIXELPIPE_BLOCKED_PLACEHOLDER: '#123456' }).analysis.blockedPlaceholder).toBe('#123456');
    let err: unknown;
    try {
      loadConfig({ ...base, PIXELPIPE_BLOCKED_PLACEHOLDER: 'blur' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toContain('PIXELPIPE_BLOCKED_PLACEHOLDER');
    const profiles = JSON.stringify({ chat: { analysis: { moderation: 'block', blockedPlaceholder: 'neutral' } } });
    const c = loadConfig({ ...base, PIXELPIPE_ANALYZER: 'vision', PIXELPIPE_PROFILES: profiles });
    expect(c.profiles.chat.analysis?.blockedPlaceholder).toBe(NEUTRAL_PLACEHOLDER);
  });

  test('neutral: every variant is written at its size and format as a flat grey image, marked, and the manifest still ends content_blocked', async () => {
    const { run, store, config, processor } = setup({ PIXELPIPE_BLOCKED_PLACEHOLDER: 'neutral' });
    const out = await run();
    expect(out.status).toBe('failed');
    if (out.status !== 'failed') return;
    const m = parseManifest(JSON.parse((await store.get(config.buckets.variants, `manifests/${ID}.json`)).body.toString('utf8')));
    expect(m.reason?.code).toBe('content_blocked');
    expect(m.analysis?.moderation?.verdict).toBe('blocked');
    // No thumbhash: even a blurred preview of the blocked image would leak it.
    expect(m.placeholder).toBeNull();

    // The sizes and formats the real image gets.
    const real = await processor.render(photo, config.variants, config.limits, { webpEffort: 4, avifEffort: 4, placeholder: false });
    const expected = real.outputs.map((o) => [o.variant, o.format, o.width, o.height]).sort();
    expect(m.variants.map((v) => [v.name, v.format, v.width, v.height]).sort()).toEqual(expected);

    const grey = parseInt(NEUTRAL_PLACEHOLDER.slice(1, 3), 16);
    for (const v of m.variants) {
      expect(v.placeholder).toBe(true);
      expect(v.crop).toBeUndefined();
      const obj = await store.get(config.buckets.variants, v.key);
      expect(obj.cacheControl).toBe('no-cache');
      expect(obj.metadata['pixelpipe-placeholder']).toBe('content_blocked');
      const meta = await sharp(obj.body).metadata();
      expect([meta.format === 'heif' ? 'avif' : meta.format, meta.width, meta.height]).toEqual([v.format, v.width, v.height]);
      // Flat grey, so none of the photo's pixels: the real variant of the same name has texture.
      for (const c of await stats(obj.body)) {
        expect(Math.abs(c.mean - grey)).toBeLessThan(3);
        expect(c.stdev).toBeLessThan(2);
      }
      const twin = real.outputs.find((o) => o.variant === v.name && o.format === v.format)!;
      expect(Math.max(...(await stats(twin.body)).map((c) => c.stdev))).toBeGreaterThan(20);
    }
    const { event, attributes } = buildCompletionEvent(m, '//t', new Date());
    expect(event.type).toBe('pixelpipe.image.failed.v1');
    expect(attributes).toMatchObject({ status: 'failed', moderation: 'blocked', variants: 'placeholder' });
    expect(await store.head(config.buckets.originals, `originals/alice/${ID}`)).not.toBeNull();
  });

  test('a configured colour is used; none (the default) writes nothing; a clean image gets real, unmarked variants', async () => {
    const red = setup({ PIXELPIPE_BLOCKED_PLACEHOLDER: '#c00000' });
    const out = await red.run();
    expect(out.status === 'failed' && out.manifest.variants.length).toBe(4);
    if (out.status !== 'failed') return;
    const thumb = out.manifest.variants.find((v) => v.name === 'thumb' && v.format === 'jpeg')!;
    const [r, g, b] = await stats((await red.store.get(red.config.buckets.variants, thumb.key)).body);
    expect([Math.round(r.mean / 8), Math.round(g.mean / 8), Math.round(b.mean / 8)]).toEqual([24, 0, 0]);

    const none = setup({});
    const blocked = await none.run();
    expect(blocked.status === 'failed' && blocked.manifest.variants).toEqual([]);
    expect((await none.store.list(none.config.buckets.variants, 'variants/')).items).toEqual([]);

    const clean = setup({ PIXELPIPE_BLOCKED_PLACEHOLDER: 'neutral' }, new FakeImageAnalyzer());
    const ok = await clean.run();
    expect(ok.status).toBe('processed');
    if (ok.status !== 'processed') return;
    expect(ok.manifest.variants.every((v) => v.placeholder === undefined)).toBe(true);
    expect(buildCompletionEvent(ok.manifest, '//t', new Date()).attributes.variants).toBeUndefined();
  });

  test('per profile: a profile with its own placeholder gets it, the default profile keeps none', async () => {
    const profiles = JSON.stringify({ chat: { analysis: { blockedPlaceholder: 'neutral' } } });
    const { run } = setup({ PIXELPIPE_PROFILES: profiles });
    const chat = await run(photo, { 'pixelpipe-profile': 'chat' });
    expect(chat.status === 'failed' && chat.manifest.variants.length).toBe(4);
    const plain = await run(photo);
    expect(plain.status === 'failed' && plain.manifest.variants).toEqual([]);
  });
});
