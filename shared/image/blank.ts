/**
 * Placeholders for blocked images: every variant rendered from a flat image of one colour the size of
 * the original, so apps that link to `variants/<id>/thumb.webp` get a neutral image of the size and
 * format they expect instead of a 404. The blank is made from the probe alone: not one pixel of the
 * blocked image (not even a blurred or thumbhashed one) reaches a placeholder.
 */
import sharp from 'sharp';
import type { PixelpipeConfig, VariantSpec } from '../config';
import type { ImageProbe, RenderOptions, RenderedOutput, RenderResult } from '../ports';

type Encodable = 'jpeg' | 'png' | 'webp' | 'avif' | 'gif';
const MIME: Record<Encodable, string> = { jpeg: 'image/jpeg', png: 'image/png', webp: 'image/webp', avif: 'image/avif', gif: 'image/gif' };

/**
 * The blank's own format: the original's where sharp writes it, so `original` variants resolve to the
 * same format (and key) they would have had; otherwise what `original` falls back to for that input.
 */
function blankFormat(source: ImageProbe): Encodable {
  switch (source.format) {
    case 'jpeg':
    case 'png':
    case 'webp':
    case 'avif':
    case 'gif':
      return source.format;
    default:
      return source.hasAlpha ? 'png' : 'jpeg';
  }
}

/**
 * Renders `variants` with `render` (the processor's own, so geometry and encoders are the real ones)
 * from a flat `background` image of `source`'s oriented size, opaque or with alpha like the source.
 */
export async function renderBlank(
  render: (input: Buffer, variants: VariantSpec[], limits: PixelpipeConfig['limits'], options: RenderOptions) => Promise<RenderResult>,
  source: ImageProbe,
  variants: VariantSpec[],
  background: string,
  options: RenderOptions,
): Promise<RenderedOutput[]> {
  const format = blankFormat(source);
  const channels = source.hasAlpha ? 4 : 3;
  // Fastest encoder settings: the blank is decoded once and thrown away, and a flat image compresses to nothing anyway.
  const blank = await sharp({ create: { width: source.width, height: source.height, channels, background } })
    .toFormat(format, format === 'png' ? { compressionLevel: 1 } : format === 'avif' ? { effort: 0 } : format === 'webp' ? { effort: 0 } : {})
    .toBuffer();
  const pixels = source.width * source.height;
  const limits: PixelpipeConfig['limits'] = {
    maxInputBytes: Math.max(blank.length, 1),
    maxInputPixels: pixels,
    maxFrames: 1,
    allowedTypes: [MIME[format]],
    failOn: 'error',
    animated: false,
  };
  // No analysis of the blank, and no thumbhash: the manifest of a blocked image carries none.
  const result = await render(blank, variants, limits, { ...options, analyze: undefined, placeholder: false });
  return result.outputs;
}
