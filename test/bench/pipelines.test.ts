/**
 * The benchmark's three pipelines make the same set of outputs, and the baseline does the work the
 * Firebase extension does (three decodes and three encodes per output); the worker's tasks run end to
 * end in-process on a small photo.
 */
import '../../scripts/bench/root';
import sharp from 'sharp';
import { photoJpeg, pngWithAlpha, readSample } from '../../scripts/fixtures';
import {
  benchSetup,
  firebaseAccepts,
  lowerBoundOutputs,
  pixelpipeOutputs,
  planLowerBound,
  runFirebaseBaseline,
  runLowerBound,
  runPixelpipe,
  type OutputInfo,
} from '../../scripts/bench/pipelines';
import { runTask, type CompareResult, type RssResult, type ThroughputResult } from '../../scripts/bench/worker';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const setup = benchSetup();
const shape = (outs: OutputInfo[]) => outs.map((o) => `${o.variant}.${o.format} ${o.width}x${o.height}`).sort();

describe.each([
  ['camera JPEG', () => photoJpeg(2)],
  ['EXIF-rotated phone photo', () => Promise.resolve(readSample('portrait-exif6.jpg'))],
  ['PNG with alpha', () => pngWithAlpha(600, 400)],
])('%s', (_name, make) => {
  let input: Buffer;
  beforeAll(async () => {
    input = await make();
  });

  test('pixelpipe, baseline and lower bound produce the same outputs, at the same sizes', async () => {
    const pp = pixelpipeOutputs(await runPixelpipe(setup, input));
    const fb = await runFirebaseBaseline(input, setup.config.variants);
    const lb = await lowerBoundOutputs(await planLowerBound(setup, input));
    expect(shape(fb.outputs)).toEqual(shape(pp));
    expect(shape(lb)).toEqual(shape(pp));
    for (const o of fb.outputs) {
      const meta = await sharp(o.body).metadata();
      expect([meta.format, meta.width, meta.height]).toEqual([o.format, o.width, o.height]);
    }
  }, 120_000);

  test('the baseline decodes and encodes three times per output, like the extension', async () => {
    const fb = await runFirebaseBaseline(input, setup.config.variants);
    expect(fb.decodes).toBe(3 * fb.outputs.length);
    expect(fb.encodes).toBe(3 * fb.outputs.length);
  });
});

test('the lower bound times one decode plus one encode per output', async () => {
  const plan = await planLowerBound(setup, await photoJpeg(2));
  const outputs = setup.config.variants.reduce((n, v) => n + v.formats.length, 0);
  expect(plan.encodes).toHaveLength(outputs);
  expect(plan.decodeTo).toEqual({ width: 1633, height: 1225 });
  const t = await runLowerBound(plan);
  expect(Object.keys(t.encodes)).toHaveLength(outputs);
  const sum = t.decode.cpuMs + Object.values(t.encodes).reduce((s, e) => s + e.cpuMs, 0);
  expect(t.total.cpuMs).toBeCloseTo(sum, 6);
});

test('the extension does not take HEIC; it takes JPEG and PNG', async () => {
  expect(await firebaseAccepts(readSample('phone.heic'))).toBe(false);
  expect(await firebaseAccepts(readSample('landscape.jpg'))).toBe(true);
  expect(await firebaseAccepts(await pngWithAlpha(20, 20))).toBe(true);
});

describe('worker tasks, in-process', () => {
  let dir: string;
  let file: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pixelpipe-bench-'));
    file = join(dir, 'photo.jpg');
    writeFileSync(file, await photoJpeg(1));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('compare interleaves the three pipelines and scores quality', async () => {
    const r = (await runTask({
      kind: 'compare',
      file,
      iterations: 2,
      warmup: 0,
      methods: ['pixelpipe', 'baseline', 'lowerBound'],
      quality: true,
    })) as CompareResult;
    for (const m of ['pixelpipe', 'baseline', 'lowerBound'] as const) {
      expect(r.methods[m]!.cpu.n).toBe(2);
      expect(r.methods[m]!.outputs).toHaveLength(9);
      expect(r.methods[m]!.bytes.webp).toBeGreaterThan(0);
    }
    expect(r.breakdown.baselinePasses).toEqual({ decodes: 27, encodes: 27 });
    expect(Object.keys(r.breakdown.lowerBoundEncodes!)).toHaveLength(9);
    expect(r.quality!.every((q) => q.ssim > 0.8 && q.ssim <= 1)).toBe(true);
    // Per-round ratios: the baseline is slower than pixelpipe, pixelpipe slower than its own bound.
    expect(r.paired.speedupCpu).toBeGreaterThan(1);
    expect(r.paired.overBoundCpu).toBeGreaterThan(0.8);
    // The middle half of the per-round ratios brackets their median.
    const [lo, hi] = r.paired.overBoundCpuSpread!;
    expect(lo).toBeLessThanOrEqual(r.paired.overBoundCpu!);
    expect(hi).toBeGreaterThanOrEqual(r.paired.overBoundCpu!);
    expect(r.paired.speedupCpuSpread![0]).toBeLessThanOrEqual(r.paired.speedupCpu!);
  }, 60_000);

  test('rss reports an outcome and memory; throughput reports images per second', async () => {
    const r = (await runTask({ kind: 'rss', file, method: 'pixelpipe', repeat: 1 })) as RssResult;
    expect(r.outcome).toBe('ok');
    expect(r.maxRssBytes).toBeGreaterThan(r.idleRssBytes / 2);
    const refused = (await runTask({ kind: 'rss', file, method: 'pixelpipe', repeat: 1, env: { PIXELPIPE_MAX_INPUT_PIXELS: '1000' } })) as RssResult;
    expect(refused.outcome).toBe('refused: too_many_pixels');
    const t = (await runTask({ kind: 'throughput', files: [file], inflight: 2, renders: 2 })) as ThroughputResult;
    expect(t.renders).toBe(2);
    expect(t.imagesPerSecond).toBeGreaterThan(0);
  }, 60_000);
});
