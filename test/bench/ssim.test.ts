import sharp from 'sharp';
import { decodeLuma, lumaFromPixels, ssim, type Luma } from '../../scripts/bench/ssim';

function pattern(width: number, height: number, f: (x: number, y: number) => number): Luma {
  const data = new Float64Array(width * height);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data[y * width + x] = f(x, y);
  return { data, width, height };
}

const texture = (x: number, y: number) => 128 + 60 * Math.sin(x / 3) * Math.cos(y / 5) + ((x * 7 + y * 13) % 17);

test('identical images score 1; distortions score lower, worse ones lower still', () => {
  const a = pattern(64, 48, texture);
  expect(ssim(a, a)).toBeCloseTo(1, 10);
  const mild = pattern(64, 48, (x, y) => texture(x, y) + ((x + y) % 2 ? 3 : -3));
  const strong = pattern(64, 48, (x, y) => texture(x, y) + ((x + y) % 2 ? 25 : -25));
  const flat = pattern(64, 48, () => 128);
  expect(ssim(a, mild)).toBeLessThan(1);
  expect(ssim(a, strong)).toBeLessThan(ssim(a, mild));
  expect(ssim(a, flat)).toBeLessThan(ssim(a, strong));
});

test('is symmetric and works on images smaller than a window', () => {
  const a = pattern(5, 3, texture);
  const b = pattern(5, 3, (x, y) => texture(x, y) + x);
  expect(ssim(a, b)).toBeCloseTo(ssim(b, a), 12);
  expect(ssim(a, a)).toBeCloseTo(1, 10);
});

test('refuses images of different sizes', () => {
  expect(() => ssim(pattern(4, 4, texture), pattern(4, 5, texture))).toThrow(/sizes differ/);
});

test('luma: BT.601 weights, alpha composited over the background', () => {
  const rgb = lumaFromPixels(Uint8Array.from([255, 0, 0, 0, 255, 0, 0, 0, 255]), 3, 1, 3);
  expect([...rgb.data].map((v) => Math.round(v * 10) / 10)).toEqual([76.2, 149.7, 29.1]);
  const rgba = lumaFromPixels(Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 255]), 2, 1, 4);
  expect([...rgba.data]).toEqual([255, 0]);
  const ga = lumaFromPixels(Uint8Array.from([100, 255, 100, 0]), 2, 1, 2, 0);
  expect([...ga.data]).toEqual([100, 0]);
  expect(() => lumaFromPixels(new Uint8Array(5), 2, 1, 3)).toThrow(RangeError);
});

test('decodeLuma reads encoded images', async () => {
  const png = await sharp({ create: { width: 8, height: 4, channels: 3, background: '#808080' } })
    .png()
    .toBuffer();
  const l = await decodeLuma(png);
  expect([l.width, l.height]).toEqual([8, 4]);
  expect(Math.round(l.data[0])).toBe(128);
});
