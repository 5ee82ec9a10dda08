/**
 * Deterministic test/benchmark image fixtures, generated in memory with sharp.
 *
 * Everything photographic is derived from the real photos committed in `samples/`
 * (see samples/LICENSES.md), so JPEG/PNG/WebP encoders see photo-like content rather
 * than flat colours. Only sharp, node built-ins and the committed sample files are
 * used: nothing here needs network access or system packages.
 *
 * Determinism: for a given sharp/libvips version every function returns the same
 * bytes on every call (all noise comes from a seeded PRNG, never Math.random).
 *
 * Used by jest tests (imported as TypeScript through @swc/jest) and by the CLI
 * `scripts/gen-fixtures.mjs`, which transpiles this file with esbuild.
 */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import sharp, { type Sharp } from 'sharp';

// ---------------------------------------------------------------------------
// Samples
// ---------------------------------------------------------------------------

/** Absolute path of the repository's `samples/` directory. */
export const SAMPLES_DIR: string = process.env.PIXELPIPE_SAMPLES_DIR ?? path.resolve(__dirname, '..', 'samples');

/** Real photographs committed in samples/ (all decodable by sharp). */
export const PHOTO_SAMPLES = [
  'landscape.jpg', // 1600x1065, progressive, no metadata
  'dandelions.jpg', // 1600x900, progressive, no metadata, lots of fine detail
  'portrait-exif6.jpg', // stored 1500x1000 + EXIF Orientation=6 => displays 1000x1500
  'camera-exif.jpg', // 1600x1067, real Canon EOS 400D EXIF (Make/Model/exposure/thumbnail)
  'fig-gps.jpg', // 1400x947, synthetic EXIF GPS
] as const;
export type PhotoSample = (typeof PHOTO_SAMPLES)[number];

/** Every committed sample, including the ones sharp cannot decode. */
export const SAMPLE_FILES = [...PHOTO_SAMPLES, 'corrupt.jpg', 'phone.heic'] as const;
export type SampleFile = (typeof SAMPLE_FILES)[number];

const sampleCache = new Map<string, Buffer>();

export function samplePath(name: SampleFile): string {
  return path.join(SAMPLES_DIR, name);
}

/** Bytes of a committed sample file (cached; callers must not mutate the Buffer). */
export function readSample(name: SampleFile): Buffer {
  let buf = sampleCache.get(name);
  if (!buf) {
    buf = readFileSync(samplePath(name));
    sampleCache.set(name, buf);
  }
  return buf;
}

// ---------------------------------------------------------------------------
// Deterministic randomness
// ---------------------------------------------------------------------------

/** xorshift32 stream; `seed` 0 is remapped (xorshift must not start at 0). */
function xorshift32(seed: number): () => number {
  let s = seed >>> 0 || 0x9e3779b9;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

/** `n` pseudo-random bytes from a seeded PRNG: same (n, seed) => same bytes. */
export function randomBytes(n: number, seed = 1): Buffer {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`randomBytes: bad length ${n}`);
  const next = xorshift32(seed);
  const out = Buffer.allocUnsafe(n);
  let i = 0;
  for (; i + 4 <= n; i += 4) out.writeUInt32LE(next(), i);
  if (i < n) {
    const last = next();
    for (let k = 0; i < n; i++, k++) out[i] = (last >>> (8 * k)) & 0xff;
  }
  return out;
}

/**
 * Single-channel film-grain layer: mid-grey (128) plus approximately Gaussian noise
 * with standard deviation ~`sigma` (sum of four uniform bytes).
 */
function grainLayer(width: number, height: number, sigma: number, seed: number): Buffer {
  const lut = new Uint8Array(1021);
  for (let sum = 0; sum <= 1020; sum++) {
    const v = 128 + ((sum / 4 - 127.5) * sigma) / 36.95;
    lut[sum] = v < 0 ? 0 : v > 255 ? 255 : Math.round(v);
  }
  const next = xorshift32(seed);
  const n = width * height;
  const out = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) {
    const r = next();
    out[i] = lut[(r & 0xff) + ((r >>> 8) & 0xff) + ((r >>> 16) & 0xff) + (r >>> 24)];
  }
  return out;
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

export type ExifOrientation = 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8;

