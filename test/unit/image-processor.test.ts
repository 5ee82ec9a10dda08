import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import exifReader from 'exif-reader';
import sharp, { type Stats } from 'sharp';
import { DEFAULT_QUALITY, loadConfig, parseVariants, type VariantSpec } from '../../shared/config';
import { decodeLuma, ssim } from '../../shared/image/ssim';
import { GPS_FIXTURE, jpegWithGps } from '../../scripts/fixtures';
import { ImageRejectedError } from '../../shared/errors';
import { SharpImageProcessor } from '../../shared/image/sharp-image-processor';
import type { RenderOptions } from '../../shared/ports';

const processor = new SharpImageProcessor();
const { limits } = loadConfig({ PIXELPIPE_AUTH_MODE: 'anonymous' });
const opts: RenderOptions = { webpEffort: 2, avifEffort: 2, placeholder: true };
const sample = (name: string): Buffer => readFileSync(join(__dirname, '..', '..', 'samples', name));
const v = (spec: Record<string, unknown>): VariantSpec[] => parseVariants([{ name: 'v', formats: ['png'], ...spec }]);

/** A 1000x500 image: left half red, right half blue, so crops and flips are visible in the pixels. */
async function halves(width = 1000, height = 500, format: 'png' | 'jpeg' = 'png'): Promise<Buffer> {
  const half = await sharp({ create: { width: width / 2, height, channels: 3, background: '#0000ff' } })
    .png()
    .toBuffer();
  const img = sharp({ create: { width, height, channels: 3, background: '#ff0000' } }).composite([{ input: half, left: width / 2, top: 0 }]);
  return format === 'png' ? img.removeAlpha().png().toBuffer() : img.jpeg({ quality: 95 }).toBuffer();
}

async function pixel(buf: Buffer, x: number, y: number): Promise<number[]> {
  const { data, info } = await sharp(buf).raw().toBuffer({ resolveWithObject: true });
  const i = (y * info.width + x) * info.channels;
  return [...data.subarray(i, i + info.channels)];
}

async function rejectCode(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ImageRejectedError);
  return (err as ImageRejectedError).code;
}

describe('fits', () => {
  test.each([
    ['cover', { width: 200, height: 200, fit: 'cover' }, [200, 200]],
    ['contain', { width: 300, height: 300, fit: 'contain' }, [300, 300]],
    ['inside', { width: 300, height: 300, fit: 'inside' }, [300, 150]],
    ['outside', { width: 300, height: 300, fit: 'outside' }, [600, 300]],
    ['fill', { width: 300, height: 100, fit: 'fill' }, [300, 100]],
    ['width only', { width: 480 }, [480, 240]],
    ['height only', { height: 100 }, [200, 100]],
    ['no enlargement', { width: 4000 }, [1000, 500]],
    ['enlargement allowed', { width: 2000, withoutEnlargement: false }, [2000, 1000]],
  ])('%s', async (_name, spec, [w, h]) => {
    const r = await processor.render(await halves(), v(spec), limits, opts);
    expect(r.outputs).toHaveLength(1);
    expect([r.outputs[0].width, r.outputs[0].height]).toEqual([w, h]);
    const meta = await sharp(r.outputs[0].body).metadata();
    expect([meta.width, meta.height]).toEqual([w, h]);
  });

  test('contain pads with the background colour; cover crops the centre', async () => {
    const [cover] = (await processor.render(await halves(), v({ width: 200, height: 200, fit: 'cover' }), limits, opts)).outputs;
    expect((await pixel(cover.body, 5, 100))[0]).toBeGreaterThan(200);
    expect((await pixel(cover.body, 195, 100))[2]).toBeGreaterThan(200);
    const [contain] = (await processor.render(await halves(), v({ width: 300, height: 300, fit: 'contain', background: '#00ff00' }), limits, opts)).outputs;
    expect(contain.height).toBe(300);
    expect(await pixel(contain.body, 150, 5)).toEqual([0, 255, 0]);
    expect(await pixel(contain.body, 10, 150)).toEqual([255, 0, 0]);
    expect(await pixel(contain.body, 290, 150)).toEqual([0, 0, 255]);
  });
});

