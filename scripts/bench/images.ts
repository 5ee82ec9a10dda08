/**
 * The benchmark's input images. Camera-sized photos cannot be committed, so they are generated from the
 * real photos in `samples/` by `scripts/fixtures.ts` (upscaled with film grain, so encoders see
 * photo-like detail) and cached on disk; the HEIC and the small EXIF-rotated photo are the committed
 * samples themselves.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp, { type Metadata } from 'sharp';
import { photoJpeg, pngWithAlpha, readSample } from '../fixtures';

/** One benchmark input. */
export interface BenchImage {
  id: string;
  label: string;
  /** Absolute path of the cached file. */
  file: string;
  bytes: number;
  /** Stored pixel size (before EXIF orientation). */
  width: number;
  height: number;
  format: string;
}

interface ImageSpec {
  id: string;
  label: string;
  ext: string;
  make: () => Promise<Buffer>;
}

/** Full run: what a phone or camera uploads. */
const FULL: ImageSpec[] = [
  { id: 'jpeg-12mp', label: '12 MP JPEG (4000×3000)', ext: 'jpg', make: () => photoJpeg(12) },
  { id: 'jpeg-24mp', label: '24 MP JPEG (6000×4000)', ext: 'jpg', make: () => photoJpeg(24) },
  { id: 'png-alpha', label: '6 MP PNG with alpha (3000×2000)', ext: 'png', make: () => pngWithAlpha(3000, 2000) },
  {
    id: 'phone-exif6',
    label: '12 MP phone JPEG, EXIF orientation 6',
    ext: 'jpg',
    make: () => photoJpeg(12, { orientation: 6, source: 'portrait-exif6.jpg' }),
  },
  { id: 'heic', label: 'HEIC (1200×900, committed sample)', ext: 'heic', make: () => Promise.resolve(readSample('phone.heic')) },
];

/** `--quick`: small images, so CI finishes in seconds. */
const QUICK: ImageSpec[] = [
  { id: 'jpeg-2mp', label: '2 MP JPEG (1633×1225)', ext: 'jpg', make: () => photoJpeg(2) },
  { id: 'png-alpha-small', label: '1 MP PNG with alpha (1200×800)', ext: 'png', make: () => pngWithAlpha(1200, 800) },
  {
    id: 'phone-exif6-small',
    label: '1.5 MP JPEG, EXIF orientation 6 (committed sample)',
    ext: 'jpg',
    make: () => Promise.resolve(readSample('portrait-exif6.jpg')),
  },
  { id: 'heic', label: 'HEIC (1200×900, committed sample)', ext: 'heic', make: () => Promise.resolve(readSample('phone.heic')) },
];

/** A 100 MP JPEG for the pixel-limit check; `cheap` skips the grain (3 s instead of 7 s to generate). */
function hundredMegapixels(cheap: boolean): ImageSpec {
  return {
    id: cheap ? 'jpeg-100mp-flat' : 'jpeg-100mp',
    label: cheap ? '100 MP JPEG (no grain)' : '100 MP JPEG',
    ext: 'jpg',
    // q85 keeps the grainy version (≈23 MB) under the default 32 MiB byte limit, so the pixel limit is what refuses it.
    make: () => photoJpeg(100, { quality: 85, grain: cheap ? 0 : 12 }),
  };
}

/** The cache directory for generated inputs; keyed by sharp's version because the bytes depend on it. */
export function fixtureDir(root: string): string {
  return join(root, 'node_modules', '.cache', 'pixelpipe', `bench-images-sharp-${sharp.versions.sharp}`);
}

async function ensure(dir: string, spec: ImageSpec, log: (msg: string) => void): Promise<BenchImage> {
  const file = join(dir, `${spec.id}.${spec.ext}`);
  if (!existsSync(file)) {
    const t0 = performance.now();
    const body = await spec.make();
    writeFileSync(file, body);
    log(`generated ${spec.id} (${(body.length / 1e6).toFixed(1)} MB) in ${Math.round(performance.now() - t0)} ms`);
  }
  const body = readFileSync(file);
  let meta: Metadata | undefined;
  try {
    meta = await sharp(body, { limitInputPixels: false }).metadata();
  } catch {
    // HEVC HEIC: sharp reads the container only when its libheif has the codec; dimensions are informative.
  }
  return { id: spec.id, label: spec.label, file, bytes: body.length, width: meta?.width ?? 0, height: meta?.height ?? 0, format: meta?.format ?? spec.ext };
}

/** Generates (once) and returns the benchmark inputs for a full or a quick run. */
export async function benchImages(root: string, quick: boolean, log: (msg: string) => void = () => {}): Promise<BenchImage[]> {
  const dir = fixtureDir(root);
  mkdirSync(dir, { recursive: true });
  const out: BenchImage[] = [];
  for (const spec of quick ? QUICK : FULL) out.push(await ensure(dir, spec, log));
  return out;
}

/** The 100 MP input for the pixel-limit measurements. */
export async function hugeImage(root: string, quick: boolean, log: (msg: string) => void = () => {}): Promise<BenchImage> {
  const dir = fixtureDir(root);
  mkdirSync(dir, { recursive: true });
  return ensure(dir, hundredMegapixels(quick), log);
}
