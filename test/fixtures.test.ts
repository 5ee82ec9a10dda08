import { statSync } from 'node:fs';
import exifReader from 'exif-reader';
import { parse as parseIcc } from 'icc';
import sharp from 'sharp';
import {
  GPS_FIXTURE,
  ORIENTATION_EXPECTED_CORNERS,
  ORIENTATION_QUADRANTS,
  PHOTO_SAMPLES,
  SAMPLE_FILES,
  type ExifOrientation,
  animatedGif,
  animatedWebp,
  cmykJpeg,
  decompressionBombPng,
  exifOrientationSet,
  greyscaleJpeg,
  iccProfileJpeg,
  jpegWithGps,
  palettePng,
  photoDimensions,
  photoJpeg,
  png16bitAlpha,
  pngWithAlpha,
  randomBytes,
  readSample,
  samplePath,
  truncatedJpeg,
} from '../scripts/fixtures';

/** Mean absolute difference (0-255) of two encoded images after squashing both to 32x32 greyscale. */
async function meanAbsDiff(a: Buffer, b: Buffer): Promise<number> {
  const small = (x: Buffer) => sharp(x).resize(32, 32, { fit: 'fill' }).greyscale().raw().toBuffer();
  const [pa, pb] = await Promise.all([small(a), small(b)]);
  let sum = 0;
  for (let i = 0; i < pa.length; i++) sum += Math.abs(pa[i] - pb[i]);
  return sum / pa.length;
}

describe('committed samples', () => {
  it('stay small: each photo <= 400 KB, corrupt.jpg < 20 KB, phone.heic <= 150 KB, all <= 2 MB', () => {
    let total = 0;
    for (const name of SAMPLE_FILES) {
      const size = statSync(samplePath(name)).size;
      total += size;
      if (name === 'corrupt.jpg') expect(size).toBeLessThan(20 * 1024);
      else if (name === 'phone.heic') expect(size).toBeLessThanOrEqual(150 * 1024);
      else expect(size).toBeLessThanOrEqual(400 * 1024);
    }
    expect(total).toBeLessThanOrEqual(2 * 1024 * 1024);
  });

  it.each(PHOTO_SAMPLES)('%s is a decodable real-size sRGB JPEG', async (name) => {
    const img = sharp(readSample(name));
    const m = await img.metadata();
    expect(m.format).toBe('jpeg');
    expect(m.space).toBe('srgb');
    expect(Math.max(m.width, m.height)).toBeGreaterThanOrEqual(1000);
    expect(Math.max(m.width, m.height)).toBeLessThanOrEqual(2000);
    const { info } = await img.raw().toBuffer({ resolveWithObject: true });
    expect(info.width).toBe(m.width);
  });

  it('portrait-exif6.jpg is stored landscape with Orientation 6 and displays 1000x1500', async () => {
    const m = await sharp(readSample('portrait-exif6.jpg')).metadata();
    expect([m.width, m.height, m.orientation]).toEqual([1500, 1000, 6]);
    expect(m.autoOrient).toEqual({ width: 1000, height: 1500 });
  });

  it('camera-exif.jpg carries real camera EXIF; fig-gps.jpg carries GPS', async () => {
    const cam = exifReader((await sharp(readSample('camera-exif.jpg')).metadata()).exif!);
    expect(cam.Image?.Make).toBe('Canon');
    expect(cam.Image?.Model).toBe('Canon EOS 400D DIGITAL');
    // exif-reader reads EXIF's zone-less local time as UTC.
    expect(cam.Photo?.DateTimeOriginal).toEqual(new Date('2008-04-20T19:12:06Z'));
    const fig = exifReader((await sharp(readSample('fig-gps.jpg')).metadata()).exif!);
    expect(fig.GPSInfo?.GPSLatitudeRef).toBe('N');
    expect(fig.GPSInfo?.GPSLongitudeRef).toBe('E');
    expect(fig.GPSInfo?.GPSLatitude).toEqual([52, 30, 58.68]);
  });

  it('corrupt.jpg has a parseable header but fails to decode', async () => {
    const buf = readSample('corrupt.jpg');
    expect(buf.subarray(0, 3)).toEqual(Buffer.from([0xff, 0xd8, 0xff]));
    const m = await sharp(buf).metadata();
    expect([m.format, m.width, m.height]).toEqual(['jpeg', 480, 320]);
    await expect(sharp(buf).toBuffer()).rejects.toThrow(/corrupt|premature|truncat/i);
  });

  it('phone.heic is HEVC HEIF (header readable by sharp) and decodes with heic-decode', async () => {
    const buf = readSample('phone.heic');
    const m = await sharp(buf).metadata();
    expect([m.format, m.compression, m.width, m.height]).toEqual(['heif', 'hevc', 1200, 900]);
    expect(exifReader(m.exif!).GPSInfo?.GPSLatitudeRef).toBe('N');
    // sharp's prebuilt libvips has no HEVC decoder, hence heic-decode (libheif in WASM).
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const decode = require('heic-decode') as (o: { buffer: Buffer }) => Promise<{ width: number; height: number; data: Uint8ClampedArray }>;
    const out = await decode({ buffer: buf });
    expect([out.width, out.height, out.data.length]).toEqual([1200, 900, 1200 * 900 * 4]);
  });
});

