/**
 * Encodes the analysis rung (raw pixels, ≤ 640 px) as a JPEG for the cloud analyzers, which take
 * encoded images only (Vision: `image.content`; Rekognition: `Image.Bytes`, JPEG or PNG).
 *
 * Why JPEG and not PNG: a 640 px photo is ≈ 40–80 KB as JPEG q85 against ≈ 500 KB–1 MB as PNG, and
 * both services bill per image, not per byte, so the smaller upload is pure latency saved. q85 keeps
 * faces and textures well above what either detector needs at this size.
 */
import sharp from 'sharp';
import type { AnalysisPixels, NormalizedBox } from '../ports';

/** Quality of the analysis JPEG (see the module comment). */
export const ANALYSIS_JPEG_QUALITY = 85;

/**
 * JPEG of `pixels`, same dimensions. Alpha is flattened onto white (JPEG has none, and a transparent
 * area that came out black would read as content); grey stays grey.
 */
export async function encodeAnalysisJpeg(pixels: AnalysisPixels, quality = ANALYSIS_JPEG_QUALITY): Promise<Buffer> {
  const { data, width, height, channels } = pixels;
  if (data.length !== width * height * channels) {
    throw new RangeError(`analysis pixels: ${data.length} bytes for ${width}×${height}×${channels}`);
  }
  let image = sharp(data, { raw: { width, height, channels } });
  if (channels === 2 || channels === 4) image = image.flatten({ background: '#ffffff' });
  return image.jpeg({ quality, mozjpeg: false }).toBuffer();
}

function clamp01(v: number): number {
  return Number.isFinite(v) ? Math.min(1, Math.max(0, v)) : 0;
}

/**
 * The part of a box (fractions of the frame) that lies inside the frame. Providers return boxes that
 * reach past the edges for faces cut by them (Rekognition documents negative `Left`/`Top`); the
 * port promises boxes within [0, 1], so the edges are clamped, not the origin and size separately.
 */
export function clampBox(left: number, top: number, width: number, height: number): NormalizedBox {
  const l = clamp01(left);
  const t = clamp01(top);
  return { left: l, top: t, width: Math.max(0, clamp01(left + width) - l), height: Math.max(0, clamp01(top + height) - t) };
}