interface RawImage {
  data: Buffer;
  width: number;
  height: number;
  channels: 1 | 2 | 3 | 4;
}

function assertDims(fn: string, width: number, height: number): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`${fn}: bad dimensions ${width}x${height}`);
  }
}

async function toRaw(img: Sharp): Promise<RawImage> {
  const { data, info } = await img.raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

function fromRaw(img: RawImage): Sharp {
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: img.channels } });
}

/** Auto-oriented sample, cover-cropped to `width`x`height`, as 8-bit sRGB raw (3 channels). */
async function photoRaw(width: number, height: number, source: PhotoSample = 'landscape.jpg'): Promise<RawImage> {
  return toRaw(sharp(readSample(source)).autoOrient().resize(width, height, { fit: 'cover', position: 'centre' }).removeAlpha().toColourspace('srgb'));
}

/**
 * Pixel transform that, once a viewer applies EXIF `orientation`, gives back the
 * original image: stored = inverse(orientation)(display). Each step is its own
 * pipeline because sharp applies rotate/flip/flop in a fixed internal order.
 */
async function inverseOrientation(img: RawImage, orientation: ExifOrientation): Promise<RawImage> {
  type Step = (s: Sharp) => Sharp;
  const table: Record<ExifOrientation, Step[]> = {
    1: [],
    2: [(s) => s.flop()],
    3: [(s) => s.rotate(180)],
    4: [(s) => s.flip()],
    5: [(s) => s.rotate(90), (s) => s.flop()], // transpose (self-inverse)
    6: [(s) => s.rotate(270)], // display = rotate 90° CW  => store rotated 90° CCW
    7: [(s) => s.rotate(90), (s) => s.flip()], // transverse (self-inverse)
    8: [(s) => s.rotate(90)], // display = rotate 90° CCW => store rotated 90° CW
  };
  const steps = table[orientation];
  let out = img;
  for (const step of steps) out = await toRaw(step(fromRaw(out)));
  return out;
}

// ---------------------------------------------------------------------------
// Photo-like JPEGs
// ---------------------------------------------------------------------------

export interface PhotoJpegOptions {
  /** Progressive (interlaced) scan. Default false (baseline, as cameras write). */
  progressive?: boolean;
  /**
   * Write this EXIF Orientation tag (with an sRGB ICC profile, via sharp withMetadata).
   * Pixels are stored so the photo displays upright once the tag is honoured; for 5-8
   * the stored size is the requested (landscape) size and the displayed size is swapped,
   * exactly like a phone held in portrait. Default: no EXIF at all.
   */
  orientation?: ExifOrientation;
  /** JPEG quality 1-100. Default 90 (typical camera output). */
  quality?: number;
  /** Width/height ratio of the stored image. Default 4/3 below 20 MP, 3/2 from 20 MP. */
  aspect?: number;
  /** Grain standard deviation in 8-bit levels (0 = none). Default 12 (~ high-ISO phone shot). */
  grain?: number;
  /** PRNG seed for the grain. Default 1. */
  seed?: number;
  /** Which committed photo to upscale. Default 'landscape.jpg'. */
  source?: PhotoSample;
}

/**
 * Stored pixel dimensions photoJpeg uses for `megapixels`:
 * 12 => 4000x3000, 24 => 6000x4000, 2 => 1633x1225 (4:3), ...
 */
export function photoDimensions(megapixels: number, aspect?: number): { width: number; height: number } {
  if (!(megapixels > 0)) throw new RangeError(`photoDimensions: bad megapixels ${megapixels}`);
  const a = aspect ?? (megapixels >= 20 ? 3 / 2 : 4 / 3);
  const width = Math.max(1, Math.round(Math.sqrt(megapixels * 1e6 * a)));
  const height = Math.max(1, Math.round(width / a));
  return { width, height };
}

/**
 * A camera-like JPEG of about `megapixels` MP: a committed real photo upscaled to
 * size plus seeded luminance grain, so it compresses (and decodes) like a real photo.
 * Roughly 3.9 MB at 12 MP and 7.6 MB at 24 MP with the defaults; ~1 s / ~2.5 s to generate.
 */