describe('formats', () => {
  test.each([
    ['jpeg', 'jpeg', 'image/jpeg', 'jpg'],
    ['webp', 'webp', 'image/webp', 'webp'],
    ['avif', 'heif', 'image/avif', 'avif'],
    ['png', 'png', 'image/png', 'png'],
  ])('%s', async (format, decoded, contentType, ext) => {
    const [out] = (await processor.render(await halves(), v({ width: 64, formats: [format] }), limits, opts)).outputs;
    expect(out).toMatchObject({ format, contentType, extension: ext, width: 64, height: 32 });
    const meta = await sharp(out.body).metadata();
    expect(meta.format).toBe(decoded);
    expect(meta.width).toBe(64);
  });

  test('"original" keeps web formats and turns others into JPEG/PNG', async () => {
    const png = (await processor.render(await halves(), v({ width: 64, formats: ['original'] }), limits, opts)).outputs[0];
    expect(png.format).toBe('png');
    const jpg = (await processor.render(await halves(1000, 500, 'jpeg'), v({ width: 64, formats: ['original'] }), limits, opts)).outputs[0];
    expect(jpg.format).toBe('jpeg');
    const heic = (await processor.render(sample('phone.heic'), v({ width: 64, formats: ['original'] }), limits, opts)).outputs[0];
    expect(heic.format).toBe('jpeg');
  });

  test('alpha is kept in WebP/PNG and flattened onto the background for JPEG', async () => {
    const input = await sharp({ create: { width: 100, height: 100, channels: 4, background: { r: 255, g: 0, b: 0, alpha: 0 } } })
      .png()
      .toBuffer();
    const r = await processor.render(input, v({ width: 50, formats: ['png', 'webp', 'jpeg'], background: '#ffffff' }), limits, opts);
    const byFormat = Object.fromEntries(r.outputs.map((o) => [o.format, o]));
    expect((await sharp(byFormat.png.body).metadata()).hasAlpha).toBe(true);
    expect((await sharp(byFormat.webp.body).metadata()).hasAlpha).toBe(true);
    expect((await sharp(byFormat.jpeg.body).metadata()).hasAlpha).toBe(false);
    const [r0, g0, b0] = await pixel(byFormat.jpeg.body, 25, 25);
    expect(Math.min(r0, g0, b0)).toBeGreaterThan(240);
  });
});

describe('filters', () => {
  const photo = sample('landscape.jpg');
  const stats = async (buf: Buffer) => sharp(buf).stats();
  async function render(filter?: string) {
    const [out] = (await processor.render(photo, v({ width: 320, formats: ['png'], ...(filter ? { filter } : {}) }), limits, opts)).outputs;
    return out.body;
  }
  let plain: Stats;
  beforeAll(async () => {
    plain = await stats(await render());
  });

  test('grayscale: one channel, or equal channels', async () => {
    const buf = await render('grayscale');
    const { data, info } = await sharp(buf).toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    expect(info.channels).toBe(3);
    for (let i = 0; i < data.length; i += 3 * 97) {
      expect(data[i]).toBe(data[i + 1]);
      expect(data[i + 1]).toBe(data[i + 2]);
    }
  });

  test('negate inverts the mean', async () => {
    const s = await stats(await render('negate'));
    for (let c = 0; c < 3; c++) expect(s.channels[c].mean).toBeCloseTo(255 - plain.channels[c].mean, -1);
  });

  test('blur lowers and sharpen raises sharpness', async () => {
    expect((await stats(await render('blur(4)'))).sharpness).toBeLessThan(plain.sharpness * 0.8);
    expect((await stats(await render('sharpen'))).sharpness).toBeGreaterThan(plain.sharpness);
  });

  test('sepia makes red ≥ green ≥ blue everywhere on average', async () => {
    const s = await stats(await render('sepia'));
    expect(s.channels[0].mean).toBeGreaterThan(s.channels[1].mean);
    expect(s.channels[1].mean).toBeGreaterThan(s.channels[2].mean);
  });

  test('tint moves the colour towards the tint', async () => {
    const s = await stats(await render('tint(#ff0000)'));
    expect(s.channels[0].mean - s.channels[2].mean).toBeGreaterThan(plain.channels[0].mean - plain.channels[2].mean + 20);
  });

  test('modulate brightens', async () => {
    const s = await stats(await render('modulate(1.5,1,0)'));
    expect(s.channels[1].mean).toBeGreaterThan(plain.channels[1].mean * 1.2);
  });
});

