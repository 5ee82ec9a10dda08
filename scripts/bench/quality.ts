/**
 * Output quality against a reference: for each variant, the fully decoded original resized by sharp
 * straight to the variant's geometry (one Lanczos3 resize, no intermediate encode), kept lossless. Any pipeline's
 * output of that variant is then scored by SSIM against it.
 */
import { parseVariants, type VariantSpec } from '../../shared/config';
import { scaledSize } from '../../shared/image/geometry';
import type { ImageProbe } from '../../shared/ports';
import { applyFilter, decodeFull, fromRaw, pixelpipeOutputs, runFirebaseBaseline, type BenchSetup, type OutputInfo, type Raw } from './pipelines';
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

/** The lossless reference of every variant, by name, from one full decode of the original. */
export async function referenceLumas(input: Buffer, probe: ImageProbe, variants: VariantSpec[]): Promise<Map<string, Luma>> {
  const full = await decodeFull(input, probe);
  const refs = new Map<string, Luma>();
  for (const v of variants) refs.set(v.name, await referenceLuma(input, probe, v, full));
  return refs;
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

/** Scores every output (references are computed once per variant, from one full decode). */
export async function scoreOutputs(input: Buffer, probe: ImageProbe, variants: VariantSpec[], outputs: OutputInfo[]): Promise<Score[]> {
  for (const o of outputs) if (!variants.some((x) => x.name === o.variant)) throw new Error(`scoreOutputs: no variant named ${o.variant}`);
  const refs = await referenceLumas(
    input,
    probe,
    variants.filter((v) => outputs.some((o) => o.variant === v.name)),
  );
  const scores: Score[] = [];
  for (const o of outputs) {
    const got = await decodeLuma(o.body);
    scores.push({ variant: o.variant, format: o.format, width: o.width, height: o.height, bytes: o.bytes, ssim: ssim(refs.get(o.variant)!, got) });
  }
  return scores;
}

/**
 * The equal-work set: four inside-fit sizes × WebP + JPEG, no placeholder. Quality is left to
 * pixelpipe's per-format defaults; the baseline encodes at the extension's q80 whatever the variant says.
 */
export const EQUAL_WORK_VARIANTS: VariantSpec[] = parseVariants(
  [200, 480, 1024, 2048].map((w) => ({ name: `w${w}`, width: w, height: w, fit: 'inside', formats: ['webp', 'jpeg'] })),
);

/** pixelpipe against the baseline for one output: SSIM against the lossless reference, and bytes. */
export interface QualityRow {
  variant: string;
  format: string;
  pixelpipeSsim: number;
  baselineSsim: number;
  pixelpipeBytes: number;
  baselineBytes: number;
  /** Both at once: SSIM ≥ the baseline's and bytes ≤ the baseline's. */
  dominates: boolean;
}

/**
 * pixelpipe's outputs against the Firebase-style baseline's, output by output: luma SSIM of each
 * against the lossless reference resize of the full original, and bytes. Variants must be still (no
 * animation) and use `jpeg`/`webp`. `variants` defaults to the setup's (the default config).
 */
export async function compareQuality(setup: BenchSetup, input: Buffer, variants: VariantSpec[] = setup.config.variants): Promise<QualityRow[]> {
  const { config, options, processor } = setup;
  const probe = await processor.probe(input, config.limits);
  const pp = pixelpipeOutputs(await processor.render(input, variants, config.limits, { ...options, placeholder: false }));
  const fb = (await runFirebaseBaseline(input, variants)).outputs;
  const full = await decodeFull(input, probe);
  const rows: QualityRow[] = [];
  for (const v of variants) {
    const ref = await referenceLuma(input, probe, v, full);
    for (const format of v.formats) {
      if (format !== 'jpeg' && format !== 'webp') continue;
      const mine = pp.find((o) => o.variant === v.name && o.format === format)!;
      const theirs = fb.find((o) => o.variant === v.name && o.format === format)!;
      // Compared unrounded: the check is "not worse", and rounding could hide a loss in the 5th digit.
      const a = ssim(ref, await decodeLuma(mine.body));
      const b = ssim(ref, await decodeLuma(theirs.body));
      rows.push({
        variant: v.name,
        format,
        pixelpipeSsim: round(a, 5),
        baselineSsim: round(b, 5),
        pixelpipeBytes: mine.bytes,
        baselineBytes: theirs.bytes,
        dominates: a >= b && mine.bytes <= theirs.bytes,
      });
    }
  }
  return rows;
}

/** `quality: "auto"` against a fixed quality 80, on the same variants and image. */
export interface AutoQualityRow {
  output: string;
  /** Fixed quality 80: bytes and SSIM against the lossless reference. */
  fixedBytes: number;
  fixedSsim: number;
  autoBytes: number;
  autoSsim: number;
  /** What the search chose, and the score it recorded (SSIM against the output's own pixels). */
  autoQuality?: number;
  autoScore?: number;
}

/** The default variants with every quality set to `quality`. */
export function withQuality(variants: VariantSpec[], quality: number | 'auto'): VariantSpec[] {
  return variants.map((v) => ({ ...v, quality }));
}

/**
 * Renders `input` with every output at fixed quality 80 and with `quality: "auto"` (the setup's
 * target), and scores both against the lossless references: the bytes auto saves and what it costs.
 */
export async function compareAutoQuality(setup: BenchSetup, input: Buffer): Promise<AutoQualityRow[]> {
  const { config, options, processor } = setup;
  const probe = await processor.probe(input, config.limits);
  const fixedVariants = withQuality(config.variants, 80);
  const autoVariants = withQuality(config.variants, 'auto');
  const noPlaceholder = { ...options, placeholder: false };
  const fixed = await processor.render(input, fixedVariants, config.limits, noPlaceholder);
  const auto = await processor.render(input, autoVariants, config.limits, noPlaceholder);
  const fixedScores = await scoreOutputs(input, probe, fixedVariants, pixelpipeOutputs(fixed));
  const autoScores = await scoreOutputs(input, probe, autoVariants, pixelpipeOutputs(auto));
  return fixedScores.map((f, i) => {
    const a = autoScores[i];
    const o = auto.outputs[i];
    return {
      output: `${f.variant}.${f.format}`,
      fixedBytes: f.bytes,
      fixedSsim: round(f.ssim, 5),
      autoBytes: a.bytes,
      autoSsim: round(a.ssim, 5),
      autoQuality: o.quality,
      autoScore: o.score,
    };
  });
}