export async function photoJpeg(megapixels: number, opts: PhotoJpegOptions = {}): Promise<Buffer> {
  const { width, height } = photoDimensions(megapixels, opts.aspect);
  const orientation = opts.orientation;
  const grain = opts.grain ?? 12;
  const quality = opts.quality ?? 90;

  // Build the upright ("display") picture at sample resolution, then store it
  // inversely transformed so that honouring the EXIF tag shows it upright.
  const swap = orientation !== undefined && orientation >= 5;
  const dispW = swap ? height : width;
  const dispH = swap ? width : height;
  const source = opts.source ?? 'landscape.jpg';
  const meta = await sharp(readSample(source)).autoOrient().metadata();
  const srcW = meta.autoOrient?.width ?? meta.width;
  const srcH = meta.autoOrient?.height ?? meta.height;
  const scale = Math.min(1, srcW / dispW, srcH / dispH) || 1;
  const small = await photoRaw(Math.max(1, Math.round(dispW * scale)), Math.max(1, Math.round(dispH * scale)), source);
  const stored = orientation ? await inverseOrientation(small, orientation) : small;

  let img = fromRaw(stored).resize(width, height, { fit: 'fill', kernel: 'lanczos3' });
  if (grain > 0) {
    const layer = grainLayer(width, height, grain, (opts.seed ?? 1) ^ (width * 31 + height));
    img = img.composite([{ input: layer, raw: { width, height, channels: 1 }, blend: 'overlay' }]);
  }
  img = img.jpeg({ quality, progressive: opts.progressive ?? false, chromaSubsampling: '4:2:0' });
  if (orientation) img = img.withMetadata({ orientation });
  return img.toBuffer();
}

/** Baseline sRGB JPEG of the sample at `width`x`height` (no metadata). */
export async function smallJpeg(width = 640, height = 480, source: PhotoSample = 'landscape.jpg'): Promise<Buffer> {
  assertDims('smallJpeg', width, height);
  return fromRaw(await photoRaw(width, height, source))
    .jpeg({ quality: 85 })
    .toBuffer();
}

/** 8-bit greyscale (1 channel, colourspace 'b-w') JPEG. */
export async function greyscaleJpeg(width: number, height: number): Promise<Buffer> {
  assertDims('greyscaleJpeg', width, height);
  return fromRaw(await photoRaw(width, height, 'dandelions.jpg'))
    .toColourspace('b-w')
    .jpeg({ quality: 85 })
    .toBuffer();
}

/**
 * CMYK JPEG (4 channels, Adobe-style inverted CMYK as libjpeg writes it).
 * No ICC profile by default, like many print-workflow files; `embedProfile`
 * converts with and embeds sharp's built-in CMYK profile (adds ~1 MB).
 */
export async function cmykJpeg(width: number, height: number, opts: { embedProfile?: boolean } = {}): Promise<Buffer> {
  assertDims('cmykJpeg', width, height);
  const img = fromRaw(await photoRaw(width, height));
  return (opts.embedProfile ? img.withIccProfile('cmyk') : img.toColourspace('cmyk')).jpeg({ quality: 85 }).toBuffer();
}

/**
 * JPEG with an embedded non-sRGB ICC profile: pixels converted to, and tagged as,
 * Display P3 (what iPhones and most recent Android phones write).
 */
export async function iccProfileJpeg(width: number, height: number, profile: 'p3' | 'cmyk' = 'p3'): Promise<Buffer> {
  assertDims('iccProfileJpeg', width, height);
  return fromRaw(await photoRaw(width, height, 'fig-gps.jpg'))
    .withIccProfile(profile)
    .jpeg({ quality: 85 })
    .toBuffer();
}

/** Synthetic GPS position written by jpegWithGps (and samples/fig-gps.jpg uses a similar one). */
export const GPS_FIXTURE = {
  latitude: 48.858222, // 48° 51' 29.6" N
  longitude: 2.2945, // 2° 17' 40.2" E
  exif: {
    GPSVersionID: '2 2 0 0',
    GPSLatitudeRef: 'N',
    GPSLatitude: '48/1 51/1 2960/100',
    GPSLongitudeRef: 'E',
    GPSLongitude: '2/1 17/1 4020/100',
    GPSAltitudeRef: '0',
    GPSAltitude: '35/1',
  },
  xmp: 'pixelpipe-fixture-xmp',
  iptc: 'pixelpipe-fixture-iptc',
} as const;