describe('orientation, colour and metadata', () => {
  // Where the stored top-left pixel must end up after honouring each EXIF orientation.
  const corner: Record<number, 'tl' | 'tr' | 'br' | 'bl'> = { 1: 'tl', 2: 'tr', 3: 'br', 4: 'bl', 5: 'tl', 6: 'tr', 7: 'br', 8: 'bl' };
  test.each([1, 2, 3, 4, 5, 6, 7, 8])('EXIF orientation %i', async (orientation) => {
    const red = await sharp({ create: { width: 16, height: 16, channels: 3, background: '#ff0000' } })
      .png()
      .toBuffer();
    const input = await sharp({ create: { width: 64, height: 32, channels: 3, background: '#0000ff' } })
      .composite([{ input: red, left: 0, top: 0 }])
      .jpeg({ quality: 95 })
      .withMetadata({ orientation })
      .toBuffer();
    expect((await sharp(input).metadata()).orientation).toBe(orientation);
    const r = await processor.render(input, v({ width: 64, height: 64, formats: ['png'] }), limits, opts);
    const out = r.outputs[0];
    const swapped = orientation >= 5;
    expect([out.width, out.height]).toEqual(swapped ? [32, 64] : [64, 32]);
    expect([r.probe.width, r.probe.height]).toEqual(swapped ? [32, 64] : [64, 32]);
    const w = out.width - 1;
    const h = out.height - 1;
    const at = { tl: [2, 2], tr: [w - 2, 2], br: [w - 2, h - 2], bl: [2, h - 2] }[corner[orientation]];
    const [rr, , bb] = await pixel(out.body, at[0], at[1]);
    expect(rr).toBeGreaterThan(200);
    expect(bb).toBeLessThan(60);
    expect((await sharp(out.body).metadata()).orientation).toBeUndefined();
  });

  test('a real phone photo with orientation 6 comes out portrait', async () => {
    const r = await processor.render(sample('portrait-exif6.jpg'), v({ width: 480, formats: ['jpeg'] }), limits, opts);
    expect(r.outputs[0].height).toBeGreaterThan(r.outputs[0].width);
  });

  test('EXIF (GPS included), XMP and IPTC are stripped from every output', async () => {
    const input = await jpegWithGps();
    const src = await sharp(input).metadata();
    expect(exifReader(src.exif!).GPSInfo?.GPSLatitude).toEqual([48, 51, 29.6]);
    expect(src.xmpAsString).toContain(GPS_FIXTURE.xmp);
    expect(src.iptc?.toString('utf8')).toContain(GPS_FIXTURE.iptc);
    const r = await processor.render(input, parseVariants([{ name: 'a', width: 300, formats: ['jpeg', 'webp', 'png', 'avif'] }]), limits, opts);
    for (const o of r.outputs) {
      const m = await sharp(o.body).metadata();
      expect(m.exif).toBeUndefined();
      expect(m.xmp).toBeUndefined();
      expect(m.iptc).toBeUndefined();
    }
  });

  test('an embedded ICC profile is converted to sRGB', async () => {
    const input = await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 200, g: 60, b: 40 } } })
      .withIccProfile('p3')
      .jpeg({ quality: 100 })
      .toBuffer();
    expect((await sharp(input).metadata()).hasProfile).toBe(true);
    const [out] = (await processor.render(input, v({ width: 32, formats: ['png'] }), limits, opts)).outputs;
    // sharp wrote sRGB (200,60,40) as P3 numbers; the stored values differ a lot from the sRGB ones.
    const stored = [...(await sharp(input).keepIccProfile().raw().toBuffer()).subarray(0, 3)];
    expect(Math.abs(stored[0] - 200) + Math.abs(stored[1] - 60)).toBeGreaterThan(15);
    const [r, g, b] = await pixel(out.body, 16, 16);
    expect(Math.abs(r - 200)).toBeLessThanOrEqual(3);
    expect(Math.abs(g - 60)).toBeLessThanOrEqual(3);
    expect(Math.abs(b - 40)).toBeLessThanOrEqual(3);
    expect((await sharp(out.body).metadata()).hasProfile).toBeFalsy();
  });

  test('CMYK input comes out as sRGB', async () => {
    const input = await sharp(sample('landscape.jpg')).resize(200).toColourspace('cmyk').jpeg().toBuffer();
    expect((await sharp(input).metadata()).space).toBe('cmyk');
    const [out] = (await processor.render(input, v({ width: 100, formats: ['jpeg'] }), limits, opts)).outputs;
    const m = await sharp(out.body).metadata();
    expect(m.space).toBe('srgb');
    expect(m.channels).toBe(3);
  });

  test('HEIC from a phone is decoded', async () => {
    const r = await processor.render(sample('phone.heic'), v({ width: 300, formats: ['webp'] }), limits, opts);
    expect(r.probe.mimeType).toBe('image/heic');
    expect([r.outputs[0].width, r.outputs[0].height]).toEqual([300, 225]);
  });

  test('animated GIF renders its first frame; too many frames are refused', async () => {
    const frames = 3;
    const colours = ['#00ff00', '#ff0000', '#0000ff'];
    const pages = await Promise.all(
      colours.map((c) =>
        sharp({ create: { width: 40, height: 40, channels: 3, background: c } })
          .png()
          .toBuffer(),
      ),
    );
    const gif = await sharp(pages, { join: { animated: true } })
      .gif()
      .toBuffer();
    expect((await sharp(gif).metadata()).pages).toBe(frames);
    const r = await processor.render(gif, v({ width: 20, formats: ['png'] }), limits, opts);
    expect([r.outputs[0].width, r.outputs[0].height]).toEqual([20, 20]);
    expect((await pixel(r.outputs[0].body, 10, 10))[1]).toBeGreaterThan(200);
    expect(await rejectCode(processor.render(gif, v({ width: 20 }), { ...limits, maxFrames: 2 }, opts))).toBe('too_many_frames');
  });
});

