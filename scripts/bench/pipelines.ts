/**
 * The three ways the benchmark turns one original into the configured variants:
 *
 * 1. pixelpipe: `SharpImageProcessor.render`, the code path the functions run.
 * 2. The Firebase "Resize Images" extension's per-output pipeline (the baseline), re-implemented from
 *    firebase/extensions `storage-resize-images/functions/src/resize-image.ts` (`modifyImage`, `resize`,
 *    `convertType`) and `index.ts` (one task per format × size, all started with `Promise.all`).
 * 3. The lower bound: one decode straight to the largest output size, plus one encode per output from
 *    pixels that are already at that output's size. No pipeline that decodes the original and encodes
 *    every output can do less work; resizes, filters and alpha flattening are deliberately left out.
 */
import sharp, { type Sharp, type SharpOptions } from 'sharp';
import { loadConfig, type PixelpipeConfig, type VariantSpec } from '../../shared/config';
import { scaledSize, type Size } from '../../shared/image/geometry';
import { decodeHeic } from '../../shared/image/heic';
import {
  applyFilter,
  defaultQuality,
  lossyEncoder,
  photoSource,
  SharpImageProcessor,
  type SharpProcessorOptions,
} from '../../shared/image/sharp-image-processor';
import type { ImageProbe, RenderOptions, RenderResult } from '../../shared/ports';
import { timed, type Timing } from './stats';

/** One encoded output, whichever pipeline made it. */
export interface OutputInfo {
  variant: string;
  format: string;
  width: number;
  height: number;
  bytes: number;
  body: Buffer;
}

/** Config, render options and processor as the process function builds them at cold start. */
export interface BenchSetup {
  config: PixelpipeConfig;
  options: RenderOptions;
  processor: SharpImageProcessor;
}

/**
 * The default configuration (`loadConfig` with only `PIXELPIPE_AUTH_MODE=anonymous`), optionally with
 * extra `PIXELPIPE_*` variables for the knob experiments.
 */
export function benchSetup(env: Record<string, string | undefined> = {}, processorOptions: SharpProcessorOptions = {}): BenchSetup {
  const config = loadConfig({ PIXELPIPE_AUTH_MODE: 'anonymous', ...env });
  return {
    config,
    options: {
      webpEffort: config.output.webpEffort,
      avifEffort: config.output.avifEffort,
      placeholder: config.output.placeholder,
      qualityTarget: config.output.qualityTarget,
    },
    processor: new SharpImageProcessor(processorOptions),
  };
}

/** pixelpipe's render of `input` with the setup's variants: exactly what the process function does. */
export function runPixelpipe(setup: BenchSetup, input: Buffer): Promise<RenderResult> {
  return setup.processor.render(input, setup.config.variants, setup.config.limits, setup.options);
}

/** pixelpipe's outputs in the benchmark's common shape. */
export function pixelpipeOutputs(result: RenderResult): OutputInfo[] {
  return result.outputs.map((o) => ({ variant: o.variant, format: o.format, width: o.width, height: o.height, bytes: o.body.length, body: o.body }));
}

// ---------------------------------------------------------------------------------------------------
// Baseline: the Firebase extension
// ---------------------------------------------------------------------------------------------------

/**
 * The extension's encoder settings: its default output quality and sharp's default WebP effort. Fixed
 * here, not taken from pixelpipe's config, so tuning pixelpipe's defaults never moves the baseline.
 */
export const FIREBASE_QUALITY = 80;
export const FIREBASE_WEBP_EFFORT = 4;
const FIREBASE_AVIF_EFFORT = 4;

/** sharp formats the extension accepts (its `supportedContentTypes`); sharp reports AVIF as `heif`. */
const FIREBASE_INPUTS = new Set(['jpeg', 'png', 'tiff', 'webp', 'gif', 'heif']);

