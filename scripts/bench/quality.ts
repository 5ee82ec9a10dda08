/**
 * Output quality against a reference: for each variant, the fully decoded original resized by sharp
 * straight to the variant's geometry (one Lanczos3 resize, no intermediate encode), kept lossless. Any pipeline's
 * output of that variant is then scored by SSIM against it.
 */
import sharp from 'sharp';
import type { VariantSpec } from '../../shared/config';
import { scaledSize } from '../../shared/image/geometry';
import type { ImageProbe, RenderOptions } from '../../shared/ports';
import { applyFilter, decodeFull, fromRaw, pixelpipeOutputs, runFirebaseBaseline, runPixelpipe, type BenchSetup, type OutputInfo, type Raw } from './pipelines';
import { decodeLuma, lumaFromPixels, ssim, type Luma } from './ssim';
import { round } from './stats';

/** The lossless reference of one variant, as luma (alpha composited over white, like the scoring). */
export async function referenceLuma(input: Buffer, probe: ImageProbe, v: VariantSpec, full?: Raw): Promise<Luma> {
  // From the full-resolution decode: JPEG shrink-on-load would make the reference resemble whichever
  // pipeline happens to resize straight from the file.
  let p = fromRaw(full ?? (await decodeFull(input, probe)));
  const scaled = scaledSize(v, probe);
  p = p.resize(scaled.width, scaled.height, { fit: 'fill' });
  if (v.fit === 'cover') {
    const width = Math.min(v.width!, scaled.width);
    const height = Math.min(v.height!, scaled.height);
    p = p.extract({ left: Math.floor((scaled.width - width) / 2), top: Math.floor((scaled.height - height) / 2), width, height });
  } else if (v.fit === 'contain') {
    throw new Error('referenceLuma: contain is not used by the benchmark configs');
  }
  // Composited over white first, as every output is scored (and sharp's raw grayscale output drops alpha).
  p = p.flatten({ background: '#ffffff' });
  if (v.filter) p = applyFilter(p, v.filter);
  // A lossless PNG round trip would give the same pixels; raw skips the encode.
  const { data, info } = await p.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  return lumaFromPixels(data, info.width, info.height, info.channels);
}

/** SSIM and size of one output against its variant's reference. */
export interface Score {
  variant: string;
  format: string;
  width: number;
  height: number;
  bytes: number;
  ssim: number;
}

/** Scores every output (references are computed once per variant). */
export async function scoreOutputs(input: Buffer, probe: ImageProbe, variants: VariantSpec[], outputs: OutputInfo[]): Promise<Score[]> {
  const refs = new Map<string, Luma>();
  const scores: Score[] = [];
  const full = await decodeFull(input, probe);
  for (const o of outputs) {
    const v = variants.find((x) => x.name === o.variant);
    if (!v) throw new Error(`scoreOutputs: no variant named ${o.variant}`);
    let ref = refs.get(v.name);
    if (!ref) {
      ref = await referenceLuma(input, probe, v, full);
      refs.set(v.name, ref);
    }
    const got = await decodeLuma(o.body);
    scores.push({ variant: o.variant, format: o.format, width: o.width, height: o.height, bytes: o.bytes, ssim: ssim(ref, got) });
  }
  return scores;
}

/** Pixelpipe against the baseline for one output: quality, size, and size at the baseline's quality. */
export interface QualityRow {
  variant: string;
  format: string;
  pixelpipeSsim: number;
  baselineSsim: number;
  pixelpipeBytes: number;
  baselineBytes: number;
  /**
   * What pixelpipe's own pixels and encoder need to reach the baseline's SSIM (interpolated between
   * the two encoder qualities that bracket it): the bytes "at equal quality".
   */
  pixelpipeBytesAtBaselineSsim: number;
  /** The (fractional) encoder quality where that happens. */
  qualityAtBaselineSsim: number;
}

type Lossy = 'jpeg' | 'webp';