describe('decode once', () => {
  test('the original is decoded by exactly one pixel pipeline for all 9 default outputs', async () => {
    const input = sample('landscape.jpg');
    const actual = jest.requireActual<typeof import('sharp')>('sharp');
    const seen: unknown[] = [];
    const spy = jest.fn((...args: unknown[]) => {
      seen.push(args[0]);
      return (actual as unknown as (...a: unknown[]) => unknown)(...args);
    });
    let render!: SharpImageProcessor['render'];
    await jest.isolateModulesAsync(async () => {
      jest.doMock('sharp', () => Object.assign(spy, actual));
      const { SharpImageProcessor: P } = await import('../../shared/image/sharp-image-processor');
      const p = new P();
      render = p.render.bind(p);
    });
    const { variants } = loadConfig({ PIXELPIPE_AUTH_MODE: 'anonymous' });
    const r = await render(input, variants, limits, opts);
    expect(r.outputs).toHaveLength(9);
    // One header-only metadata read plus one decode; everything else starts from raw pixels.
    expect(seen.filter((a) => a === input)).toHaveLength(2);
    jest.dontMock('sharp');
  });
});

describe('refusals happen before decoding', () => {
  // Each refusal must come from the header probe: the pixel decode (private) is watched through a cast.
  let decode: jest.SpyInstance;
  beforeEach(() => {
    decode = jest.spyOn(processor as unknown as { decode: (...args: unknown[]) => Promise<unknown> }, 'decode');
  });
  afterEach(() => {
    expect(decode).not.toHaveBeenCalled();
    decode.mockRestore();
  });

  test.each([
    ['empty', Buffer.alloc(0), 'empty_file'],
    ['random bytes', Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 251)), 'unsupported_type'],
    ['html as png', Buffer.from('<!DOCTYPE html><html><script>alert(1)</script></html>'), 'unsupported_type'],
    ['pdf', Buffer.from('%PDF-1.7\n1 0 obj<<>>endobj\n'), 'unsupported_type'],
    ['svg', Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'), 'svg_not_allowed'],
  ])('%s', async (_name, input, code) => {
    expect(await rejectCode(processor.render(input, v({ width: 10 }), limits, opts))).toBe(code);
  });

  test('bytes over the limit', async () => {
    expect(await rejectCode(processor.render(await halves(), v({ width: 10 }), { ...limits, maxInputBytes: 100 }, opts))).toBe('too_many_bytes');
  });

  test('pixels over the limit', async () => {
    expect(await rejectCode(processor.render(await halves(), v({ width: 10 }), { ...limits, maxInputPixels: 1000 * 499 }, opts))).toBe('too_many_pixels');
  });

  test('a type that is valid but not allowed', async () => {
    const tiff = await sharp(await halves())
      .tiff()
      .toBuffer();
    expect(await rejectCode(processor.render(tiff, v({ width: 10 }), limits, opts))).toBe('type_not_allowed');
  });
});