/** The baseline's outputs and how many full decode and encode passes it ran to get them. */
export interface BaselineResult {
  outputs: OutputInfo[];
  decodes: number;
  encodes: number;
}

/** True when the extension would process this input at all (it refuses HEIC, for one). */
export async function firebaseAccepts(input: Buffer): Promise<boolean> {
  try {
    const meta = await sharp(input).metadata();
    // HEIC decodes only through our WebAssembly decoder; sharp (and so the extension) cannot read it.
    return FIREBASE_INPUTS.has(meta.format ?? '') && meta.compression !== 'hevc';
  } catch {
    return false;
  }
}

/**
 * The extension's work for every (variant, format) pair, run concurrently like its `Promise.all`:
 *
 * - `resize()`: decode the original (sharp applies JPEG shrink-on-load itself), `.rotate()`, resize, and
 *   encode in the source format with sharp's defaults (JPEG q80, PNG level 6);
 * - `convertType()`: decode that buffer and encode the requested format with the output options;
 * - `sharp(buffer).toFile(tmp)`: decode and encode once more, in the same format with sharp's defaults
 *   (the temp file name has no extension, so sharp keeps the input format).
 *
 * Differences, all of them neutral or in the baseline's favour: buffers instead of temp files (no disk
 * I/O); `fit`, crop geometry and the grayscale filter of our variants applied in the first pipeline (the
 * extension only knows `fit: inside` boxes and has no filters), so both pipelines make the same images;
 * JPEG outputs of transparent inputs are flattened on the variant background, as pixelpipe does (the
 * extension would flatten on black).
 */
export async function runFirebaseBaseline(input: Buffer, variants: VariantSpec[]): Promise<BaselineResult> {
  const meta = await sharp(input).metadata();
  const swap = (meta.orientation ?? 1) >= 5;
  const source: Size = swap ? { width: meta.height, height: meta.width } : { width: meta.width, height: meta.height };
  const sourceFormat = meta.format as string;
  let decodes = 0;
  let encodes = 0;

  const modifyImage = async (v: VariantSpec, format: 'jpeg' | 'webp' | 'avif' | 'png'): Promise<OutputInfo> => {
    let first = firebaseResize(sharp(input, { failOn: 'none', animated: false }).rotate(), v, source);
    if (v.filter) first = applyFilter(first, v.filter);
    const resized = await first.toBuffer();
    decodes++;
    encodes++;

    let second = sharp(resized);
    switch (format) {
      case 'jpeg':
        if (meta.hasAlpha) second = second.flatten({ background: v.background });
        second = second.jpeg({ quality: FIREBASE_QUALITY });
        break;
      case 'webp':
        second = second.webp({ quality: FIREBASE_QUALITY, effort: FIREBASE_WEBP_EFFORT });
        break;
      case 'avif':
        second = second.avif({ quality: FIREBASE_QUALITY, effort: FIREBASE_AVIF_EFFORT });
        break;
      case 'png':
        second = second.png();
        break;
    }
    const converted = await second.toBuffer();
    decodes++;
    encodes++;

    const { data, info } = await sharp(converted, { animated: false }).toBuffer({ resolveWithObject: true });
    decodes++;
    encodes++;
    return { variant: v.name, format, width: info.width, height: info.height, bytes: data.length, body: data };
  };

  const tasks: Array<Promise<OutputInfo>> = [];
  for (const v of variants) {
    for (const f of v.formats) {
      const format = f === 'original' ? (sourceFormat === 'png' || sourceFormat === 'webp' ? sourceFormat : 'jpeg') : f;
      tasks.push(modifyImage(v, format));
    }
  }
  const outputs = await Promise.all(tasks);
  return { outputs, decodes, encodes };
}