/** The processor's encoder settings for a still output (keep in step with `encode()` there). */
function encodeLike(pixels: Buffer, v: VariantSpec, format: Lossy, quality: number, options: RenderOptions): Promise<Buffer> {
  const p = sharp(pixels);
  // flatten() is a no-op without alpha, as in the processor (which flattens only 2- and 4-band images).
  return format === 'jpeg' ? p.flatten({ background: v.background }).jpeg({ quality }).toBuffer() : p.webp({ quality, effort: options.webpEffort }).toBuffer();
}

/**
 * Encodes `pixels` at qualities around `start` until two bracket `target` SSIM, and interpolates the
 * byte count there. Starts from the configured quality, steps by 4, stays within 1..100.
 */
export async function bytesAtSsim(
  pixels: Buffer,
  ref: Luma,
  v: VariantSpec,
  format: Lossy,
  options: RenderOptions,
  target: number,
): Promise<{ bytes: number; quality: number }> {
  const probeAt = async (q: number) => {
    const body = await encodeLike(pixels, v, format, q, options);
    return { q, bytes: body.length, ssim: ssim(ref, await decodeLuma(body)) };
  };
  let a = await probeAt(v.quality);
  if (Math.abs(a.ssim - target) < 1e-9) return { bytes: a.bytes, quality: a.q };
  const step = a.ssim > target ? -4 : 4;
  for (;;) {
    const q = Math.min(100, Math.max(1, a.q + step));
    if (q === a.q) return { bytes: a.bytes, quality: a.q };
    const b = await probeAt(q);
    if ((step < 0 && b.ssim <= target) || (step > 0 && b.ssim >= target)) {
      const t = b.ssim === a.ssim ? 0 : (target - a.ssim) / (b.ssim - a.ssim);
      return { bytes: Math.round(a.bytes + t * (b.bytes - a.bytes)), quality: round(a.q + t * (b.q - a.q), 1) };
    }
    a = b;
  }
}

/**
 * pixelpipe's outputs against the Firebase-style baseline's for every lossy output of `setup`'s
 * variants: SSIM of each against the lossless reference, bytes, and pixelpipe's bytes at the baseline's
 * SSIM. Variants must be still (no animation) and use `jpeg`/`webp`.
 */
export async function compareQuality(setup: BenchSetup, input: Buffer): Promise<QualityRow[]> {
  const { config, options, processor } = setup;
  const probe = await processor.probe(input, config.limits);
  const pp = pixelpipeOutputs(await runPixelpipe(setup, input));
  const fb = (await runFirebaseBaseline(input, config.variants, options)).outputs;
  // The same decode-once cascade, rendered losslessly: the exact pixels pixelpipe's encoders saw.
  const lossless = await processor.render(
    input,
    config.variants.map((v) => ({ ...v, formats: ['png' as const] })),
    config.limits,
    { ...options, placeholder: false },
  );
  const full = await decodeFull(input, probe);
  const rows: QualityRow[] = [];
  for (const v of config.variants) {
    const ref = await referenceLuma(input, probe, v, full);
    const pixels = lossless.outputs.find((o) => o.variant === v.name)!.body;
    for (const format of v.formats) {
      if (format !== 'jpeg' && format !== 'webp') continue;
      const mine = pp.find((o) => o.variant === v.name && o.format === format)!;
      const theirs = fb.find((o) => o.variant === v.name && o.format === format)!;
      const pixelpipeSsim = ssim(ref, await decodeLuma(mine.body));
      const baselineSsim = ssim(ref, await decodeLuma(theirs.body));
      const eq = await bytesAtSsim(pixels, ref, v, format, options, baselineSsim);
      rows.push({
        variant: v.name,
        format,
        pixelpipeSsim: round(pixelpipeSsim, 4),
        baselineSsim: round(baselineSsim, 4),
        pixelpipeBytes: mine.bytes,
        baselineBytes: theirs.bytes,
        pixelpipeBytesAtBaselineSsim: eq.bytes,
        qualityAtBaselineSsim: eq.quality,
      });
    }
  }
  return rows;
}