describe('refusals during decoding', () => {
  test('truncated and corrupt JPEGs: the header reads, the decode fails → corrupt_image', async () => {
    const full = await sharp({ create: { width: 1000, height: 500, channels: 3, background: '#000', noise: { type: 'gaussian', mean: 100, sigma: 40 } } })
      .jpeg()
      .toBuffer();
    expect(await rejectCode(processor.render(full.subarray(0, Math.floor(full.length / 2)), v({ width: 10 }), limits, opts))).toBe('corrupt_image');
    expect(await rejectCode(processor.render(sample('corrupt.jpg'), v({ width: 10 }), limits, opts))).toBe('corrupt_image');
  });
});

test('placeholder is a small ThumbHash with a data URL', async () => {
  const r = await processor.render(sample('landscape.jpg'), v({ width: 100 }), limits, opts);
  expect(r.placeholder!.type).toBe('thumbhash');
  expect(Buffer.from(r.placeholder!.value, 'base64').length).toBeLessThanOrEqual(30);
  expect(r.placeholder!.dataUrl).toMatch(/^data:image\/png;base64,/);
});

describe('quality', () => {
  test('without a quality, each format gets its default; a number is used as given', async () => {
    const photo = sample('landscape.jpg');
    const r = await processor.render(
      photo,
      parseVariants([
        { name: 'a', width: 320, formats: ['webp', 'jpeg'] },
        { name: 'b', width: 320, formats: ['jpeg'], quality: 40 },
      ]),
      limits,
      opts,
    );
    expect(r.outputs.map((o) => [o.variant, o.format, o.quality])).toEqual([
      ['a', 'jpeg', DEFAULT_QUALITY.jpeg],
      ['a', 'webp', DEFAULT_QUALITY.webp],
      ['b', 'jpeg', 40],
    ]);
    // The same pixels at a lower quality: fewer bytes.
    expect(r.outputs[2].body.length).toBeLessThan(r.outputs[0].body.length);
  });

  test('default WebP quality: 74 opaque, 77 with alpha, 68 above 4 MP; JPEG 80 (flattened, so never the alpha rule)', async () => {
    const alpha = await sharp({ create: { width: 300, height: 200, channels: 4, background: { r: 200, g: 40, b: 40, alpha: 0.5 } } })
      .png()
      .toBuffer();
    const big = await sharp({ create: { width: 2100, height: 2000, channels: 3, background: '#336699' } })
      .png()
      .toBuffer();
    const fmts = { formats: ['webp', 'jpeg'] };
    const small = await processor.render(alpha, v({ width: 300, ...fmts }), limits, opts);
    const opaque = await processor.render(await halves(), v({ width: 300, ...fmts }), limits, opts);
    const large = await processor.render(big, v({ width: 2100, ...fmts }), limits, opts);
    const q = (r: typeof small) => Object.fromEntries(r.outputs.map((o) => [o.format, o.quality]));
    expect(q(small)).toEqual({ webp: 77, jpeg: DEFAULT_QUALITY.jpeg });
    expect(q(opaque)).toEqual({ webp: DEFAULT_QUALITY.webp, jpeg: DEFAULT_QUALITY.jpeg });
    expect(DEFAULT_QUALITY.webp).toBe(74);
    expect(q(large)).toEqual({ webp: 68, jpeg: DEFAULT_QUALITY.jpeg });
    expect((await sharp(small.outputs.find((o) => o.format === 'webp')!.body).metadata()).hasAlpha).toBe(true);
  });

  test('"auto" picks the lowest tried quality meeting the target: a stricter target gives a higher quality and score', async () => {
    const photo = sample('landscape.jpg');
    const variants = parseVariants([{ name: 'a', width: 300, formats: ['webp', 'jpeg'], quality: 'auto' }]);
    const loose = await processor.render(photo, variants, limits, { ...opts, qualityTarget: { metric: 'ssim', value: 0.9 } });
    const strict = await processor.render(photo, variants, limits, { ...opts, qualityTarget: { metric: 'ssim', value: 0.98 } });
    for (const [i, out] of strict.outputs.entries()) {
      const l = loose.outputs[i];
      expect(out.quality).toBeGreaterThan(l.quality!);
      expect(out.score!).toBeGreaterThan(l.score!);
      expect(out.body.length).toBeGreaterThan(l.body.length);
      // Met, or the best the search could do at its highest quality.
      expect(out.score! >= 0.98 || out.quality === 95).toBe(true);
      expect(l.score!).toBeGreaterThanOrEqual(0.9);
      // The recorded score is the output's: re-measure it against the pixels it was encoded from.
      const png = (await processor.render(photo, parseVariants([{ name: 'a', width: 300, formats: ['png'] }]), limits, opts)).outputs[0].body;
      const ref = await decodeLuma(png);
      expect(ssim(ref, await decodeLuma(out.body))).toBeCloseTo(out.score!, 3);
      const meta = await sharp(out.body).metadata();
      expect([meta.width, meta.height]).toEqual([out.width, out.height]);
    }
  });
});

