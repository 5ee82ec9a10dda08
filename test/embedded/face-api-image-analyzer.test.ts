import { existsSync } from 'node:fs';
import { FaceApiImageAnalyzer, faceApiAssetDirs } from '../../functions/embedded/face-api-image-analyzer';
import { TransientError } from '../../shared/errors';
import type { AnalysisPixels } from '../../shared/ports';
import { REFERENCE, analysisPixels, matchFaces } from '../support/faces';

// One analyzer for the file: the runtime is per process, and loading it once keeps the suite at a few seconds.
const analyzer = new FaceApiImageAnalyzer(faceApiAssetDirs(undefined, existsSync));

describe('FaceApiImageAnalyzer (real model, wasm backend)', () => {
  it('runs on the WebAssembly SIMD backend, not the silent pure-JS fallback', async () => {
    const info = await analyzer.load();
    expect(info).toMatchObject({ backend: 'wasm', simd: true });
    expect(analyzer.name).toBe('face-api/tiny_face_detector@448');
  });

  it('finds the reference faces (recall ≥ 90 %) with at most one false positive over all photos', async () => {
    let hits = 0;
    let falsePositives = 0;
    let total = 0;
    const perImage: Record<string, string> = {};
    for (const [name, reference] of Object.entries(REFERENCE.faces)) {
      const result = await analyzer.analyze(await analysisPixels(name), ['faces']);
      const m = matchFaces(
        reference,
        result.faces!.map((f) => f.box),
      );
      perImage[name] = `${m.hits}/${reference.length} (+${m.falsePositives})`;
      hits += m.hits;
      falsePositives += m.falsePositives;
      total += reference.length;
    }
    for (const name of REFERENCE.noFaces) {
      const result = await analyzer.analyze(await analysisPixels(name), ['faces']);
      perImage[name] = `0/0 (+${result.faces!.length})`;
      falsePositives += result.faces!.length;
    }
    console.log(`face recall ${hits}/${total}, false positives ${falsePositives}: ${JSON.stringify(perImage)}`);
    expect(total).toBe(24);
    expect(hits / total).toBeGreaterThanOrEqual(0.9);
    expect(falsePositives).toBeLessThanOrEqual(1);
  });

  it('returns boxes normalised to the image, so they hold for any rung of the same photo', async () => {
    const small = await analyzer.analyze(await analysisPixels('astronaut.jpg', 320), ['faces']);
    const large = await analyzer.analyze(await analysisPixels('astronaut.jpg', 512), ['faces']);
    expect(small.faces).toHaveLength(1);
    expect(large.faces).toHaveLength(1);
    for (const { box, score } of [...small.faces!, ...large.faces!]) {
      expect(box.left).toBeGreaterThanOrEqual(0);
      expect(box.top).toBeGreaterThanOrEqual(0);
      expect(box.left + box.width).toBeLessThanOrEqual(1);
      expect(box.top + box.height).toBeLessThanOrEqual(1);
      expect(score).toBeGreaterThan(0.4);
    }
    const [a, b] = [small.faces![0].box, large.faces![0].box];
    expect(Math.abs(a.left + a.width / 2 - (b.left + b.width / 2))).toBeLessThan(0.03);
    expect(Math.abs(a.top + a.height / 2 - (b.top + b.height / 2))).toBeLessThan(0.03);
  });

  it('reads grey and RGBA pixels as well as RGB', async () => {
    const rgb = await analysisPixels('astronaut.jpg');
    const n = rgb.width * rgb.height;
    const rgba = new Uint8Array(n * 4);
    const grey = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      rgba.set([rgb.data[i * 3], rgb.data[i * 3 + 1], rgb.data[i * 3 + 2], 255], i * 4);
      grey[i] = Math.round(0.299 * rgb.data[i * 3] + 0.587 * rgb.data[i * 3 + 1] + 0.114 * rgb.data[i * 3 + 2]);
    }
    const asRgba: AnalysisPixels = { ...rgb, data: rgba, channels: 4 };
    const asGrey: AnalysisPixels = { ...rgb, data: grey, channels: 1 };
    expect((await analyzer.analyze(asRgba, ['faces'])).faces).toEqual((await analyzer.analyze(rgb, ['faces'])).faces);
    expect((await analyzer.analyze(asGrey, ['faces'])).faces).toHaveLength(1);
  });

  it('reports moderation as unavailable and labels as not performed, never as ok', async () => {
    const result = await analyzer.analyze(await analysisPixels('astronaut.jpg'), ['faces', 'labels', 'moderation']);
    expect(result.moderation).toEqual({ verdict: 'unavailable', categories: [] });
    expect(result.labels).toBeUndefined();
    expect(result.unavailable).toEqual(['labels', 'moderation']);
    expect(result.analyzer).toBe('face-api/tiny_face_detector@448');
    expect(result.ms).toBeGreaterThanOrEqual(0);
  });

  it('does not start an inference past the deadline or after cancellation', async () => {
    const pixels = await analysisPixels('astronaut.jpg');
    await expect(analyzer.analyze(pixels, ['faces'], { deadline: Date.now() - 1 })).rejects.toBeInstanceOf(TransientError);
    const aborted = AbortSignal.abort(new Error('gone'));
    await expect(analyzer.analyze(pixels, ['faces'], { signal: aborted })).rejects.toMatchObject({ code: 'deadline_exceeded', retryable: true });
  });

  it('rejects pixel buffers shorter than their declared size', async () => {
    await expect(analyzer.analyze({ data: new Uint8Array(10), width: 10, height: 10, channels: 3 }, ['faces'])).rejects.toThrow(RangeError);
  });
});