/**
 * Inserts an IPTC-IIM caption (dataset 2:120) as a Photoshop APP13 segment right after SOI. sharp can
 * keep IPTC but not write it, and news agencies' photos carry captions and bylines exactly this way.
 */
export function withIptcCaption(jpeg: Buffer, caption: string): Buffer {
  const text = Buffer.from(caption, 'utf8');
  const dataset = Buffer.concat([Buffer.from([0x1c, 0x02, 0x78, text.length >> 8, text.length & 0xff]), text]);
  const size = Buffer.alloc(4);
  size.writeUInt32BE(dataset.length);
  // Image resource 0x0404 (IPTC-NAA), empty Pascal name, data padded to an even length.
  const resource = Buffer.concat([Buffer.from('8BIM', 'latin1'), Buffer.from([0x04, 0x04, 0, 0]), size, dataset, Buffer.alloc(dataset.length % 2)]);
  const body = Buffer.concat([Buffer.from('Photoshop 3.0\0', 'latin1'), resource]);
  const marker = Buffer.from([0xff, 0xed, (body.length + 2) >> 8, (body.length + 2) & 0xff]);
  return Buffer.concat([jpeg.subarray(0, 2), marker, body, jpeg.subarray(2)]);
}

/**
 * 800x600 JPEG carrying privacy-sensitive metadata, to prove stripping:
 * EXIF IFD0 (Make/Model/Artist/Orientation=1), Exif IFD (DateTimeOriginal),
 * GPS IFD (GPS_FIXTURE), an XMP packet with a GPS position and a creator, and an IPTC caption.
 */
export async function jpegWithGps(): Promise<Buffer> {
  const xmp =
    '<?xpacket begin="\uFEFF" id="W5M0MpCehiHzreSzNTczkc9d"?>' +
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">' +
    '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:exif="http://ns.adobe.com/exif/1.0/"' +
    ` exif:GPSLatitude="48,51.4933N" exif:GPSLongitude="2,17.67E"><dc:creator><rdf:Seq><rdf:li>${GPS_FIXTURE.xmp}</rdf:li></rdf:Seq></dc:creator>` +
    '</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>';
  const jpeg = await fromRaw(await photoRaw(800, 600, 'fig-gps.jpg'))
    .jpeg({ quality: 85 })
    .withExif({
      IFD0: { Make: 'PixelPipe', Model: 'Fixture Cam', Artist: 'Fixture Author', Orientation: '1' },
      IFD2: { DateTimeOriginal: '2024:05:01 12:34:56' },
      IFD3: { ...GPS_FIXTURE.exif },
    })
    .withXmp(xmp)
    .toBuffer();
  return withIptcCaption(jpeg, GPS_FIXTURE.iptc);
}

/**
 * The 8 EXIF orientations of one asymmetric 64x32 JPEG (4:4:4, q95). Element i has
 * Orientation i+1. Stored pixels are identical in all eight: four flat quadrants
 * (see ORIENTATION_QUADRANTS), so after auto-orient 1-4 are 64x32 and 5-8 are 32x64,
 * with the corner colours given by ORIENTATION_EXPECTED_CORNERS.
 */
export async function exifOrientationSet(): Promise<Buffer[]> {
  const w = 64;
  const h = 32;
  const data = Buffer.alloc(w * h * 3);
  const { tl, tr, bl, br } = ORIENTATION_QUADRANTS;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const c = y < h / 2 ? (x < w / 2 ? tl : tr) : x < w / 2 ? bl : br;
      data.set(c, (y * w + x) * 3);
    }
  }
  const out: Buffer[] = [];
  for (let o = 1; o <= 8; o++) {
    out.push(
      await sharp(data, { raw: { width: w, height: h, channels: 3 } })
        .jpeg({ quality: 95, chromaSubsampling: '4:4:4' })
        .withMetadata({ orientation: o })
        .toBuffer(),
    );
  }
  return out;
}