describe('"auto" search: trial count and predicted starts (counting spies on the encoders)', () => {
  type Call = { width: number; height: number; quality: number; scans: boolean };
  type EncodeOptions = { quality?: number; progressive?: boolean; optimiseScans?: boolean };
  const proto = Object.getPrototypeOf(sharp()) as { jpeg: (o?: EncodeOptions) => unknown; webp: (o?: EncodeOptions) => unknown };
  /** Every encode of `format` the render asks sharp for, with the size of the raw pixels it encodes. */
  async function encodes(format: 'jpeg' | 'webp', run: () => Promise<unknown>): Promise<Call[]> {
    const spy = jest.spyOn(proto, format);
    try {
      await run();
      return spy.mock.calls.map((args, i) => {
        const input = (spy.mock.contexts[i] as unknown as { options: { input: { rawWidth?: number; rawHeight?: number } } }).options.input;
        const o: EncodeOptions = args[0] ?? {};
        return { width: input.rawWidth ?? 0, height: input.rawHeight ?? 0, quality: o.quality ?? 0, scans: o.progressive === true || o.optimiseScans === true };
      });
    } finally {
      spy.mockRestore();
    }
  }
  const photo = sample('landscape.jpg');
  const strict = { ...opts, placeholder: false, qualityTarget: { metric: 'ssim' as const, value: 0.985 } };

  test('≤ 3 trial encodes per output; a whole-output WebP trial is the output, a JPEG gets one final encode with its scan mode', async () => {
    const variants = parseVariants([{ name: 'a', width: 300, formats: ['webp', 'jpeg'], quality: 'auto' }]);
    let result!: Awaited<ReturnType<typeof processor.render>>;
    const webp = await encodes('webp', async () => (result = await processor.render(photo, variants, limits, strict)));
    const out = Object.fromEntries(result.outputs.map((o) => [o.format, o]));
    // 300×200 is below the sampling size (75 000 px): every trial encodes the whole output.
    expect(webp.length).toBeGreaterThanOrEqual(1);
    expect(webp.length).toBeLessThanOrEqual(3);
    expect(webp.every((c) => c.width === out.webp.width && c.height === out.webp.height)).toBe(true);
    // No re-encode: the chosen trial is the output.
    expect(webp.map((c) => c.quality)).toContain(out.webp.quality);
    const jpeg = await encodes('jpeg', () => processor.render(photo, variants, limits, strict));
    const trials = jpeg.filter((c) => !c.scans);
    expect(trials.length).toBeGreaterThanOrEqual(1);
    expect(trials.length).toBeLessThanOrEqual(3);
    expect(jpeg.filter((c) => c.scans).map((c) => c.quality)).toEqual([out.jpeg.quality]);
  });

  test('a larger output of the same format starts its search at the quality the smaller one chose; alone it starts at the default', async () => {
    const both = parseVariants([
      { name: 'big', width: 1024, formats: ['webp'], quality: 'auto' },
      { name: 'small', width: 240, formats: ['webp'], quality: 'auto' },
    ]);
    let result!: Awaited<ReturnType<typeof processor.render>>;
    const calls = await encodes('webp', async () => (result = await processor.render(photo, both, limits, strict)));
    const small = result.outputs.find((o) => o.variant === 'small')!;
    const big = result.outputs.find((o) => o.variant === 'big')!;
    // Precondition: the small output moved away from the default, so the start is observable.
    expect(small.quality).not.toBe(DEFAULT_QUALITY.webp);
    const firstBig = calls.findIndex((c) => c.width === big.width);
    // Every trial of the small output ran before the big one's first.
    expect(calls.slice(firstBig).some((c) => c.width === small.width)).toBe(false);
    expect(calls[firstBig].quality).toBe(small.quality);
    // The big output's trials are on a sample of its rows (full width, fewer rows), then one final encode.
    const bigCalls = calls.filter((c) => c.width === big.width);
    expect(bigCalls.length).toBeLessThanOrEqual(4);
    expect(bigCalls.slice(0, -1).every((c) => c.height < big.height)).toBe(true);
    expect(bigCalls[bigCalls.length - 1]).toMatchObject({ height: big.height, quality: big.quality });

    const alone = await encodes('webp', () =>
      processor.render(photo, parseVariants([{ name: 'big', width: 1024, formats: ['webp'], quality: 'auto' }]), limits, strict),
    );
    expect(alone[0].quality).toBe(DEFAULT_QUALITY.webp);
  });
});

