/**
 * Valid but unusual images, end to end through the core: each must be PROCESSED, with outputs of the
 * right size, 8-bit sRGB, oriented, and (for animations) still animated where the format allows.
 */
import sharp, { type Sharp } from 'sharp';
import {
  ORIENTATION_EXPECTED_CORNERS,
  ORIENTATION_QUADRANTS,
  animatedGif,
  animatedWebp,
  cmykJpeg,
  exifOrientationSet,
  greyscaleJpeg,
  iccProfileJpeg,
  palettePng,
  photoJpeg,
  png16bitAlpha,
  readSample,
  type ExifOrientation,
} from '../../scripts/fixtures';
import { EVENT_TYPES } from '../../shared/events';
import { expectProcessed, harness, within } from './harness';

const CASE_MS = 20_000;
const SMALL = JSON.stringify([
  { name: 'thumb', width: 100, height: 100, fit: 'cover', formats: ['webp', 'jpeg'] },
  { name: 'small', width: 160, formats: ['webp', 'jpeg', 'png'] },
]);

async function pixel(buf: Buffer, x: number, y: number): Promise<number[]> {
  const { data, info } = await sharp(buf).raw().toBuffer({ resolveWithObject: true });
  const i = (y * info.width + x) * info.channels;
  return [...data.subarray(i, i + info.channels)];
}

/** Every frame as RGBA (encoders drop an all-opaque alpha channel, so normalise it back). */
async function frames(buf: Buffer): Promise<Buffer[]> {
  const { data, info } = await sharp(buf, { animated: true }).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  const pageHeight = info.pageHeight ?? info.height;
  const size = info.width * pageHeight * info.channels;
  return Array.from({ length: info.height / pageHeight }, (_, i) => data.subarray(i * size, (i + 1) * size));
}

/** Mean R, G, B of what a pipeline produces (stats() alone would describe the input, not the result). */
async function meanRgb(p: Sharp): Promise<number[]> {
  const { channels } = await sharp(await p.png().toBuffer()).stats();
  return channels.slice(0, 3).map((c) => c.mean);
}

function meanAbsDiff(a: Buffer, b: Buffer): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d += Math.abs(a[i] - b[i]);
  return d / a.length;
}

