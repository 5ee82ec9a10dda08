/**
 * Animated GIF/WebP inputs go through the analyzer like stills: the first frame is analysed (faces place
 * the `faces` crops of every frame), and moderation also checks a few later frames, so that a blocked
 * animation cannot escape `PIXELPIPE_MODERATION=block` by being animated.
 */
import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { loadConfig } from '../../shared/config';
import { buildCompletionEvent } from '../../shared/events';
import { SharpImageProcessor } from '../../shared/image/sharp-image-processor';
import { boxInside } from '../../shared/image/smart-crop';
import { ANIMATION_MODERATED_FRAMES } from '../../shared/ports';
import { FakeImageAnalyzer } from '../../shared/testing/fake-image-analyzer';
import { FixedClock } from '../../shared/testing/fakes';
import { testInvocation } from '../../shared/testing/invocation';
import { MemoryObjectStore } from '../../shared/testing/memory-object-store';
import { createAnalysisStage } from '../../shared/usecases/analyze-image';
import { processImage, type ProcessDeps } from '../../shared/usecases/process-image';
import { REFERENCE, facePhotoPath } from '../support/faces';

const GROUP = 'group-1.jpg';
const FRAMES = 8;
const ID = '00000000-0000-4000-8000-0000000a11a7';
const VARIANTS = [
  { name: 'square', width: 120, height: 120, fit: 'cover', position: 'faces', formats: ['original', 'webp'] },
  { name: 'small', width: 240, formats: ['webp'] },
];
const referenceFaces = REFERENCE.faces[GROUP].map((box) => ({ box, score: 0.9 }));

let animation: Buffer;
let frameSize: { width: number; height: number };

beforeAll(async () => {
  // A real photo as an 8-frame animation: each frame the photo with a different brightness, so frames differ.
  const base = sharp(readFileSync(facePhotoPath(GROUP)))
    .autoOrient()
    .resize(480);
  const frames = await Promise.all(
    Array.from({ length: FRAMES }, (_, i) =>
      base
        .clone()
        .modulate({ brightness: 0.7 + i * 0.08 })
        .png()
        .toBuffer(),
    ),
  );
  animation = await sharp(frames, { join: { animated: true } })
    .gif({ delay: Array(FRAMES).fill(80) })
    .toBuffer();
  const meta = await sharp(animation, { animated: true }).metadata();
  expect(meta.pages).toBe(FRAMES);
  frameSize = { width: meta.width, height: meta.pageHeight! };
});

function setup(env: Record<string, string>, analyzer: FakeImageAnalyzer) {
  const config = loadConfig({
    PIXELPIPE_AUTH_MODE: 'anonymous',
    PIXELPIPE_PLACEHOLDER: 'false',
    PIXELPIPE_VARIANTS: JSON.stringify(VARIANTS),
    PIXELPIPE_ANALYZER: 'vision',
    ...env,
  });
  const store = new MemoryObjectStore();
  const deps: ProcessDeps = {
    store,
    processor: new SharpImageProcessor(),
    clock: new FixedClock(),
    config,
    analysis: createAnalysisStage(analyzer, config.analysis, { sleep: () => Promise.resolve() }),
  };
  const run = async () => {
    const info = await store.put(config.buckets.originals, `originals/alice/${ID}`, animation, { contentType: 'image/gif' });
    return processImage(deps, testInvocation(), { bucket: info.bucket, key: info.key, generation: info.generation });
  };
  return { config, store, run };
}

describe('animated images are analysed', () => {
  test('the first frame is analysed on the single decode; faces crops of every frame keep every reference face; the output stays animated', async () => {
    const analyzer = new FakeImageAnalyzer({ faces: referenceFaces });
    const { run, store, config } = setup({ PIXELPIPE_ANALYSES: 'faces' }, analyzer);
    const out = await run();
    expect(out.status).toBe('processed');
    if (out.status !== 'processed') return;
    // Faces only: later frames are not looked at (they are only moderated).
    expect(analyzer.calls).toHaveLength(1);
    expect([analyzer.calls[0].width, analyzer.calls[0].height]).toEqual([frameSize.width, frameSize.height]);
    expect(out.manifest.analysis?.faces).toHaveLength(referenceFaces.length);
    const square = out.manifest.variants.filter((v) => v.name === 'square');
    expect(square.map((v) => v.format).sort()).toEqual(['gif', 'webp']);
    for (const v of square) {
      expect([v.width, v.height]).toEqual([120, 120]);
      expect(v.crop).toBeDefined();
      for (const face of REFERENCE.faces[GROUP]) expect(boxInside(face, v.crop!, frameSize.width, frameSize.height, 2)).toBe(true);
      const meta = await sharp((await store.get(config.buckets.variants, v.key)).body).metadata();
      expect(meta.pages).toBe(FRAMES);
    }
    // Not a centre crop: the reference faces of this photo do not all fit the centred square.
    const centred = { left: Math.floor((frameSize.width - frameSize.height) / 2), top: 0, width: frameSize.height, height: frameSize.height };
    expect(REFERENCE.faces[GROUP].every((f) => boxInside(f, centred, frameSize.width, frameSize.height, 2))).toBe(false);
  });

  test(`moderation checks the first frame and ${ANIMATION_MODERATED_FRAMES} later ones; block stops an animation flagged only in its last frame`, async () => {
    const analyzer = new FakeImageAnalyzer();
    // Only the call for the last sampled frame finds anything.
    analyzer.onCall = () => {
      analyzer.moderation =
        analyzer.calls.length === 1 + ANIMATION_MODERATED_FRAMES
          ? { verdict: 'flagged', categories: [{ name: 'explicit', score: 0.95 }] }
          : { verdict: 'ok', categories: [] };
    };
    const { run, store, config } = setup({ PIXELPIPE_MODERATION: 'block' }, analyzer);
    const out = await run();
    expect(analyzer.calls.map((c) => c.analyses)).toEqual([
      ['faces', 'moderation'],
      ...Array.from({ length: ANIMATION_MODERATED_FRAMES }, () => ['moderation']),
    ]);
    for (const c of analyzer.calls) expect(Math.max(c.width, c.height)).toBeLessThanOrEqual(640);
    expect(out.status).toBe('failed');
    if (out.status !== 'failed') return;
    expect(out.manifest.reason?.code).toBe('content_blocked');
    expect(out.manifest.analysis?.moderation?.verdict).toBe('blocked');
    expect(out.manifest.analysis?.moderation?.categories).toEqual([{ name: 'explicit', score: 0.95 }]);
    expect((await store.list(config.buckets.variants, 'variants/')).items).toEqual([]);
    expect(buildCompletionEvent(out.manifest, '//t', new Date()).attributes).toMatchObject({ status: 'failed', moderation: 'blocked' });
  });

  test('a clean animation under block is processed with verdict ok after every sampled frame was checked', async () => {
    const analyzer = new FakeImageAnalyzer();
    const { run } = setup({ PIXELPIPE_MODERATION: 'block' }, analyzer);
    const out = await run();
    expect(out.status).toBe('processed');
    expect(analyzer.calls).toHaveLength(1 + ANIMATION_MODERATED_FRAMES);
    expect(out.status === 'processed' && out.manifest.analysis?.moderation?.verdict).toBe('ok');
  });
});
