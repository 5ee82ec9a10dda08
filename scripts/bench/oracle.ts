/**
 * The oracle bound of per-output quality choice (issue #14): each output's rate–distortion curve (bytes and
 * luma SSIM against the bench's lossless reference at every quality of a grid), and the fewest total bytes
 * any per-output choice of quality can reach while the mean SSIM stays at least fixed quality 80's.
 */
import type { QualityTarget, VariantSpec } from '../../shared/config';
import { pixelpipeOutputs, type BenchSetup } from './pipelines';
import { referenceLumas, withQuality } from './quality';
import { decodeLuma, ssim } from './ssim';
import { round } from './stats';

/** One encode of one output: its quality, bytes and SSIM against the lossless reference. */
export interface RdPoint {
  quality: number;
  bytes: number;
  ssim: number;
}

/** The rate–distortion curve of one output (`image/variant.format`), points in any order. */
export interface RdCurve {
  output: string;
  /** Output pixels (for the pixel-weighted mean). */
  pixels: number;
  points: RdPoint[];
}

/** What the oracle chose: one point per curve, with the totals. */
export interface OracleChoice {
  bytes: number;
  /** Weighted mean SSIM of the choice (weights normalised). */
  meanSsim: number;
  picks: RdPoint[];
}

/**
 * Minimum total bytes over one point per curve such that the weighted mean SSIM is ≥ `minMean`, by dynamic
 * programming over the SSIM shortfall below each curve's best point, discretised in steps of `step`.
 * `round: 'up'` rounds each shortfall up, so every choice the DP accepts truly meets the constraint (its
 * bytes are achievable); `'down'` rounds down, so the DP may accept choices up to curves.length × step
 * short and its bytes are a lower bound of the true optimum. With both the exact optimum is bracketed.
 * Returns `undefined` when no choice meets the constraint. `weights` default to equal (the auto table's mean).
 */
export function oracleMinBytes(
  curves: RdCurve[],
  minMean: number,
  { step = 1e-5, round: rounding = 'up', weights }: { step?: number; round?: 'up' | 'down'; weights?: number[] } = {},
): OracleChoice | undefined {
  const w = weights ?? curves.map(() => 1);
  const wSum = w.reduce((a, b) => a + b, 0);
  const norm = w.map((x) => (x / wSum) * curves.length);
  // Σ norm_i·ssim_i ≥ n·minMean  ⇔  Σ norm_i·(best_i − ssim_i) ≤ Σ norm_i·best_i − n·minMean.
  const best = curves.map((c) => Math.max(...c.points.map((p) => p.ssim)));
  const slack = best.reduce((a, b, i) => a + norm[i] * b, 0) - curves.length * minMean;
  if (slack < -1e-12) return undefined;
  // The tiny epsilon keeps a choice that meets the constraint with equality from being lost to float error.
  const budget = Math.floor(slack / step + 1e-9);
  const INF = Number.POSITIVE_INFINITY;
  let cost = new Float64Array(budget + 1).fill(INF);
  cost[0] = 0;
  const choice: Int32Array[] = [];
  for (let i = 0; i < curves.length; i++) {
    const pts = curves[i].points;
    const loss = pts.map((p) => {
      const l = (norm[i] * (best[i] - p.ssim)) / step;
      return rounding === 'up' ? Math.ceil(l - 1e-9) : Math.floor(l + 1e-9);
    });
    const next = new Float64Array(budget + 1).fill(INF);
    const pick = new Int32Array(budget + 1).fill(-1);
    for (let s = 0; s <= budget; s++) {
      const c = cost[s];
      if (c === INF) continue;
      for (let k = 0; k < pts.length; k++) {
        const t = s + loss[k];
        if (t > budget) continue;
        const v = c + pts[k].bytes;
        if (v < next[t]) {
          next[t] = v;
          pick[t] = k;
        }
      }
    }
    choice.push(pick);
    cost = next;
  }
  let end = -1;
  for (let s = 0; s <= budget; s++) if (cost[s] !== INF && (end < 0 || cost[s] < cost[end])) end = s;
  if (end < 0) return undefined;
  const picks: RdPoint[] = new Array<RdPoint>(curves.length);
  let s = end;
  for (let i = curves.length - 1; i >= 0; i--) {
    const k = choice[i][s];
    const p = curves[i].points[k];
    picks[i] = p;
    const l = (norm[i] * (best[i] - p.ssim)) / step;
    s -= rounding === 'up' ? Math.ceil(l - 1e-9) : Math.floor(l + 1e-9);
  }
  return { bytes: cost[end], meanSsim: picks.reduce((a, p, i) => a + norm[i] * p.ssim, 0) / curves.length, picks };
}

