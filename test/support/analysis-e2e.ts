/**
 * What the two clouds' end-to-end analysis tests share (`test/gcp/process-bundle-vision.int.test.ts`,
 * `test/aws/process-bundle-rekognition.int.test.ts`): an EXIF-rotated upload with a marker, the faces
 * the fakes "see", the variants that crop on them, and the checks of a manifest against that scene.
 */
import sharp from 'sharp';
import type { Manifest } from '../../shared/manifest';

/** Stored 800×600 with EXIF orientation 6 (rotate 90° clockwise to view): the oriented original is 600×800. */
export const STORED = { width: 800, height: 600 };
export const ORIENTED = { width: 600, height: 800 };
/** The analysis rung of the oriented original: long side 640. */
export const RUNG = { width: 480, height: 640 };

/**
 * The upload: grey, with a pure red block in the stored top-left corner (80×60). Viewed upright that
 * corner is the top-right one, so a rung that was not oriented shows its red in the wrong place.
 */
export async function rotatedUpload(): Promise<Buffer> {
  const red = await sharp({ create: { width: 80, height: 60, channels: 3, background: { r: 255, g: 0, b: 0 } } })
    .png()
    .toBuffer();
  return sharp({ create: { width: STORED.width, height: STORED.height, channels: 3, background: { r: 128, g: 128, b: 128 } } })
    .composite([{ input: red, left: 0, top: 0 }])
    .jpeg({ quality: 90 })
    .withMetadata({ orientation: 6 })
    .toBuffer();
}

/** Mean RGB of a region of an image, in its own pixels. */
export async function meanRgb(image: Buffer, region: { left: number; top: number; width: number; height: number }): Promise<number[]> {
  const { data, info } = await sharp(image).extract(region).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const sum = [0, 0, 0];
  for (let i = 0; i < data.length; i += info.channels) for (let c = 0; c < 3; c++) sum[c] += data[i + c];
  return sum.map((v) => Math.round(v / (info.width * info.height)));
}

/** The rung was sent upright: the stored top-left red block is at its top right, not its top left. */
export async function expectUprightRung(rung: Buffer, expect: jest.Expect): Promise<void> {
  const [r, g, b] = await meanRgb(rung, { left: RUNG.width - 30, top: 5, width: 20, height: 20 });
  expect(r).toBeGreaterThan(200);
  expect(Math.max(g, b)).toBeLessThan(60);
  expect((await meanRgb(rung, { left: 5, top: 5, width: 20, height: 20 }))[0]).toBeLessThan(160);
}

/**
 * Two faces low in the upright frame, as fractions of the oriented image. A centred square crop of the
 * 600×800 original (rows 100–700) misses both; a `faces` crop must move down to hold them.
 */
export const SCENE_FACES = [
  { left: 0.1, top: 0.8, width: 0.15, height: 0.1 },
  { left: 0.6, top: 0.82, width: 0.12, height: 0.09 },
];

/** A square and a wide crop on the faces, a centred square, and a plain resize (no crop). */
export const VARIANTS = JSON.stringify([
  { name: 'square', width: 200, height: 200, fit: 'cover', position: 'faces', formats: ['webp'] },
  { name: 'wide', width: 320, height: 180, fit: 'cover', position: 'faces', formats: ['jpeg'] },
  { name: 'centre', width: 200, height: 200, fit: 'cover', formats: ['jpeg'] },
  { name: 'small', width: 300, formats: ['jpeg'] },
]);

/** The manifest's face boxes match the scene within a pixel of the rung they were found on. */
export function expectSceneFaces(m: Manifest, expect: jest.Expect): void {
  const faces = m.analysis?.faces ?? [];
  expect(faces).toHaveLength(SCENE_FACES.length);
  SCENE_FACES.forEach((want, i) => {
    for (const k of ['left', 'top', 'width', 'height'] as const) {
      expect(Math.abs(faces[i].box[k] - want[k])).toBeLessThanOrEqual(2 / RUNG.width);
    }
  });
}

/** Each `faces` crop holds every scene face (in oriented-original pixels) and has its variant's aspect ratio. */
export function expectFaceCrops(m: Manifest, expect: jest.Expect): void {
  for (const name of ['square', 'wide']) {
    const v = m.variants.find((x) => x.name === name)!;
    const crop = v.crop!;
    expect(crop).toBeDefined();
    expect(Math.abs(crop.width / crop.height - v.width / v.height)).toBeLessThan(0.02);
    for (const f of SCENE_FACES) {
      const face = {
        left: f.left * ORIENTED.width,
        top: f.top * ORIENTED.height,
        right: (f.left + f.width) * ORIENTED.width,
        bottom: (f.top + f.height) * ORIENTED.height,
      };
      expect({
        name,
        inside: crop.left <= face.left && crop.top <= face.top && crop.left + crop.width >= face.right && crop.top + crop.height >= face.bottom,
      }).toEqual({
        name,
        inside: true,
      });
    }
  }
}

/** The full-width square `name` crops, within a pixel (the crop is mapped back from a shrunk decode). */
export function expectFullWidthSquare(m: Manifest, name: string, expect: jest.Expect): { top: number } {
  const crop = m.variants.find((x) => x.name === name)!.crop!;
  expect(crop.left).toBe(0);
  expect(Math.abs(crop.width - ORIENTED.width)).toBeLessThanOrEqual(1);
  expect(Math.abs(crop.height - ORIENTED.width)).toBeLessThanOrEqual(1);
  return crop;
}

/** The centred square of the oriented original: rows 100–700. */
export function expectCentreSquare(m: Manifest, name: string, expect: jest.Expect): void {
  const { top } = expectFullWidthSquare(m, name, expect);
  expect(Math.abs(top - (ORIENTED.height - ORIENTED.width) / 2)).toBeLessThanOrEqual(1);
}

/**
 * An optional analysis that failed: processed, `analysis.error`, moderation `unavailable` (never `ok`),
 * no faces, every variant written; the centre crop centred and the `faces` square not placed on any face
 * (it falls back to sharp's attention crop of the same aspect).
 */
export function expectProcessedWithoutAnalysis(m: Manifest, analyzer: string, expect: jest.Expect): void {
  expect(m.status).toBe('processed');
  expect(m.analysis).toMatchObject({ analyzer, error: { code: 'analyzer_unavailable' }, moderation: { verdict: 'unavailable', categories: [] } });
  expect(m.analysis!.faces).toBeUndefined();
  expect(m.variants.map((v) => v.name).sort()).toEqual(['centre', 'small', 'square', 'wide']);
  expectCentreSquare(m, 'centre', expect);
  expectFullWidthSquare(m, 'square', expect);
}