type Rgb = readonly [number, number, number];
/** Colours of the stored (un-oriented) quadrants used by exifOrientationSet. */
export const ORIENTATION_QUADRANTS: { tl: Rgb; tr: Rgb; bl: Rgb; br: Rgb } = {
  tl: [255, 0, 0], // red
  tr: [0, 255, 0], // green
  bl: [0, 0, 255], // blue
  br: [255, 255, 255], // white
};
/**
 * Which stored quadrant appears at each corner of the correctly auto-oriented image,
 * per EXIF orientation (e.g. 6 = "rotate 90° CW": the stored bottom-left lands top-left).
 */
export const ORIENTATION_EXPECTED_CORNERS: Record<
  ExifOrientation,
  {
    tl: keyof typeof ORIENTATION_QUADRANTS;
    tr: keyof typeof ORIENTATION_QUADRANTS;
    bl: keyof typeof ORIENTATION_QUADRANTS;
    br: keyof typeof ORIENTATION_QUADRANTS;
  }
> = {
  1: { tl: 'tl', tr: 'tr', bl: 'bl', br: 'br' },
  2: { tl: 'tr', tr: 'tl', bl: 'br', br: 'bl' },
  3: { tl: 'br', tr: 'bl', bl: 'tr', br: 'tl' },
  4: { tl: 'bl', tr: 'br', bl: 'tl', br: 'tr' },
  5: { tl: 'tl', tr: 'bl', bl: 'tr', br: 'br' },
  6: { tl: 'bl', tr: 'tl', bl: 'br', br: 'tr' },
  7: { tl: 'br', tr: 'tr', bl: 'bl', br: 'tl' },
  8: { tl: 'tr', tr: 'br', bl: 'tl', br: 'bl' },
};

/** A real JPEG (800x533 baseline) cut off half way through its scan data: no EOI marker. */
export async function truncatedJpeg(): Promise<Buffer> {
  const full = await smallJpeg(800, 533);
  return Buffer.from(full.subarray(0, Math.floor(full.length / 2)));
}

// ---------------------------------------------------------------------------
// PNG / alpha
// ---------------------------------------------------------------------------

/** Deterministic alpha mask: opaque centre, smooth radial fade, fully transparent corners. */
function vignetteAlpha(width: number, height: number): Buffer {
  const a = Buffer.alloc(width * height);
  const cx = (width - 1) / 2;
  const cy = (height - 1) / 2;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const dx = cx > 0 ? (x - cx) / cx : 0;
      const dy = cy > 0 ? (y - cy) / cy : 0;
      const d = Math.sqrt(dx * dx + dy * dy); // 0 centre, ~1.41 corners
      const t = Math.min(1, Math.max(0, (d - 0.6) / 0.6));
      a[y * width + x] = Math.round(255 * (1 - t));
    }
  }
  return a;
}

async function photoWithAlpha(width: number, height: number): Promise<Sharp> {
  const rgb = await photoRaw(width, height, 'dandelions.jpg');
  return fromRaw(rgb).joinChannel(vignetteAlpha(width, height), { raw: { width, height, channels: 1 } });
}

/** 8-bit RGBA PNG: photo with a radial alpha vignette (transparent corners). */
export async function pngWithAlpha(width: number, height: number): Promise<Buffer> {
  assertDims('pngWithAlpha', width, height);
  return (await photoWithAlpha(width, height)).png({ compressionLevel: 6 }).toBuffer();
}

/** 16-bit-per-channel RGBA PNG (colourspace rgb16, depth ushort). */
export async function png16bitAlpha(width: number, height: number): Promise<Buffer> {
  assertDims('png16bitAlpha', width, height);
  const rgba8 = await (await photoWithAlpha(width, height)).png({ compressionLevel: 0 }).toBuffer();
  return sharp(rgba8).toColourspace('rgb16').png({ compressionLevel: 6 }).toBuffer();
}

/** Palette-based (indexed, PLTE) 8-bit PNG with 64 colours, no alpha. */
export async function palettePng(width: number, height: number): Promise<Buffer> {
  assertDims('palettePng', width, height);
  return fromRaw(await photoRaw(width, height))
    .png({ palette: true, colours: 64, dither: 1, effort: 7 })
    .toBuffer();
}

// ---------------------------------------------------------------------------
// Animation
// ---------------------------------------------------------------------------

