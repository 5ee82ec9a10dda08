/**
 * Test images for the load test: small real JPEGs cut from the sample photos, varied in source,
 * crop, orientation, tone and quality so that no two uploads in a pool are byte-identical and the
 * encoder sees different content.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';

/** Photos in `samples/` used as sources (the corrupt one is left out on purpose). */
export const SOURCE_SAMPLES = ['landscape.jpg', 'dandelions.jpg', 'camera-exif.jpg', 'portrait-exif6.jpg', 'fig-gps.jpg'];

const POSITIONS = ['centre', 'north', 'south', 'east', 'west', 'northeast', 'southwest', 'attention', 'entropy'] as const;

/** One generated image and what it should decode to. */
export interface LoadImage {
  body: Buffer;
  width: number;
  height: number;
  source: string;
}

/**
 * Makes `count` JPEGs of about `width`×`height` (every third one portrait, `height`×`width`).
 * Deterministic: the same arguments give the same pool.
 */
export async function makeImages(root: string, count: number, size: { width: number; height: number }): Promise<LoadImage[]> {
  const sources = SOURCE_SAMPLES.map((name) => ({ name, bytes: readFileSync(join(root, 'samples', name)) }));
  const out: LoadImage[] = [];
  for (let i = 0; i < count; i++) {
    const src = sources[i % sources.length];
    const portrait = i % 3 === 2;
    const width = portrait ? size.height : size.width;
    const height = portrait ? size.width : size.height;
    const position = POSITIONS[Math.floor(i / sources.length) % POSITIONS.length];
    const body = await sharp(src.bytes)
      .rotate()
      .resize(width, height, { fit: 'cover', position })
      .modulate({ brightness: 0.9 + (i % 7) * 0.03, saturation: 0.85 + (i % 5) * 0.07 })
      .jpeg({ quality: 70 + (i % 23) })
      .toBuffer();
    out.push({ body, width, height, source: src.name });
  }
  return out;
}