describe('valid but unusual images are processed correctly', () => {
  test(
    'CMYK JPEG → sRGB, 3-channel outputs',
    async () => {
      const h = harness({ PIXELPIPE_VARIANTS: SMALL });
      const input = await cmykJpeg(320, 240);
      expect((await sharp(input).metadata()).space).toBe('cmyk');
      const outs = await expectProcessed(h, await within(CASE_MS, h.run(input)));
      for (const o of outs) {
        expect(o.meta.space).toBe('srgb');
        expect(o.meta.channels).toBe(o.format === 'jpeg' ? 3 : o.meta.channels);
      }
      // Colours survive the conversion: compare with libvips' own CMYK→sRGB of the input, and with the
      // RGB photo the fixture was made from (CMYK's smaller gamut costs a little blue).
      const got = await meanRgb(sharp(outs.find((o) => o.name === 'small' && o.format === 'png')!.body));
      const ref = await meanRgb(sharp(input).resize(160).toColourspace('srgb'));
      const photo = await meanRgb(sharp(readSample('landscape.jpg')).resize(160, 120, { fit: 'cover' }));
      for (let c = 0; c < 3; c++) {
        expect(Math.abs(got[c] - ref[c])).toBeLessThan(2);
        expect(Math.abs(got[c] - photo[c])).toBeLessThan(20);
      }
    },
    CASE_MS,
  );

  test(
    '16-bit PNG with alpha → 8-bit outputs; alpha kept in WebP/PNG, flattened onto white in JPEG',
    async () => {
      const h = harness({ PIXELPIPE_VARIANTS: SMALL });
      const input = await png16bitAlpha(320, 240);
      expect((await sharp(input).metadata()).depth).toBe('ushort');
      const outs = await expectProcessed(h, await within(CASE_MS, h.run(input, { contentType: 'image/png' })));
      for (const o of outs) {
        expect(o.meta.depth).toBe('uchar');
        expect(o.meta.hasAlpha).toBe(o.format !== 'jpeg');
      }
      const png = outs.find((o) => o.name === 'small' && o.format === 'png')!;
      expect((await pixel(png.body, 0, 0))[3]).toBe(0); // transparent corner
      expect((await pixel(png.body, 80, 60))[3]).toBe(255); // opaque centre
      const jpg = outs.find((o) => o.name === 'small' && o.format === 'jpeg')!;
      expect(Math.min(...(await pixel(jpg.body, 1, 1)))).toBeGreaterThan(240);
    },
    CASE_MS,
  );

  test(
    'greyscale JPEG → outputs with R = G = B',
    async () => {
      const h = harness({ PIXELPIPE_VARIANTS: SMALL });
      const input = await greyscaleJpeg(320, 240);
      expect((await sharp(input).metadata()).channels).toBe(1);
      const outs = await expectProcessed(h, await within(CASE_MS, h.run(input)));
      const png = outs.find((o) => o.format === 'png')!;
      const { data, info } = await sharp(png.body).toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
      expect(info.channels).toBe(3);
      for (let i = 0; i < data.length; i += 3 * 31) expect(Math.abs(data[i] - data[i + 2])).toBeLessThanOrEqual(1);
    },
    CASE_MS,
  );

  test(
    'palette (indexed) PNG → full-colour outputs of the right size',
    async () => {
      const h = harness({ PIXELPIPE_VARIANTS: SMALL });
      const input = await palettePng(320, 240);
      expect((await sharp(input).metadata()).isPalette).toBe(true);
      const r = await within(CASE_MS, h.run(input, { contentType: 'image/png' }));
      const outs = await expectProcessed(h, r);
      expect(r.manifest.source).toMatchObject({ width: 320, height: 240, format: 'png' });
      expect(outs.find((o) => o.name === 'small')!.meta).toMatchObject({ width: 160, height: 120 });
    },
    CASE_MS,
  );

  test(
    'progressive JPEG → processed',
    async () => {
      const h = harness({ PIXELPIPE_VARIANTS: SMALL });
      const input = await photoJpeg(0.3, { progressive: true, grain: 0 });
      expect((await sharp(input).metadata()).isProgressive).toBe(true);
      const r = await within(CASE_MS, h.run(input));
      await expectProcessed(h, r);
      expect(r.manifest.source.width).toBe((await sharp(input).metadata()).width);
    },
    CASE_MS,
  );

  test(
    'EXIF orientations 1–8 all come out upright (corner colours), with displayed dimensions',
    async () => {
      const h = harness({ PIXELPIPE_VARIANTS: JSON.stringify([{ name: 'full', width: 64, height: 64, formats: ['png'] }]) });
      const set = await exifOrientationSet();
      for (let i = 0; i < 8; i++) {
        const o = (i + 1) as ExifOrientation;
        const r = await within(CASE_MS, h.run(set[i]));
        const [out] = await expectProcessed(h, r);
        const swapped = o >= 5;
        expect([r.manifest.source.width, r.manifest.source.height]).toEqual(swapped ? [32, 64] : [64, 32]);
        expect(out.meta.orientation).toBeUndefined();
        const w = out.meta.width - 1;
        const ht = out.meta.height - 1;
        const at = { tl: [3, 3], tr: [w - 3, 3], bl: [3, ht - 3], br: [w - 3, ht - 3] } as const;
        for (const corner of ['tl', 'tr', 'bl', 'br'] as const) {
          const want = ORIENTATION_QUADRANTS[ORIENTATION_EXPECTED_CORNERS[o][corner]];
          const got = await pixel(out.body, at[corner][0], at[corner][1]);
          for (let c = 0; c < 3; c++) expect(Math.abs(got[c] - want[c])).toBeLessThan(40);
        }
      }
    },
    CASE_MS,
  );

  test(
    'an embedded Display P3 profile is converted to sRGB (untagged output)',
    async () => {
      const h = harness({ PIXELPIPE_VARIANTS: JSON.stringify([{ name: 'p', width: 160, formats: ['png', 'jpeg'] }]) });
      const input = await iccProfileJpeg(320, 240, 'p3');
      expect((await sharp(input).metadata()).hasProfile).toBe(true);
      const outs = await expectProcessed(h, await within(CASE_MS, h.run(input)));
      const ref = await meanRgb(sharp(input).resize(160).toColourspace('srgb')); // libvips applies the embedded profile
      const asIs = await meanRgb(sharp(input).resize(160).keepIccProfile()); // the stored P3 numbers, unconverted
      // The fixture's P3 numbers differ visibly from sRGB ones (otherwise this test would prove nothing).
      expect(Math.abs(asIs[1] - ref[1])).toBeGreaterThan(4);
      for (const o of outs) {
        expect(o.meta.hasProfile).toBeFalsy();
        const got = await meanRgb(sharp(o.body));
        for (let c = 0; c < 3; c++) expect(Math.abs(got[c] - ref[c])).toBeLessThan(1.5);
      }
    },
    CASE_MS,
  );

  test(
    'HEIC from a phone (samples/phone.heic) → processed, landscape 4:3',
    async () => {
      const h = harness({ PIXELPIPE_VARIANTS: SMALL });
      const r = await within(CASE_MS, h.run(readSample('phone.heic'), { contentType: 'image/heic' }));
      const outs = await expectProcessed(h, r);
      expect(r.manifest.source).toMatchObject({ contentType: 'image/heic', width: 1200, height: 900 });
      expect(outs.find((o) => o.name === 'small')!.meta).toMatchObject({ width: 160, height: 120 });
      expect(r.event.type).toBe(EVENT_TYPES.processed);
    },
    CASE_MS,
  );
});