/** `frames` frames panning across a photo, as one raw strip with pageHeight = height. */
async function panningStrip(width: number, height: number, frames: number): Promise<Sharp> {
  assertDims('animation', width, height);
  if (!Number.isInteger(frames) || frames < 1) throw new RangeError(`animation: bad frame count ${frames}`);
  const step = Math.max(1, Math.round(width / 40));
  const base = await photoRaw(width + (frames - 1) * step, height);
  const strip = Buffer.alloc(width * height * frames * 3);
  for (let f = 0; f < frames; f++) {
    for (let y = 0; y < height; y++) {
      const src = (y * base.width + f * step) * 3;
      base.data.copy(strip, (f * height + y) * width * 3, src, src + width * 3);
    }
  }
  return sharp(strip, { raw: { width, height: height * frames, channels: 3, pageHeight: height } });
}

/** Animated GIF: `frames` frames of `width`x`height`, 100 ms each, looping forever. */
export async function animatedGif(width: number, height: number, frames: number): Promise<Buffer> {
  return (await panningStrip(width, height, frames)).gif({ delay: Array.from({ length: frames }, () => 100), loop: 0, effort: 1 }).toBuffer();
}

/** Animated lossy WebP: `frames` frames of `width`x`height`, 100 ms each, looping forever. */
export async function animatedWebp(width: number, height: number, frames: number): Promise<Buffer> {
  return (await panningStrip(width, height, frames)).webp({ quality: 75, delay: Array.from({ length: frames }, () => 100), loop: 0 }).toBuffer();
}

// ---------------------------------------------------------------------------
// Hostile inputs
// ---------------------------------------------------------------------------

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(...parts: Buffer[]): number {
  let c = 0xffffffff;
  for (const p of parts) for (let i = 0; i < p.length; i++) c = CRC_TABLE[(c ^ p[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const t = Buffer.from(type, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(t, data));
  return Buffer.concat([len, t, data, crc]);
}

/** zlib stream of `rows` all-zero scanlines (filter byte 0 + zero pixels), without holding them in memory. */
async function deflateZeroRows(rowBytes: number, rows: number): Promise<Buffer> {
  const z = zlib.createDeflate({ level: 9, memLevel: 9 });
  const chunks: Buffer[] = [];
  z.on('data', (c: Buffer) => chunks.push(c));
  const ended = once(z, 'end');
  const rowsPerBlock = Math.max(1, Math.floor((4 << 20) / rowBytes));
  const block = Buffer.alloc(rowsPerBlock * rowBytes);
  for (let left = rows; left > 0; left -= rowsPerBlock) {
    const n = Math.min(rowsPerBlock, left);
    if (!z.write(n === rowsPerBlock ? block : block.subarray(0, n * rowBytes))) await once(z, 'drain');
  }
  z.end();
  await ended;
  return Buffer.concat(chunks);
}

/**
 * The "billion laughs" SVG: ten levels of entities, each ten times the one before, so a parser that
 * expands entities builds 10^10 copies of "a" from a 1 KB document.
 */
export function billionLaughsSvg(): Buffer {
  const ns = 'xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"';
  const levels = Array.from({ length: 9 }, (_, i) => `<!ENTITY ${String.fromCharCode(98 + i)} "${`&${String.fromCharCode(97 + i)};`.repeat(10)}">`);
  return Buffer.from(
    `<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa">${levels.join('')}]><svg ${ns} width="20" height="20"><text>&j;</text></svg>`,
  );
}

/**
 * Decompression bomb: a valid, tiny (~110 KB for 30000x30000) 1-bit paletted PNG whose
 * IHDR declares `width`x`height` (900 MP; ~2.7 GB once expanded to RGB). Every pixel is
 * palette index 0 (black). Hand-assembled, so it's fast (~1 s) and never decoded here.
 */
export async function decompressionBombPng(width = 30000, height = 30000): Promise<Buffer> {
  assertDims('decompressionBombPng', width, height);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 1; // bit depth
  ihdr[9] = 3; // colour type: indexed
  ihdr[10] = 0; // deflate
  ihdr[11] = 0; // adaptive filtering
  ihdr[12] = 0; // no interlace
  const plte = Buffer.from([0, 0, 0, 255, 255, 255]);
  const idat = await deflateZeroRows(1 + Math.ceil(width / 8), height);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('PLTE', plte),
    pngChunk('IDAT', idat),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}