describe('randomBytes', () => {
  it('is deterministic per seed and has the requested length', () => {
    const a = randomBytes(1001);
    expect(a.length).toBe(1001);
    expect(randomBytes(1001).equals(a)).toBe(true);
    expect(randomBytes(1001, 2).equals(a)).toBe(false);
    expect(new Set(a).size).toBeGreaterThan(200); // not degenerate
    expect(randomBytes(0)).toHaveLength(0);
  });
});

describe('photoJpeg', () => {
  it('maps megapixels to camera sizes', () => {
    expect(photoDimensions(12)).toEqual({ width: 4000, height: 3000 });
    expect(photoDimensions(24)).toEqual({ width: 6000, height: 4000 });
    expect(photoDimensions(2)).toEqual({ width: 1633, height: 1225 });
  });

  it('produces a deterministic, photo-like baseline JPEG without metadata', async () => {
    const a = await photoJpeg(2);
    const m = await sharp(a).metadata();
    expect([m.format, m.width, m.height, m.space, m.channels]).toEqual(['jpeg', 1633, 1225, 'srgb', 3]);
    expect(m.isProgressive).toBe(false);
    expect(m.exif).toBeUndefined();
    expect(m.orientation).toBeUndefined();
    // Grain + real content: well above what a flat or smooth image compresses to.
    expect(a.length / (1633 * 1225)).toBeGreaterThan(0.2);
    expect((await photoJpeg(2)).equals(a)).toBe(true);
  });

  it('produces a 12 MP 4000x3000 JPEG that is camera-sized (> 2 MB)', async () => {
    const buf = await photoJpeg(12);
    const m = await sharp(buf).metadata();
    expect([m.width, m.height]).toEqual([4000, 3000]);
    expect(buf.length).toBeGreaterThan(2_000_000);
  });

  it('honours progressive and quality', async () => {
    const p = await sharp(await photoJpeg(0.5, { progressive: true })).metadata();
    expect(p.isProgressive).toBe(true);
    const lo = await photoJpeg(0.5, { quality: 40 });
    const hi = await photoJpeg(0.5, { quality: 95 });
    expect(lo.length).toBeLessThan(hi.length);
  });

  it.each([1, 2, 3, 4, 5, 6, 7, 8] as ExifOrientation[])('orientation %i: tag set, and the picture is upright once auto-oriented', async (o) => {
    const buf = await photoJpeg(0.05, { orientation: o, grain: 0 });
    const m = await sharp(buf).metadata();
    const { width, height } = photoDimensions(0.05);
    expect([m.width, m.height, m.orientation]).toEqual([width, height, o]);
    const disp = o >= 5 ? { width: height, height: width } : { width, height };
    expect(m.autoOrient).toEqual(disp);
    // Compare with the sample cropped straight to the displayed size.
    const reference = await sharp(readSample('landscape.jpg')).resize(disp.width, disp.height, { fit: 'cover' }).toBuffer();
    const upright = await sharp(buf).autoOrient().toBuffer();
    expect(await meanAbsDiff(upright, reference)).toBeLessThan(6);
    // ...and the check does discriminate: the un-oriented pixels differ a lot (except 1).
    if (o !== 1) {
      const raw = await sharp(buf).resize(disp.width, disp.height, { fit: 'fill' }).toBuffer();
      expect(await meanAbsDiff(raw, reference)).toBeGreaterThan(12);
    }
  });
});