describe('animated inputs', () => {
  const VARIANTS = JSON.stringify([
    { name: 'thumb', width: 48, height: 48, fit: 'cover', formats: ['webp', 'original', 'jpeg'] },
    { name: 'small', width: 80, formats: ['webp', 'png', 'avif', 'original'] },
    { name: 'boxed', width: 100, height: 100, fit: 'contain', background: '#00ff00', formats: ['webp'] },
  ]);

  test(
    'animated GIF → animated WebP and GIF ("original") variants (all frames, delays, loop) and first-frame JPEG/PNG/AVIF',
    async () => {
      const h = harness({ PIXELPIPE_VARIANTS: VARIANTS });
      const input = await animatedGif(160, 120, 6);
      const r = await within(CASE_MS, h.run(input, { contentType: 'image/gif' }));
      const outs = await expectProcessed(h, r);
      expect(r.manifest.source).toMatchObject({ width: 160, height: 120, format: 'gif' });
      const by = (name: string, format: string) => outs.find((o) => o.name === name && o.format === format)!;
      expect(r.manifest.variants.map((v) => `${v.name}.${v.format}:${v.width}x${v.height}`)).toEqual([
        'thumb.gif:48x48',
        'thumb.jpeg:48x48',
        'thumb.webp:48x48',
        'small.avif:80x60',
        'small.gif:80x60',
        'small.png:80x60',
        'small.webp:80x60',
        'boxed.webp:100x100',
      ]);
      for (const [name, format] of [
        ['thumb', 'webp'],
        ['thumb', 'gif'],
        ['small', 'webp'],
        ['small', 'gif'],
        ['boxed', 'webp'],
      ]) {
        const m = await sharp(by(name, format).body, { animated: true }).metadata();
        expect({ name, format, pages: m.pages, loop: m.loop, delay: m.delay }).toEqual({
          name,
          format,
          pages: 6,
          loop: 0,
          delay: [100, 100, 100, 100, 100, 100],
        });
        // The frames really differ (the fixture pans across a photo).
        const f = await frames(by(name, format).body);
        expect(meanAbsDiff(f[0], f[5])).toBeGreaterThan(2);
      }
      for (const [name, format] of [
        ['thumb', 'jpeg'],
        ['small', 'png'],
        ['small', 'avif'],
      ]) {
        expect((await sharp(by(name, format).body).metadata()).pages ?? 1).toBe(1);
      }
      // The still is the animation's first frame.
      const first = (await frames(by('small', 'webp').body))[0];
      const still = await sharp(by('small', 'png').body).ensureAlpha().raw().toBuffer();
      expect(meanAbsDiff(first, still)).toBeLessThan(6);
      // contain pads every frame, not just the strip.
      const boxed = await frames(by('boxed', 'webp').body);
      for (const f of [boxed[0], boxed[5]]) {
        // (50, 0): the green band above the 100×75 frame (lossy WebP: within a few levels).
        const [r, g, b] = f.subarray(50 * 4, 50 * 4 + 3);
        expect([r < 10, g > 245, b < 10]).toEqual([true, true, true]);
      }
    },
    CASE_MS,
  );

  test(
    'animated WebP keeps its own delays and loop count',
    async () => {
      const h = harness({ PIXELPIPE_VARIANTS: JSON.stringify([{ name: 'v', width: 40, formats: ['webp', 'original'] }]) });
      const colours = ['#ff0000', '#00ff00', '#0000ff', '#ffff00'];
      const pages = await Promise.all(
        colours.map((c) =>
          sharp({ create: { width: 80, height: 60, channels: 3, background: c } })
            .png()
            .toBuffer(),
        ),
      );
      const input = await sharp(pages, { join: { animated: true } })
        .webp({ delay: [40, 80, 120, 160], loop: 3, lossless: true })
        .toBuffer();
      const r = await within(CASE_MS, h.run(input, { contentType: 'image/webp' }));
      const outs = await expectProcessed(h, r);
      for (const o of outs) {
        const m = await sharp(o.body, { animated: true }).metadata();
        expect([o.format, m.pages, m.delay, m.loop]).toEqual([o.format, 4, [40, 80, 120, 160], 3]);
        const f = await frames(o.body);
        expect([...f[1].subarray(0, 3)].map((v) => Math.round(v / 32))).toEqual([0, 8, 0]);
        expect([...f[2].subarray(0, 3)].map((v) => Math.round(v / 32))).toEqual([0, 0, 8]);
      }
    },
    CASE_MS,
  );

  test(
    'PIXELPIPE_ANIMATED=false → first frame only',
    async () => {
      const h = harness({ PIXELPIPE_ANIMATED: 'false', PIXELPIPE_VARIANTS: JSON.stringify([{ name: 'v', width: 80, formats: ['webp', 'original'] }]) });
      const r = await within(CASE_MS, h.run(await animatedWebp(160, 120, 5), { contentType: 'image/webp' }));
      for (const o of await expectProcessed(h, r)) expect((await sharp(o.body, { animated: true }).metadata()).pages ?? 1).toBe(1);
    },
    CASE_MS,
  );

  test(
    'an animation whose frames together exceed PIXELPIPE_MAX_ANIMATED_PIXELS → first frame only, not refused',
    async () => {
      // One 160×120 frame fits the budget; six do not.
      const h = harness({
        PIXELPIPE_MAX_ANIMATED_PIXELS: String(160 * 120 * 2),
        PIXELPIPE_VARIANTS: JSON.stringify([{ name: 'v', width: 80, formats: ['original', 'webp'] }]),
      });
      const r = await within(CASE_MS, h.run(await animatedGif(160, 120, 6), { contentType: 'image/gif' }));
      for (const o of await expectProcessed(h, r)) expect((await sharp(o.body, { animated: true }).metadata()).pages ?? 1).toBe(1);
    },
    CASE_MS,
  );
});