describe('JPEG scan mode by kind of original (spy on the encoder options)', () => {
  type JpegOptions = { progressive?: boolean; optimiseScans?: boolean };
  const proto = Object.getPrototypeOf(sharp()) as { jpeg: (o?: JpegOptions) => unknown };
  /** The options of every JPEG encode with their raw input size. */
  async function jpegCalls(run: () => Promise<unknown>): Promise<Array<JpegOptions & { pixels: number }>> {
    const spy = jest.spyOn(proto, 'jpeg');
    try {
      await run();
      return spy.mock.calls.map((args, i) => {
        const input = (spy.mock.contexts[i] as unknown as { options: { input: { rawWidth?: number; rawHeight?: number } } }).options.input;
        return { ...(args[0] ?? {}), pixels: (input.rawWidth ?? 0) * (input.rawHeight ?? 0) };
      });
    } finally {
      spy.mockRestore();
    }
  }
  // 2200×1100 = 2.4 MP: above the size where camera originals stop getting the scan search.
  const pixels = () => sharp({ create: { width: 2200, height: 1100, channels: 3, background: '#000000', noise: { type: 'gaussian', mean: 128, sigma: 30 } } });
  const variants = parseVariants([{ name: 'full', width: 2200, formats: ['jpeg'] }]);
  const fixed = { ...opts, placeholder: false };

  test('a large JPEG output of a camera original is progressive; of a PNG original it gets the scan search (same pixels)', async () => {
    const jpegOriginal = await pixels().jpeg({ quality: 95 }).toBuffer();
    const pngOriginal = await sharp(await sharp(jpegOriginal).raw().toBuffer(), { raw: { width: 2200, height: 1100, channels: 3 } })
      .png({ compressionLevel: 1 })
      .toBuffer();
    let fromJpeg!: Awaited<ReturnType<typeof processor.render>>;
    let fromPng!: Awaited<ReturnType<typeof processor.render>>;
    const jpegCallsOfJpeg = (await jpegCalls(async () => (fromJpeg = await processor.render(jpegOriginal, variants, limits, fixed)))).filter(
      (c) => c.pixels === 2200 * 1100,
    );
    const jpegCallsOfPng = (await jpegCalls(async () => (fromPng = await processor.render(pngOriginal, variants, limits, fixed)))).filter(
      (c) => c.pixels === 2200 * 1100,
    );
    expect(jpegCallsOfJpeg).toEqual([expect.objectContaining({ progressive: true })]);
    expect(jpegCallsOfJpeg[0].optimiseScans).toBeUndefined();
    expect(jpegCallsOfPng).toEqual([expect.objectContaining({ optimiseScans: true })]);
    for (const r of [fromJpeg, fromPng]) {
      const meta = await sharp(r.outputs[0].body).metadata();
      expect([meta.format, meta.width, meta.height, meta.isProgressive]).toEqual(['jpeg', 2200, 1100, true]);
    }
    // The scan mode orders the coefficients only: both originals hold the same pixels, so both outputs decode alike.
    const a = await decodeLuma(fromJpeg.outputs[0].body);
    const b = await decodeLuma(fromPng.outputs[0].body);
    expect(ssim(a, b)).toBeGreaterThan(0.9999);
  });
  test("a camera original's JPEG up to 2 MP gets the scan search up to quality 89, plain progressive from 90", async () => {
    const original = await pixels().resize(1000, 500).jpeg({ quality: 95 }).toBuffer();
    const at = (quality: number) => parseVariants([{ name: 'v', width: 1000, formats: ['jpeg'], quality }]);
    const calls = async (quality: number) =>
      (await jpegCalls(() => processor.render(original, at(quality), limits, fixed))).filter((c) => c.pixels === 1000 * 500);
    expect(await calls(89)).toEqual([expect.objectContaining({ optimiseScans: true })]);
    const high = await calls(90);
    expect(high).toEqual([expect.objectContaining({ progressive: true })]);
    expect(high[0].optimiseScans).toBeUndefined();
  });
});
