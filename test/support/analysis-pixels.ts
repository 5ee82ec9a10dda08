/** Analysis rungs for the cloud analyzer tests: raw pixels of a drawn picture, with 1, 3 or 4 channels. */
import sharp from 'sharp';
import type { AnalysisPixels } from '../../shared/ports';

/** A `width`×`height` rung (half-transparent orange with a blue block) as an analyzer receives it. */
export async function analysisRung(width: number, height: number, channels: 1 | 3 | 4): Promise<AnalysisPixels> {
  const drawn = await sharp({ create: { width, height, channels: 4, background: { r: 200, g: 120, b: 40, alpha: 0.5 } } })
    .composite([{ input: { create: { width: Math.floor(width / 3), height: Math.floor(height / 3), channels: 3, background: '#2040c0' } } }])
    .png()
    .toBuffer();
  let image = sharp(drawn);
  image = channels === 4 ? image.ensureAlpha() : channels === 1 ? image.removeAlpha().toColourspace('b-w') : image.removeAlpha();
  const { data, info } = await image.raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== channels) throw new Error(`drew ${info.channels} channels, wanted ${channels}`);
  return { data, width: info.width, height: info.height, channels };
}