/** The extension's `resize(w, h, { fit: 'inside', withoutEnlargement: true })`, generalised to our fits. */
function firebaseResize(p: Sharp, v: VariantSpec, source: Size): Sharp {
  if (v.fit !== 'cover') {
    return p.resize(v.width ?? null, v.height ?? null, { fit: v.fit, withoutEnlargement: v.withoutEnlargement, background: v.background });
  }
  // Same scale-then-centre-crop geometry as pixelpipe, so the two thumbnails show the same pixels.
  const scaled = scaledSize(v, source);
  const width = Math.min(v.width!, scaled.width);
  const height = Math.min(v.height!, scaled.height);
  return p
    .resize(scaled.width, scaled.height, { fit: 'fill' })
    .extract({ left: Math.floor((scaled.width - width) / 2), top: Math.floor((scaled.height - height) / 2), width, height });
}

/** The filters of `shared/config.ts`, applied exactly the way the processor applies them. */
export { applyFilter };

// ---------------------------------------------------------------------------------------------------
// Lower bound: one decode + one encode per output
// ---------------------------------------------------------------------------------------------------

/** Interleaved 8-bit pixels. */
export interface Raw {
  data: Buffer;
  width: number;
  height: number;
  channels: 1 | 2 | 3 | 4;
}

/** One encode of the lower bound: final pixels (resized, cropped, filtered, flattened) and the encoder. */
interface LowerBoundEncode {
  key: string;
  raw: Raw;
  format: 'jpeg' | 'webp' | 'avif' | 'png';
  quality: number;
  /** Whether the original is a camera format (the processor's `photoSource`): it picks the JPEG scan mode. */
  photo: boolean;
}

/** Everything the lower bound needs, prepared outside the timed region. */
export interface LowerBoundPlan {
  input: Buffer;
  probe: ImageProbe;
  /** The largest output's exact size: what the single decode must produce. */
  decodeTo: Size;
  limits: PixelpipeConfig['limits'];
  encodes: LowerBoundEncode[];
  options: RenderOptions;
}

/** Breakdown of one lower-bound measurement; `total` is the sum of the parts. */
export interface LowerBoundTiming {
  decode: Timing;
  encodes: Record<string, Timing>;
  total: Timing;
}

/**
 * Prepares the lower bound's inputs (untimed): each output's final pixels, resized, cropped, filtered
 * and flattened, so the timed part is only the decode and the encodes.
 */
export async function planLowerBound(setup: BenchSetup, input: Buffer): Promise<LowerBoundPlan> {
  const { config, options } = setup;
  const probe = await setup.processor.probe(input, config.limits);
  let decodeTo: Size = { width: 1, height: 1 };
  for (const v of config.variants) {
    const s = scaledSize(v, probe);
    if (s.width * s.height > decodeTo.width * decodeTo.height) decodeTo = s;
  }
  // Encode cost depends on content (grain, detail), so the bound encodes exactly the pixels pixelpipe
  // encodes: its own decode and resizes, rendered losslessly (PNG) and unpacked.
  const lossless = await setup.processor.render(
    input,
    config.variants.map((v) => ({ ...v, formats: ['png' as const] })),
    config.limits,
    { ...options, placeholder: false },
  );
  const encodes: LowerBoundEncode[] = [];
  for (const v of config.variants) {
    const sized = await toRaw(sharp(lossless.outputs.find((o) => o.variant === v.name)!.body));
    for (const f of v.formats) {
      const format = f === 'original' ? (probe.format === 'png' || probe.format === 'webp' ? probe.format : 'jpeg') : f;
      // JPEG has no alpha: flatten here so the timed encode is only the encode.
      const raw =
        format === 'jpeg' && (sized.channels === 2 || sized.channels === 4) ? await toRaw(fromRaw(sized).flatten({ background: v.background })) : sized;
      encodes.push({
        key: `${v.name}.${format}`,
        raw,
        format,
        photo: photoSource(probe),
        quality:
          typeof v.quality === 'number'
            ? v.quality
            : format === 'png'
              ? 0
              : defaultQuality(format, { pixels: raw.width * raw.height, alpha: hasAlpha(raw, format) }),
      });
    }
  }
  return { input, probe, decodeTo, limits: config.limits, encodes, options };
}