describe('format fixtures', () => {
  it('pngWithAlpha: 8-bit RGBA PNG, transparent corners, opaque centre', async () => {
    const buf = await pngWithAlpha(300, 200);
    const m = await sharp(buf).metadata();
    expect([m.format, m.width, m.height, m.channels, m.depth, m.hasAlpha]).toEqual(['png', 300, 200, 4, 'uchar', true]);
    const alpha = await sharp(buf).extractChannel(3).raw().toBuffer();
    expect(alpha[0]).toBe(0);
    expect(alpha[alpha.length - 1]).toBe(0);
    expect(alpha[100 * 300 + 150]).toBe(255);
  });

  it('png16bitAlpha: 16-bit RGBA PNG', async () => {
    const m = await sharp(await png16bitAlpha(300, 200)).metadata();
    expect([m.format, m.width, m.height, m.channels, m.depth, m.bitsPerSample, m.space, m.hasAlpha]).toEqual(['png', 300, 200, 4, 'ushort', 16, 'rgb16', true]);
  });

  it('palettePng: indexed PNG', async () => {
    const m = await sharp(await palettePng(300, 200)).metadata();
    expect([m.format, m.width, m.height, m.isPalette, m.bitsPerSample, m.hasAlpha]).toEqual(['png', 300, 200, true, 8, false]);
  });

  it('greyscaleJpeg: 1-channel b-w JPEG', async () => {
    const m = await sharp(await greyscaleJpeg(320, 240)).metadata();
    expect([m.format, m.width, m.height, m.channels, m.space]).toEqual(['jpeg', 320, 240, 1, 'b-w']);
  });

  it('cmykJpeg: 4-channel CMYK JPEG, profile only on request', async () => {
    const m = await sharp(await cmykJpeg(320, 240)).metadata();
    expect([m.format, m.width, m.height, m.channels, m.space, m.hasProfile]).toEqual(['jpeg', 320, 240, 4, 'cmyk', false]);
    const withProfile = await sharp(await cmykJpeg(64, 48, { embedProfile: true })).metadata();
    expect([withProfile.space, withProfile.hasProfile]).toEqual(['cmyk', true]);
  });

  it('iccProfileJpeg: embeds a Display P3 profile', async () => {
    const m = await sharp(await iccProfileJpeg(320, 240)).metadata();
    expect([m.format, m.width, m.height, m.hasProfile]).toEqual(['jpeg', 320, 240, true]);
    expect(parseIcc(m.icc!).description).toMatch(/P3/);
    // sanity: sharp's own sRGB output is described differently
    const srgb = await sharp(await greyscaleJpeg(8, 8))
      .toColourspace('srgb')
      .withIccProfile('srgb')
      .jpeg()
      .toBuffer();
    expect(parseIcc((await sharp(srgb).metadata()).icc!).description).toMatch(/sRGB/i);
  });

  it('animatedGif: N frames, 100 ms, looping', async () => {
    const buf = await animatedGif(64, 48, 5);
    const m = await sharp(buf, { animated: true }).metadata();
    expect([m.format, m.width, m.pageHeight, m.height, m.pages, m.loop]).toEqual(['gif', 64, 48, 48 * 5, 5, 0]);
    expect(m.delay).toEqual([100, 100, 100, 100, 100]);
    // frames really differ (panning), so it is a real animation
    const f0 = await sharp(buf, { page: 0 }).png().toBuffer();
    const f4 = await sharp(buf, { page: 4 }).png().toBuffer();
    expect(await meanAbsDiff(f0, f4)).toBeGreaterThan(1);
  });

  it('animatedWebp: N frames, 100 ms, looping', async () => {
    const m = await sharp(await animatedWebp(64, 48, 5), { animated: true }).metadata();
    expect([m.format, m.width, m.pageHeight, m.height, m.pages, m.loop]).toEqual(['webp', 64, 48, 48 * 5, 5, 0]);
    expect(m.delay).toEqual([100, 100, 100, 100, 100]);
  });
});

