/**
 * Structural similarity (SSIM, Wang et al. 2004) on luma, written out here so neither the processor's
 * `quality: "auto"` search nor the benchmark's quality check needs a native tool. Square windows on a regular grid (8×8, stride 4) instead of the paper's Gaussian window:
 * coarser, but the comparison is always between two candidates against the same reference, so only
 * the ordering has to be right. Window sums come from summed-area tables, so the cost is linear in the
 * number of pixels whatever the window size.
 */
import sharp from 'sharp';

/** A single-channel image with float samples in 0..255. */
export interface Luma {
  data: Float64Array;
  width: number;
  height: number;
}

/**
 * BT.601 luma of interleaved 8-bit pixels. Transparent pixels are composited over `background`
 * (0..255 grey), so an image with alpha is judged as it would look on a page.
 */
export function lumaFromPixels(data: Uint8Array, width: number, height: number, channels: number, background = 255): Luma {
  const n = width * height;
  if (data.length < n * channels) throw new RangeError(`lumaFromPixels: ${data.length} bytes for ${width}x${height}x${channels}`);
  const out = new Float64Array(n);
  for (let i = 0, j = 0; i < n; i++, j += channels) {
    let y: number;
    let a = 1;
    if (channels <= 2) {
      y = data[j];
      if (channels === 2) a = data[j + 1] / 255;
    } else {
      y = 0.299 * data[j] + 0.587 * data[j + 1] + 0.114 * data[j + 2];
      if (channels === 4) a = data[j + 3] / 255;
    }
    out[i] = y * a + background * (1 - a);
  }
  return { data: out, width, height };
}

/** Decodes any image sharp reads into luma (no orientation applied: outputs carry no EXIF). */
export async function decodeLuma(image: Buffer): Promise<Luma> {
  const { data, info } = await sharp(image).raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  return lumaFromPixels(data, info.width, info.height, info.channels);
}

/** Options of {@link ssim}. */
export interface SsimOptions {
  /** Window side in pixels. Default 8. */
  window?: number;
  /** Distance between window origins. Default 4 (half-overlapping windows). */
  stride?: number;
}

const C1 = (0.01 * 255) ** 2;
const C2 = (0.03 * 255) ** 2;

/**
 * The reference side of {@link ssim}, computed once: its summed-area tables. A search that scores
 * several candidates against the same pixels (`quality: "auto"`) then builds only the candidate's
 * tables per trial; the result is exactly {@link ssim}'s.
 */
export interface SsimReference {
  luma: Luma;
  win: number;
  stride: number;
  /** Summed-area tables of a and a², (width+1)×(height+1) with a zero first row/column. */
  sa: Float64Array;
  saa: Float64Array;
}

/** Prepares `a` as the fixed side of repeated {@link ssimAgainst} calls. */
export function ssimReference(a: Luma, options: SsimOptions = {}): SsimReference {
  const { width, height } = a;
  const win = Math.max(1, Math.min(options.window ?? 8, width, height));
  const stride = Math.max(1, options.stride ?? 4);
  const w1 = width + 1;
  const sa = new Float64Array(w1 * (height + 1));
  const saa = new Float64Array(sa.length);
  for (let y = 0; y < height; y++) {
    let ra = 0;
    let raa = 0;
    for (let x = 0; x < width; x++) {
      const va = a.data[y * width + x];
      ra += va;
      raa += va * va;
      const i = (y + 1) * w1 + x + 1;
      sa[i] = sa[i - w1] + ra;
      saa[i] = saa[i - w1] + raa;
    }
  }
  return { luma: a, win, stride, sa, saa };
}

/**
 * Mean SSIM over all windows: 1 for identical images, lower for worse. Both images must have the same
 * size; images smaller than a window are compared as one window.
 */
export function ssim(a: Luma, b: Luma, options: SsimOptions = {}): number {
  return ssimAgainst(ssimReference(a, options), b);
}

/** {@link ssim} of `b` against a prepared reference. */
export function ssimAgainst(ref: SsimReference, b: Luma): number {
  const a = ref.luma;
  if (a.width !== b.width || a.height !== b.height) {
    throw new RangeError(`ssim: sizes differ (${a.width}x${a.height} vs ${b.width}x${b.height})`);
  }
  const { width, height } = a;
  const { win, stride, sa, saa } = ref;
  const w1 = width + 1;
  // Summed-area tables of b, b² and ab, laid out like the reference's.
  const sb = new Float64Array(sa.length);
  const sbb = new Float64Array(sa.length);
  const sab = new Float64Array(sa.length);
  for (let y = 0; y < height; y++) {
    let rb = 0;
    let rbb = 0;
    let rab = 0;
    for (let x = 0; x < width; x++) {
      const va = a.data[y * width + x];
      const vb = b.data[y * width + x];
      rb += vb;
      rbb += vb * vb;
      rab += va * vb;
      const i = (y + 1) * w1 + x + 1;
      const up = i - w1;
      sb[i] = sb[up] + rb;
      sbb[i] = sbb[up] + rbb;
      sab[i] = sab[up] + rab;
    }
  }
  const box = (t: Float64Array, x: number, y: number): number => t[(y + win) * w1 + x + win] - t[y * w1 + x + win] - t[(y + win) * w1 + x] + t[y * w1 + x];
  const n = win * win;
  let sum = 0;
  let count = 0;
  for (let y = 0; y + win <= height; y += stride) {
    for (let x = 0; x + win <= width; x += stride) {
      const ma = box(sa, x, y) / n;
      const mb = box(sb, x, y) / n;
      const va = Math.max(0, box(saa, x, y) / n - ma * ma);
      const vb = Math.max(0, box(sbb, x, y) / n - mb * mb);
      const cov = box(sab, x, y) / n - ma * mb;
      sum += ((2 * ma * mb + C1) * (2 * cov + C2)) / ((ma * ma + mb * mb + C1) * (va + vb + C2));
      count++;
    }
  }
  return sum / count;
}