/** Fewest bytes with every output's SSIM ≥ its own floor: per curve, the smallest point that meets it. */
export function oraclePerOutput(curves: RdCurve[], floors: number[]): OracleChoice | undefined {
  const picks: RdPoint[] = [];
  for (let i = 0; i < curves.length; i++) {
    const ok = curves[i].points.filter((p) => p.ssim >= floors[i]);
    if (!ok.length) return undefined;
    picks.push(ok.reduce((a, b) => (b.bytes < a.bytes ? b : a)));
  }
  return { bytes: picks.reduce((a, p) => a + p.bytes, 0), meanSsim: picks.reduce((a, p) => a + p.ssim, 0) / picks.length, picks };
}

/**
 * Each output's rate–distortion curve for one image: the processor renders the default variants at every
 * quality of `qualities` (so the bytes are exactly what it writes at that quality: same pixels, same
 * encoder settings), each output scored by luma SSIM against the bench's lossless reference.
 */
export async function rdCurves(
  setup: BenchSetup,
  input: Buffer,
  image: string,
  qualities: number[],
  variants: VariantSpec[] = setup.config.variants,
): Promise<RdCurve[]> {
  const { config, options, processor } = setup;
  const refs = await referenceLumas(input, await processor.probe(input, config.limits), variants);
  const curves = new Map<string, RdCurve>();
  for (const q of qualities) {
    const outs = pixelpipeOutputs(await processor.render(input, withQuality(variants, q), config.limits, { ...options, placeholder: false }));
    for (const o of outs) {
      if (o.format !== 'jpeg' && o.format !== 'webp') continue;
      const key = `${image}/${o.variant}.${o.format}`;
      const c = curves.get(key) ?? { output: key, pixels: o.width * o.height, points: [] };
      c.points.push({ quality: q, bytes: o.bytes, ssim: ssim(refs.get(o.variant)!, await decodeLuma(o.body)) });
      curves.set(key, c);
    }
  }
  return [...curves.values()];
}

/** One target of the real `quality: "auto"` search: total bytes and mean SSIM over the outputs. */
export interface AutoFrontierPoint {
  target: string;
  bytes: number;
  meanSsim: number;
  /** Per output, as in {@link RdPoint} (the quality the search chose). */
  outputs: Array<{ output: string } & RdPoint>;
}

/** Renders with `quality: "auto"` at each target (the processor's `qualityTarget` option) and scores like the bench. */
export async function autoFrontier(
  setup: BenchSetup,
  input: Buffer,
  image: string,
  targets: QualityTarget[],
  variants: VariantSpec[] = setup.config.variants,
): Promise<AutoFrontierPoint[]> {
  const { config, options, processor } = setup;
  const refs = await referenceLumas(input, await processor.probe(input, config.limits), variants);
  const result: AutoFrontierPoint[] = [];
  for (const t of targets) {
    const r = await processor.render(input, withQuality(variants, 'auto'), config.limits, { ...options, placeholder: false, qualityTarget: t });
    const outputs: AutoFrontierPoint['outputs'] = [];
    for (const o of r.outputs) {
      if (o.format !== 'jpeg' && o.format !== 'webp') continue;
      outputs.push({
        output: `${image}/${o.variant}.${o.format}`,
        quality: o.quality ?? 0,
        bytes: o.body.length,
        ssim: ssim(refs.get(o.variant)!, await decodeLuma(o.body)),
      });
    }
    result.push({
      target: `${t.metric}:${t.value}`,
      bytes: outputs.reduce((a, o) => a + o.bytes, 0),
      meanSsim: round(outputs.reduce((a, o) => a + o.ssim, 0) / outputs.length, 5),
      outputs,
    });
  }
  return result;
}