describe('exifOrientationSet', () => {
  it('returns orientations 1..8 of one 64x32 image that auto-orient to the expected layout', async () => {
    const set = await exifOrientationSet();
    expect(set).toHaveLength(8);
    for (let i = 0; i < 8; i++) {
      const o = (i + 1) as ExifOrientation;
      const m = await sharp(set[i]).metadata();
      expect([m.format, m.width, m.height, m.orientation]).toEqual(['jpeg', 64, 32, o]);
      const { data, info } = await sharp(set[i]).autoOrient().raw().toBuffer({ resolveWithObject: true });
      expect([info.width, info.height]).toEqual(o >= 5 ? [32, 64] : [64, 32]);
      const px = (x: number, y: number) => Array.from(data.subarray((y * info.width + x) * 3, (y * info.width + x) * 3 + 3));
      const [w, h] = [info.width, info.height];
      const at = { tl: px(4, 4), tr: px(w - 5, 4), bl: px(4, h - 5), br: px(w - 5, h - 5) };
      const expected = ORIENTATION_EXPECTED_CORNERS[o];
      for (const corner of ['tl', 'tr', 'bl', 'br'] as const) {
        const want = ORIENTATION_QUADRANTS[expected[corner]];
        at[corner].forEach((v, c) => expect(Math.abs(v - want[c])).toBeLessThan(40));
      }
    }
  });
});

describe('privacy and hostile-input fixtures', () => {
  it('jpegWithGps: EXIF GPS + camera tags + XMP + IPTC, all removed by a default sharp re-encode', async () => {
    const buf = await jpegWithGps();
    const m = await sharp(buf).metadata();
    expect([m.format, m.width, m.height]).toEqual(['jpeg', 800, 600]);
    const exif = exifReader(m.exif!);
    expect(exif.Image?.Make).toBe('PixelPipe');
    expect(exif.Photo?.DateTimeOriginal).toEqual(new Date('2024-05-01T12:34:56Z'));
    expect(exif.GPSInfo?.GPSLatitudeRef).toBe(GPS_FIXTURE.exif.GPSLatitudeRef);
    expect(exif.GPSInfo?.GPSLatitude).toEqual([48, 51, 29.6]);
    expect(exif.GPSInfo?.GPSLongitudeRef).toBe(GPS_FIXTURE.exif.GPSLongitudeRef);
    expect(exif.GPSInfo?.GPSLongitude).toEqual([2, 17, 40.2]);
    expect(m.xmpAsString).toContain(GPS_FIXTURE.xmp);
    expect(m.iptc?.toString('utf8')).toContain(GPS_FIXTURE.iptc);
    const stripped = await sharp(await sharp(buf).jpeg().toBuffer()).metadata();
    expect([stripped.exif, stripped.xmp, stripped.iptc]).toEqual([undefined, undefined, undefined]);
  });

  it('decompressionBombPng: declares 30000x30000, is < 2 MB, and sharp refuses to decode it', async () => {
    const buf = await decompressionBombPng(30000, 30000);
    expect(buf.length).toBeLessThan(2 * 1024 * 1024);
    // Note: sharp's metadata() itself enforces limitInputPixels, so lift it to read the header.
    const m = await sharp(buf, { limitInputPixels: false }).metadata();
    expect([m.format, m.width, m.height, m.isPalette, m.bitsPerSample]).toEqual(['png', 30000, 30000, true, 1]);
    await expect(sharp(buf).metadata()).rejects.toThrow(/pixel limit/i);
    await expect(sharp(buf).resize(100).toBuffer()).rejects.toThrow(/pixel limit/i);
  });

  it('decompressionBombPng: smaller declared sizes are valid, fully decodable PNGs', async () => {
    const { data, info } = await sharp(await decompressionBombPng(100, 50))
      .raw()
      .toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([100, 50]);
    expect(data.every((v) => v === 0)).toBe(true);
  });

  it('truncatedJpeg: real header, no EOI, fails to decode', async () => {
    const buf = await truncatedJpeg();
    expect(buf.subarray(0, 2)).toEqual(Buffer.from([0xff, 0xd8]));
    expect(buf.subarray(-2)).not.toEqual(Buffer.from([0xff, 0xd9]));
    const m = await sharp(buf).metadata();
    expect([m.format, m.width, m.height]).toEqual(['jpeg', 800, 533]);
    await expect(sharp(buf).toBuffer()).rejects.toThrow();
    expect((await truncatedJpeg()).equals(buf)).toBe(true);
  });
});