/** Times the lower bound once: the decode to the largest output, then every encode, one after another. */
export async function runLowerBound(plan: LowerBoundPlan): Promise<LowerBoundTiming> {
  const decode = await timed(() =>
    decodeToSize(plan.input, plan.probe, plan.decodeTo, { limitInputPixels: plan.limits.maxInputPixels, failOn: plan.limits.failOn }),
  );
  const encodes: Record<string, Timing> = {};
  const total: Timing = { wallMs: decode.wallMs, cpuMs: decode.cpuMs };
  for (const e of plan.encodes) {
    const t = await timed(() => encodeRaw(e, plan.options));
    encodes[e.key] = { wallMs: t.wallMs, cpuMs: t.cpuMs };
    total.wallMs += t.wallMs;
    total.cpuMs += t.cpuMs;
  }
  return { decode: { wallMs: decode.wallMs, cpuMs: decode.cpuMs }, encodes, total };
}

/** The lower bound's outputs (for byte counts); untimed. */
export async function lowerBoundOutputs(plan: LowerBoundPlan): Promise<OutputInfo[]> {
  const out: OutputInfo[] = [];
  for (const e of plan.encodes) {
    const body = await encodeRaw(e, plan.options);
    const [variant, format] = e.key.split('.');
    out.push({ variant, format, width: e.raw.width, height: e.raw.height, bytes: body.length, body });
  }
  return out;
}

/** The processor's own encoder settings (`lossyEncoder`); fixed quality (the bound is for the default config). */
function encodeRaw(e: LowerBoundEncode, options: RenderOptions): Promise<Buffer> {
  const p = fromRaw(e.raw);
  return e.format === 'png'
    ? p.png({ compressionLevel: 6 }).toBuffer()
    : lossyEncoder(p, e.format, e.quality, options, { pixels: e.raw.width * e.raw.height, alpha: hasAlpha(e.raw, e.format), photo: e.photo }).toBuffer();
}

function hasAlpha(raw: Raw, format: string): boolean {
  return format !== 'jpeg' && (raw.channels === 2 || raw.channels === 4);
}

async function decodeToSize(input: Buffer, probe: ImageProbe, size: Size, guard: Pick<SharpOptions, 'limitInputPixels' | 'failOn'>): Promise<Raw> {
  let p: Sharp;
  if (probe.format === 'heif' && probe.mimeType !== 'image/avif') {
    const rgba = await decodeHeic(input);
    p = sharp(rgba.data, { raw: { width: rgba.width, height: rgba.height, channels: 4 } });
    if (!probe.hasAlpha) p = p.removeAlpha();
  } else {
    p = sharp(input, { ...guard, sequentialRead: true, pages: 1 }).autoOrient();
  }
  if (size.width !== probe.width || size.height !== probe.height) p = p.resize(size.width, size.height, { fit: 'fill' });
  return toRaw(p.toColourspace('srgb'));
}

/** The whole original, oriented, as 8-bit sRGB pixels: no shrink-on-load, so no resampling at all. */
export function decodeFull(input: Buffer, probe: ImageProbe): Promise<Raw> {
  return decodeToSize(input, probe, { width: probe.width, height: probe.height }, { limitInputPixels: false, failOn: 'none' });
}

/** A sharp pipeline over raw pixels. */
export function fromRaw(img: Raw): Sharp {
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: img.channels } });
}

async function toRaw(p: Sharp): Promise<Raw> {
  const { data, info } = await p.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

/** Total bytes per output format, e.g. `{ webp: 740000, jpeg: 1100000 }`. */
export function bytesByFormat(outputs: OutputInfo[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const o of outputs) out[o.format] = (out[o.format] ?? 0) + o.bytes;
  return out;
}
