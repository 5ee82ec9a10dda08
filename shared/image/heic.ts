/**
 * HEIC/HEIF (HEVC-coded, as phones write them). sharp's prebuilt libvips has no HEVC decoder, so these
 * go through libheif compiled to WebAssembly (`heic-decode`). Loaded lazily: most invocations never
 * see a HEIC, and the WebAssembly module costs cold-start time.
 */
import { ImageRejectedError } from '../errors';

interface HeicImage {
  width: number;
  height: number;
  decode(): Promise<{ width: number; height: number; data: Uint8ClampedArray }>;
}
type HeicAll = (opts: { buffer: Buffer }) => Promise<HeicImage[] & { dispose(): void }>;

let decoder: HeicAll | undefined;
function load(): HeicAll {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  decoder ??= (require('heic-decode') as { all: HeicAll }).all;
  return decoder;
}

/** Dimensions of the primary image, read from the container without decoding pixels. */
export async function probeHeic(buffer: Buffer): Promise<{ width: number; height: number; hasAlpha: boolean }> {
  let images: Awaited<ReturnType<HeicAll>>;
  try {
    images = await load()({ buffer });
  } catch (err) {
    throw new ImageRejectedError('corrupt_image', 'the HEIC container cannot be read', err);
  }
  try {
    const first = images[0];
    // libheif's display path always yields RGBA; whether alpha matters is unknown before decode.
    return { width: first.width, height: first.height, hasAlpha: false };
  } finally {
    images.dispose();
  }
}

/** Decodes the primary image to RGBA (libheif applies the container's rotation and mirroring). */
export async function decodeHeic(buffer: Buffer): Promise<{ width: number; height: number; data: Buffer }> {
  const images = await load()({ buffer });
  try {
    const { width, height, data } = await images[0].decode();
    return { width, height, data: Buffer.from(data.buffer, data.byteOffset, data.byteLength) };
  } catch (err) {
    throw new ImageRejectedError('corrupt_image', 'the HEIC image cannot be decoded', err);
  } finally {
    images.dispose();
  }
}
