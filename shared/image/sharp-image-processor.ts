/**
 * The image processor adapter, on sharp/libvips (not a cloud SDK, so it lives in the core).
 *
 * Decode once, derive everything: the original is decoded a single time, straight to the largest size
 * any variant needs (JPEG/WebP shrink-on-load), auto-oriented and converted to sRGB, into raw pixels.
 * Every variant is then resized from those pixels in one step (or shares the pixels of an earlier variant
 * of exactly its size), and each format is encoded from that variant's raw pixels.
 * sharp's `clone()` would re-decode the input per output, so it is deliberately not used.
 */
import sharp, { type Metadata, type Sharp, type SharpOptions } from 'sharp';
import { rgbaToThumbHash, thumbHashToDataURL } from 'thumbhash';
import { DEFAULT_QUALITY, type Filter, type ImageFormat, type PixelpipeConfig, type QualityTarget, type VariantSpec } from '../config';
import { ImageRejectedError } from '../errors';
import {
  ANALYSIS_MAX_SIDE,
  type AnalysisPixels,
  type CropRect,
  type ImageProbe,
  type ImageProcessor,
  type NormalizedBox,
  type RenderOptions,
  type RenderResult,
  type RenderedOutput,
} from '../ports';
import { facesCrop } from './smart-crop';
import { decodeSize, scaledSize, type Size } from './geometry';
import { sniffMimeType } from './sniff';
import { decodeHeic, probeHeic } from './heic';
import { renderAnimated } from './animated';
import { renderBlank } from './blank';
import { assertSafeSvg } from './svg';
import { decodeLuma, lumaFromPixels, ssimAgainst, ssimReference, type Luma } from './ssim';

type Encoded = Exclude<ImageFormat, 'original'>;
type OutFormat = Encoded | 'gif';

const CONTENT_TYPES: Record<OutFormat, string> = {
  jpeg: 'image/jpeg',
  webp: 'image/webp',
  avif: 'image/avif',
  png: 'image/png',
  gif: 'image/gif',
};
const EXTENSIONS: Record<OutFormat, string> = { jpeg: 'jpg', webp: 'webp', avif: 'avif', png: 'png', gif: 'gif' };

interface RawImage {
  data: Buffer;
  width: number;
  height: number;
  channels: 1 | 2 | 3 | 4;
}

export interface SharpProcessorOptions {
  /** libvips threads per image. 1 keeps one image per core; parallelism comes from concurrent outputs. */
  concurrency?: number;
}

/** Creates the sharp-backed {@link ImageProcessor}. Sets sharp's global concurrency and disables its cache. */
export class SharpImageProcessor implements ImageProcessor {
  constructor(options: SharpProcessorOptions = {}) {
    sharp.concurrency(options.concurrency ?? 1);
    // The operation cache only helps when the same input is processed repeatedly; here it only holds memory.
    sharp.cache(false);
  }

  async render(input: Buffer, variants: VariantSpec[], limits: PixelpipeConfig['limits'], options: RenderOptions): Promise<RenderResult> {
    const probe = await this.probe(input, limits);
    // The kind of original decides JPEG scan modes (see EncodeTarget.photo): known once, for every encode.
    const encodeOptions: EncodeOptions = { ...options, photo: photoSource(probe) };
    const animated = await renderAnimated(input, probe, variants, limits, options, {
      applyFilter,
      encodeStill: (img, v, format, o) => encode(img, v, format, { ...o, photo: encodeOptions.photo }),
      placeholder: makePlaceholder,
    });
    if (animated) return animated;
    const t0 = performance.now();
    const base = await this.decode(input, probe, variants, limits, options.analyze !== undefined);
    const decodeMs = performance.now() - t0;
    const analysis = options.analyze ? await options.analyze(await analysisRung(base), { probe }) : undefined;
    const faces = analysis?.faces ?? [];

    const encodeMs: Record<string, number> = {};
    const ladder: RawImage[] = [base];
    const pending: Array<Promise<RenderedOutput>> = [];
    const hints = autoHints(variants, probe);
    // Largest first, so a variant the same size as an earlier one can share its pixels.
    const order = [...variants].sort((a, b) => area(scaledSize(b, probe)) - area(scaledSize(a, probe)));
    for (const v of order) {
      const need = scaledSize(v, probe);
      const from = pickSource(ladder, need);
      const resized = await resize(from, v, need, { probe, faces });
      // Only uncropped, unpadded, proportional results can be shared (and the smallest feeds the placeholder).
      if ((v.fit === 'inside' || v.fit === 'outside') && resized.channels === base.channels) ladder.push(resized);
      for (const fmt of v.formats) {
        const format = resolveFormat(fmt, probe);
        pending.push(
          (async () => {
            const hint = hints.get(`${v.name}.${format}`);
            // A predicted start waits for the smaller output's search; the time waited is not this encode's.
            const start = hint ? await hint.start : undefined;
            const t = performance.now();
            const search: AutoSearch = { start };
            let out: RenderedOutput;
            try {
              out = await encode(resized, v, format, encodeOptions, search);
            } finally {
              // Resolved whatever happens, so a failed search never leaves a larger output waiting.
              hint?.done(search.found);
            }
            if (resized.crop) out.crop = resized.crop;
            encodeMs[`${v.name}.${format}`] = Math.round((performance.now() - t) * 10) / 10;
            return out;
          })(),
        );
      }
    }
    // Started now rather than after the encodes: its JavaScript (ThumbHash) then overlaps the encoders
    // whenever there is a second core. The no-op catch only marks a failure as handled until awaited.
    const placeholderJob = options.placeholder ? makePlaceholder(ladder[ladder.length - 1]) : Promise.resolve(null);
    placeholderJob.catch(() => {});
    const settled = await Promise.allSettled(pending);
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
    const outputs = (settled as Array<PromiseFulfilledResult<RenderedOutput>>).map((s) => s.value);
    // Keep the configured order in the manifest, whatever order encoding finished in.
    const rank = new Map(variants.map((v, i) => [v.name, i]));
    outputs.sort((a, b) => rank.get(a.variant)! - rank.get(b.variant)! || a.format.localeCompare(b.format));
    const placeholder = await placeholderJob;
    return {
      probe,
      outputs,
      placeholder,
      metrics: { decodeMs: Math.round(decodeMs * 10) / 10, encodeMs },
      ...(analysis !== undefined ? { analysis } : {}),
    };
  }

  /** The placeholders of a blocked image (see `ImageProcessor.renderBlank` and `blank.ts`). */
  renderBlank(source: ImageProbe, variants: VariantSpec[], background: string, options: RenderOptions): Promise<RenderedOutput[]> {
    return renderBlank((...args) => this.render(...args), source, variants, background, options);
  }

  /** Validates type and limits from headers only; no pixel is decoded here. */
  async probe(input: Buffer, limits: PixelpipeConfig['limits']): Promise<ImageProbe> {
    if (input.length === 0) throw new ImageRejectedError('empty_file', 'the file is empty');
    if (input.length > limits.maxInputBytes) {
      throw new ImageRejectedError('too_many_bytes', `the file has ${input.length} bytes; the limit is ${limits.maxInputBytes}`);
    }
    const mimeType = sniffMimeType(input);
    if (mimeType === null || mimeType === 'text/html' || mimeType === 'application/pdf') {
      throw new ImageRejectedError('unsupported_type', `not a supported image (detected: ${mimeType ?? 'unknown bytes'})`);
    }
    if (!limits.allowedTypes.includes(mimeType)) {
      if (mimeType === 'image/svg+xml') throw new ImageRejectedError('svg_not_allowed', 'SVG input is disabled');
      throw new ImageRejectedError('type_not_allowed', `${mimeType} is not an allowed input type`);
    }
    // Before any SVG parser sees the document: no entities, external references or scripts.
    if (mimeType === 'image/svg+xml') assertSafeSvg(input);
    if (mimeType === 'image/heic' || mimeType === 'image/heif') {
      const p = await probeHeic(input);
      checkPixels(p.width, p.height, 1, limits);
      return { mimeType, format: 'heif', width: p.width, height: p.height, pages: 1, hasAlpha: p.hasAlpha, hasProfile: false };
    }
    let meta: Metadata;
    try {
      meta = await sharp(input, { limitInputPixels: false, ...svgSafety(mimeType) }).metadata();
    } catch (err) {
      throw new ImageRejectedError('corrupt_image', 'the image header cannot be read', err);
    }
    if (!meta.width || !meta.height) throw new ImageRejectedError('corrupt_image', 'the image has no dimensions');
    const pages = meta.pages ?? 1;
    // The frame cap bounds what a decoder would be asked to walk through, whether the animation is
    // kept (see animated.ts) or only its first frame is rendered.
    if (pages > limits.maxFrames) {
      throw new ImageRejectedError('too_many_frames', `the image has ${pages} frames; the limit is ${limits.maxFrames}`);
    }
    const pageHeight = meta.pageHeight ?? meta.height;
    checkPixels(meta.width, pageHeight, 1, limits);
    const swap = (meta.orientation ?? 1) >= 5;
    return {
      mimeType,
      format: meta.format === 'heif' ? 'avif' : (meta.format as ImageProbe['format']),
      width: swap ? pageHeight : meta.width,
      height: swap ? meta.width : pageHeight,
      pages,
      orientation: meta.orientation,
      hasAlpha: meta.hasAlpha ?? false,
      space: meta.space,
      hasProfile: meta.hasProfile ?? false,
    };
  }

  /** The single decode: shrink-on-load to the size the largest variant needs, oriented, sRGB, 8-bit. */
  private async decode(input: Buffer, probe: ImageProbe, variants: VariantSpec[], limits: PixelpipeConfig['limits'], forAnalysis: boolean): Promise<RawImage> {
    const target = forAnalysis ? atLeastAnalysisRung(decodeTarget(variants, probe), probe) : decodeTarget(variants, probe);
    try {
      let pipeline: Sharp;
      if (probe.format === 'heif' && probe.mimeType !== 'image/avif') {
        const rgba = await decodeHeic(input);
        pipeline = sharp(rgba.data, { raw: { width: rgba.width, height: rgba.height, channels: 4 } });
        if (!probe.hasAlpha) pipeline = pipeline.removeAlpha();
      } else {
        pipeline = sharp(input, {
          limitInputPixels: limits.maxInputPixels,
          failOn: limits.failOn,
          sequentialRead: true,
          pages: 1,
          ...svgSafety(probe.mimeType),
        }).autoOrient();
      }
      if (target.width < probe.width || target.height < probe.height) {
        pipeline = pipeline.resize(target.width, target.height, { fit: 'fill', fastShrinkOnLoad: true });
      }
      const { data, info } = await pipeline.toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
      return { data, width: info.width, height: info.height, channels: info.channels };
    } catch (err) {
      if (err instanceof ImageRejectedError) throw err;
      const message = (err as Error).message ?? '';
      if (/pixel limit/i.test(message)) throw new ImageRejectedError('too_many_pixels', 'the image exceeds the pixel limit', err);
      throw new ImageRejectedError('corrupt_image', 'the image data is corrupt or truncated', err);
    }
  }
}

function area(s: Size): number {
  return s.width * s.height;
}

/**
 * Up to this many pixels, an input whose decoder cannot shrink on load is kept at full size (64 MB as
 * RGBA): every variant is then one resample away from the original instead of two. Two 8-bit resamples
 * cost a 6 MP PNG with alpha up to 13% more WebP bytes at equal SSIM (noise under faint alpha) and JPEG
 * variants ~4%; the extra resize work is ~10 ms. Larger inputs are still reduced while decoding.
 */
const FULL_DECODE_MAX_PIXELS = 16_777_216;

/**
 * The size of the single decode. JPEG and WebP shrink while decoding, so they are decoded straight to
 * what the largest variant needs; other formats decode in full anyway, so small enough ones stay full
 * size (see {@link FULL_DECODE_MAX_PIXELS}). When the largest variant is a plain proportional resize,
 * the reduced decode is exactly its size: that variant then needs no resample of its own (a 2049 → 2048
 * pass costs a full-image resize and visibly softens the result), and every other variant still fits
 * inside it because scaled sizes grow monotonically with the scale. Otherwise geometry's conservative
 * {@link decodeSize}.
 */
function decodeTarget(variants: VariantSpec[], probe: ImageProbe): Size {
  const shrinksOnLoad = probe.format === 'jpeg' || probe.format === 'webp';
  if (!shrinksOnLoad && probe.width * probe.height <= FULL_DECODE_MAX_PIXELS) return { width: probe.width, height: probe.height };
  const sizes = variants.map((v) => scaledSize(v, probe));
  const max = { width: Math.max(...sizes.map((s) => s.width)), height: Math.max(...sizes.map((s) => s.height)) };
  const exact = variants.some((v, i) => (v.fit === 'inside' || v.fit === 'outside') && sizes[i].width === max.width && sizes[i].height === max.height);
  return exact && max.width <= probe.width && max.height <= probe.height ? max : decodeSize(variants, probe);
}

/**
 * A decode sized for small variants only (a 200 px thumb decodes a JPEG at ≈ 300 px) would starve the
 * analyzer: on a group photo at 283 px the detector missed a face it finds at 640. So with analysis on, the
 * single decode is at least the analysis rung (≤ 640 px long side, never above the original).
 */
function atLeastAnalysisRung(target: Size, probe: ImageProbe): Size {
  const scale = Math.min(1, ANALYSIS_MAX_SIDE / Math.max(probe.width, probe.height));
  const rung = { width: Math.round(probe.width * scale), height: Math.round(probe.height * scale) };
  return rung.width <= target.width && rung.height <= target.height
    ? target
    : { width: Math.max(rung.width, target.width), height: Math.max(rung.height, target.height) };
}

function checkPixels(width: number, height: number, pages: number, limits: PixelpipeConfig['limits']): void {
  const pixels = width * height * pages;
  if (pixels > limits.maxInputPixels) {
    throw new ImageRejectedError('too_many_pixels', `the image has ${width}x${height} pixels; the limit is ${limits.maxInputPixels}`);
  }
}

/** SVG is decoded by librsvg: never let it fetch external resources. */
function svgSafety(mimeType: string): SharpOptions {
  return mimeType === 'image/svg+xml' ? { unlimited: false } : {};
}

/**
 * Where a variant is resized from: an image already made at exactly the size it needs (shared: no
 * resample at all), otherwise the decode itself. Chaining resizes (2048 → 1024 → 480 → 200) would save
 * ~8 ms on a 12 MP photo but compounds resampling error: SSIM against a direct resize of the original
 * dropped by up to 0.002, which costs small variants ~5% more bytes at equal quality (npm run bench).
 */
function pickSource(ladder: RawImage[], need: Size): RawImage {
  return ladder.find((img) => img.width === need.width && img.height === need.height) ?? ladder[0];
}

function fromRaw(img: RawImage): Sharp {
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: img.channels } });
}

/**
 * Scales `src` to exactly `scaled` (computed from the original's dimensions, so a reduced decode or a
 * cascade step never shifts the result by a rounding pixel), then crops (cover, where `position` says) or pads
 * (contain) to the box.
 */
async function resize(src: RawImage, v: VariantSpec, scaled: Size, subject: Subject): Promise<RawImage & { crop?: CropRect }> {
  // Already the right pixels (the decode was made at this variant's size): share them, read-only.
  if (src.width === scaled.width && src.height === scaled.height && (v.fit === 'inside' || v.fit === 'outside' || v.fit === 'fill')) return src;
  if (v.fit === 'cover' && v.position !== undefined && v.position !== 'centre') {
    const positioned = await positionedCover(src, v, scaled, subject);
    if (positioned) return positioned;
  }
  let p = fromRaw(src);
  if (src.width !== scaled.width || src.height !== scaled.height) p = p.resize(scaled.width, scaled.height, { fit: 'fill' });
  let crop: CropRect | undefined;
  if (v.fit === 'cover') {
    const width = Math.min(v.width!, scaled.width);
    const height = Math.min(v.height!, scaled.height);
    const left = Math.floor((scaled.width - width) / 2);
    const top = Math.floor((scaled.height - height) / 2);
    if (width < scaled.width || height < scaled.height) p = p.extract({ left, top, width, height });
    crop = toOriginal({ left, top, width, height }, scaled, subject.probe);
  } else if (v.fit === 'contain' && (scaled.width < v.width! || scaled.height < v.height!)) {
    const padX = Math.max(0, v.width! - scaled.width);
    const padY = Math.max(0, v.height! - scaled.height);
    p = p.extend({ left: Math.floor(padX / 2), right: Math.ceil(padX / 2), top: Math.floor(padY / 2), bottom: Math.ceil(padY / 2), background: v.background });
    // extend() adds an alpha band for the background; an opaque source must stay opaque (and 3-band).
    if (src.channels === 3) p = p.removeAlpha();
  }
  const { data, info } = await p.raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels, ...(crop ? { crop } : {}) };
}

/** What the cover crops may aim at: the oriented original's size and the faces found in it. */
interface Subject {
  probe: Pick<ImageProbe, 'width' | 'height'>;
  faces: readonly { box: NormalizedBox }[];
}

/** A rectangle of the `scaled` grid in pixels of the oriented original. */
function toOriginal(r: CropRect, scaled: Size, probe: Subject['probe']): CropRect {
  const sx = probe.width / scaled.width;
  const sy = probe.height / scaled.height;
  return { left: Math.round(r.left * sx), top: Math.round(r.top * sy), width: Math.round(r.width * sx), height: Math.round(r.height * sy) };
}

/**
 * `cover` at a non-central position, or `null` when nothing is cut off (the image is no wider, nor
 * taller, than the box). `faces` extracts the {@link facesCrop} rectangle and scales it to the box; without
 * a face it falls back to `attention`. `attention`/`entropy` are sharp's strategies, whose chosen offset
 * sharp reports, so every crop is recorded.
 */
async function positionedCover(src: RawImage, v: VariantSpec, scaled: Size, subject: Subject): Promise<(RawImage & { crop: CropRect }) | null> {
  const width = Math.min(v.width!, scaled.width);
  const height = Math.min(v.height!, scaled.height);
  if (width >= scaled.width && height >= scaled.height) return null;
  const { probe, faces } = subject;
  const rect =
    v.position === 'faces'
      ? facesCrop({ width: probe.width, height: probe.height, aspect: width / height, faces: faces.map((f) => f.box), minWidth: width })
      : null;
  if (rect) {
    // The crop is in original pixels; the source may be a reduced decode of it.
    const sx = src.width / probe.width;
    const sy = src.height / probe.height;
    const left = Math.min(src.width - 1, Math.round(rect.left * sx));
    const top = Math.min(src.height - 1, Math.round(rect.top * sy));
    const region = {
      left,
      top,
      width: Math.max(1, Math.min(src.width - left, Math.round(rect.width * sx))),
      height: Math.max(1, Math.min(src.height - top, Math.round(rect.height * sy))),
    };
    const { data, info } = await fromRaw(src).extract(region).resize(width, height, { fit: 'fill' }).raw().toBuffer({ resolveWithObject: true });
    return { data, width: info.width, height: info.height, channels: info.channels, crop: rect };
  }
  const strategy = v.position === 'entropy' ? sharp.strategy.entropy : sharp.strategy.attention;
  let scaledRaw = src;
  if (src.width !== scaled.width || src.height !== scaled.height) {
    const r = await fromRaw(src).resize(scaled.width, scaled.height, { fit: 'fill' }).raw().toBuffer({ resolveWithObject: true });
    scaledRaw = { data: r.data, width: r.info.width, height: r.info.height, channels: r.info.channels };
  }
  const { data, info } = await fromRaw(scaledRaw).resize(width, height, { fit: 'cover', position: strategy }).raw().toBuffer({ resolveWithObject: true });
  // sharp reports where its strategy cut as negative offsets into the (already scaled) input.
  const crop = toOriginal({ left: Math.abs(info.cropOffsetLeft ?? 0), top: Math.abs(info.cropOffsetTop ?? 0), width, height }, scaled, probe);
  return { data, width: info.width, height: info.height, channels: info.channels, crop };
}

/** The pixels an analyzer sees: the decode itself when small enough, else a ≤ {@link ANALYSIS_MAX_SIDE} px rung of it. */
async function analysisRung(base: RawImage): Promise<AnalysisPixels> {
  if (Math.max(base.width, base.height) <= ANALYSIS_MAX_SIDE) return { data: base.data, width: base.width, height: base.height, channels: base.channels };
  const { data, info } = await fromRaw(base).resize(ANALYSIS_MAX_SIDE, ANALYSIS_MAX_SIDE, { fit: 'inside' }).raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

/** Applies a variant's filter (shared with the benchmark's baseline so both filter identically). */
export function applyFilter(p: Sharp, f: Filter | undefined): Sharp {
  if (!f) return p;
  switch (f.type) {
    case 'grayscale':
      return p.grayscale();
    case 'sharpen':
      return p.sharpen();
    case 'negate':
      return p.negate({ alpha: false });
    case 'blur':
      return p.blur(f.sigma);
    case 'tint':
      return p.tint(f.color);
    case 'modulate':
      return p.modulate({ brightness: f.brightness, saturation: f.saturation, hue: f.hue });
    case 'sepia':
      // The classic sepia matrix; recomb leaves the alpha channel alone.
      return p.recomb([
        [0.393, 0.769, 0.189],
        [0.349, 0.686, 0.168],
        [0.272, 0.534, 0.131],
      ]);
  }
}

function resolveFormat(fmt: ImageFormat, probe: ImageProbe): OutFormat {
  if (fmt !== 'original') return fmt;
  switch (probe.format) {
    case 'jpeg':
    case 'png':
    case 'webp':
    case 'avif':
    case 'gif':
      return probe.format;
    default:
      // HEIC, TIFF and SVG are poor delivery formats: "original" falls back to what browsers show.
      return probe.hasAlpha ? 'png' : 'jpeg';
  }
}

/** The lossy output formats (those with a quality setting). */
export type Lossy = 'jpeg' | 'webp' | 'avif';

/**
 * Up to this many pixels (2048×1024) a JPEG gets mozjpeg's scan search (`optimiseScans`), above it plain
 * progressive. On a 2048×1536 output the search costs 137 ms of CPU against 63 ms (progressive) and 33 ms
 * (baseline JPEG) for 4.7 % / 3.9 % fewer bytes, and progressive is enough there to stay under the
 * baseline's bytes; on smaller outputs the search costs a few ms and is what gets them under (progressive
 * alone leaves 200 px JPEGs ~2 % larger, and a 1200×1600 phone photo's full-size JPEG 2 % larger).
 * That holds for camera sources only (see {@link EncodeTarget.photo}): a graphic's flat areas favour
 * sequential scans, and on the 6 MP PNG with alpha the 2048×1365 JPEG was 1.5 % larger progressive than
 * the baseline's sequential one, 2.8 % smaller with the search.
 */
const JPEG_SCAN_SEARCH_MAX_PIXELS = 2048 * 1024;

/**
 * From this quality up, JPEGs of camera originals are plain progressive at every size: the scan search's
 * gain shrinks as the quality rises (on the bench photos' 480 and 1024 px outputs 0.8–1.4 % at q80,
 * −0.0…0.7 % at q90–94; 200 px outputs 0.3–1.9 %) while it still costs 2.7× progressive's CPU (a
 * 1024×768 output at q92: 52 ms against 19 ms). Fixed-quality defaults stay below it; it is what
 * `quality: "auto"` picks on grainy photos (q89–95 at `ssim:0.97`). Graphics keep the search
 * (1.1–2.3 % at q90–94 on the PNG's outputs).
 */
const JPEG_SCAN_SEARCH_MAX_QUALITY = 89;

function jpegScans(target: EncodeTarget, quality: number): { optimiseScans: true } | { progressive: true } {
  if (!target.photo) return { optimiseScans: true };
  return target.pixels <= JPEG_SCAN_SEARCH_MAX_PIXELS && quality <= JPEG_SCAN_SEARCH_MAX_QUALITY ? { optimiseScans: true } : { progressive: true };
}

/** What the encoder settings depend on besides the format. */
export interface EncodeTarget {
  /** The output's size in pixels. */
  pixels: number;
  /** Whether the output keeps an alpha channel. */
  alpha: boolean;
  /**
   * Whether the original came from a camera format (JPEG, HEIF): then progressive scans are enough for
   * large JPEGs. Anything else (PNG, WebP, GIF, TIFF, SVG) may be a graphic and gets the scan search at
   * every size. See {@link photoSource}.
   */
  photo: boolean;
}

/** The camera formats: JPEG and HEIF (HEIC, AVIF) originals, whose large JPEG outputs stay progressive. */
export function photoSource(probe: Pick<ImageProbe, 'format'>): boolean {
  return probe.format === 'jpeg' || probe.format === 'heif';
}

/**
 * WebP outputs above this many pixels get {@link WEBP_LARGE_QUALITY} instead of the default: on the
 * 12 MP phone photo's 2048×2731 output q74 was 3.7–4.8 % larger than the Firebase-style output (at
 * +0.045 SSIM); outputs this large are only ever seen scaled down, where the lower quality does not show.
 */
const WEBP_LARGE_PIXELS = 4_000_000;
const WEBP_LARGE_QUALITY = 68;
/**
 * WebP with alpha keeps the settings measured for it before: effort ≥ 5, quality 77, `drawing` preset.
 * At effort 2 the 6 MP PNG's outputs lost 0.003–0.005 SSIM and were up to 8 % larger than the
 * baseline's: the alpha plane is coded losslessly, and libwebp's lossless coder gains most from effort.
 */
const WEBP_ALPHA_MIN_EFFORT = 5;
const WEBP_ALPHA_QUALITY = 77;

/** The encoder quality of an output whose variant sets none (exported so the benchmark's lower bound encodes alike). */
export function defaultQuality(format: Lossy, target: Pick<EncodeTarget, 'pixels' | 'alpha'>): number {
  if (format !== 'webp') return DEFAULT_QUALITY[format];
  if (target.alpha) return WEBP_ALPHA_QUALITY;
  return target.pixels > WEBP_LARGE_PIXELS ? WEBP_LARGE_QUALITY : DEFAULT_QUALITY.webp;
}

/**
 * The encoder settings of each lossy format, exported so the benchmark's lower bound encodes exactly
 * alike (chosen by measurement, see the knob table in docs/performance.md):
 * - JPEG: progressive (the same pixels, 3–5 % fewer bytes; see {@link JPEG_SCAN_SEARCH_MAX_PIXELS}).
 * - Opaque WebP: the configured effort (default 2, which skips libwebp's rate-distortion passes: a
 *   2048 px output encodes in 130 ms of CPU against 290–370 ms at effort 3–5) with libwebp's `default`
 *   preset. At effort 2 its stronger spatial noise shaping (sns 50) kept the 24 MP photo's 2048 px
 *   output above the baseline's SSIM where `drawing` (sns 25) fell 0.0009 below it.
 * - WebP with alpha: see {@link WEBP_ALPHA_MIN_EFFORT}.
 */
export function lossyEncoder(p: Sharp, format: Lossy, quality: number, options: RenderOptions, target: EncodeTarget): Sharp {
  switch (format) {
    case 'jpeg':
      return p.jpeg({ quality, ...jpegScans(target, quality) });
    case 'webp':
      return target.alpha
        ? p.webp({ quality, effort: Math.max(options.webpEffort, WEBP_ALPHA_MIN_EFFORT), preset: 'drawing' })
        : p.webp({ quality, effort: options.webpEffort, preset: 'default' });
    case 'avif':
      return p.avif({ quality, effort: options.avifEffort });
  }
}

/**
 * What one `quality: "auto"` search passes to the next larger output of the same format: the quality
 * it chose and, when two trials bracketed it, the SSIM gained per quality step there.
 */
export interface AutoStart {
  quality: number;
  slope?: number;
}

/** The predicted start of one search (`start`), and what the search found (`found`, set by it). */
interface AutoSearch {
  start?: AutoStart;
  found?: AutoStart;
}

interface AutoHint {
  start: Promise<AutoStart | undefined>;
  done(found: AutoStart | undefined): void;
}

/**
 * Chains the `quality: "auto"` outputs of each format from the smallest to the largest, so each search
 * starts from the quality the next smaller output of that format chose (its own pixels are still what
 * it is scored on). Same-sized outputs go unfiltered first (a grayscale JPEG lands on its colour twin's
 * quality: the luma is quantised alike). Measured on the bench photos, the rungs of one variant chain
 * mostly choose within a few steps of each other, so a search that starts there brackets the target in
 * two trials instead of three.
 */
function autoHints(variants: VariantSpec[], probe: ImageProbe): Map<string, AutoHint> {
  const chains = new Map<OutFormat, Array<{ key: string; pixels: number; filtered: boolean; index: number }>>();
  variants.forEach((v, index) => {
    if (v.quality !== 'auto') return;
    const size = outputSize(v, scaledSize(v, probe));
    for (const fmt of v.formats) {
      const format = resolveFormat(fmt, probe);
      if (format === 'png' || format === 'gif') continue;
      const chain = chains.get(format) ?? [];
      chain.push({ key: `${v.name}.${format}`, pixels: area(size), filtered: v.filter !== undefined, index });
      chains.set(format, chain);
    }
  });
  const hints = new Map<string, AutoHint>();
  for (const chain of chains.values()) {
    chain.sort((a, b) => a.pixels - b.pixels || Number(a.filtered) - Number(b.filtered) || a.index - b.index);
    let previous: Promise<AutoStart | undefined> = Promise.resolve(undefined);
    for (const link of chain) {
      let done!: (found: AutoStart | undefined) => void;
      const found = new Promise<AutoStart | undefined>((resolve) => (done = resolve));
      hints.set(link.key, { start: previous, done });
      previous = found;
    }
  }
  return hints;
}

/** The size of a variant's output once cropped (cover) or padded (contain) to its box. */
function outputSize(v: VariantSpec, scaled: Size): Size {
  if (v.fit === 'cover') return { width: Math.min(v.width ?? scaled.width, scaled.width), height: Math.min(v.height ?? scaled.height, scaled.height) };
  if (v.fit === 'contain') return { width: v.width ?? scaled.width, height: v.height ?? scaled.height };
  return scaled;
}

/** What an encode needs besides the pixels and the variant: the render's options and the kind of original. */
interface EncodeOptions extends RenderOptions {
  /** See {@link EncodeTarget.photo}. */
  photo: boolean;
}

async function encode(img: RawImage, v: VariantSpec, format: OutFormat, options: EncodeOptions, search: AutoSearch = {}): Promise<RenderedOutput> {
  let p = applyFilter(fromRaw(img), v.filter);
  const flatten = format === 'jpeg' && (img.channels === 4 || img.channels === 2);
  if (flatten) p = p.flatten({ background: v.background });
  let quality: number | undefined;
  let score: number | undefined;
  let body: Buffer;
  if (format === 'png' || format === 'gif') {
    body = await (format === 'png' ? p.png({ compressionLevel: 6 }) : p.gif()).toBuffer();
  } else if (v.quality === 'auto') {
    // The search scores against exactly the pixels the encoder gets: filtered and flattened.
    const pixels = v.filter || flatten ? await toRawImage(p) : img;
    const found = await autoQuality(pixels, format, options, options.qualityTarget ?? DEFAULT_TARGET, search.start);
    ({ quality, score, body } = found);
    search.found = found.next;
  } else {
    const target = encodeTarget(img, format, options.photo);
    quality = v.quality ?? defaultQuality(format, target);
    body = await lossyEncoder(p, format, quality, options, target).toBuffer();
  }
  return {
    variant: v.name,
    format,
    contentType: CONTENT_TYPES[format],
    extension: EXTENSIONS[format],
    // Filters, flattening and encoding keep the size.
    width: img.width,
    height: img.height,
    body,
    ...(quality !== undefined ? { quality } : {}),
    ...(score !== undefined ? { score } : {}),
  };
}

/** JPEG has no alpha (it is flattened); the other formats keep the image's. */
function encodeTarget(img: RawImage, format: Lossy, photo: boolean): EncodeTarget {
  return { pixels: img.width * img.height, alpha: format !== 'jpeg' && (img.channels === 4 || img.channels === 2), photo };
}

async function toRawImage(p: Sharp): Promise<RawImage> {
  const { data, info } = await p.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

const DEFAULT_TARGET: QualityTarget = { metric: 'ssim', value: 0.97 };
/** Trial encodes per output, at most. */
const AUTO_TRIALS = 3;
const AUTO_MIN_QUALITY = 40;
const AUTO_MAX_QUALITY = 95;
/** Typical SSIM gained per quality step near the defaults (both encoders): the first step's guess. */
const AUTO_SLOPE = 0.002;
/**
 * Above this many pixels the trials encode a sample of the output instead of all of it: evenly spaced
 * full-width bands of rows, 32 rows each (whole JPEG MCU and WebP macroblock rows), ≈ this many pixels in
 * total. Both encoders work block by block, so bands predict the whole image's score closely. At least
 * one band is taken, so a 2048 px wide output is still sampled on 65 536 pixels. Lowered from 200 000
 * (session h5: the whole-render CPU time with every output "auto" fell from 1.8× to 1.7× the fixed
 * render on the 12 MP photo, 2.0× to 1.6× on the phone photo, 1.9× to 1.7× on the PNG, for −6 % to
 * +4 % bytes) and from 100 000 in 64-row bands (session 10: see docs/performance.md, "quality: auto").
 */
const AUTO_SAMPLE_PIXELS = 50_000;
const AUTO_BAND_ROWS = 32;

/** Evenly spaced bands of whole rows, stacked: a smaller image with the same kinds of content. */
function sampleRows(img: RawImage): RawImage {
  if (img.width * img.height <= AUTO_SAMPLE_PIXELS * 1.5) return img;
  const rowBytes = img.width * img.channels;
  const bands = Math.max(1, Math.floor(AUTO_SAMPLE_PIXELS / (img.width * AUTO_BAND_ROWS)));
  const rows = Math.min(AUTO_BAND_ROWS, img.height);
  const data = Buffer.allocUnsafe(bands * rows * rowBytes);
  for (let b = 0; b < bands; b++) {
    const top = Math.floor(((img.height - rows) * (b + 0.5)) / bands);
    img.data.copy(data, b * rows * rowBytes, top * rowBytes, (top + rows) * rowBytes);
  }
  return { data, width: img.width, height: bands * rows, channels: img.channels };
}

function lumaOf(img: RawImage): Luma {
  // Transparent pixels count as seen over white, as the benchmark scores them.
  return lumaFromPixels(img.data, img.width, img.height, img.channels);
}

/**
 * `quality: "auto"`: the lowest encoder quality whose output's luma SSIM against the pixels it was
 * encoded from reaches `target`, found with at most {@link AUTO_TRIALS} trial encodes: a secant search
 * from `start` (the quality the next smaller output of this format chose, see {@link autoHints}) or
 * else the format's default quality. Trials run on the output's own pixels (or a sample of their rows,
 * see {@link AUTO_SAMPLE_PIXELS}), never on a new decode of the original. When no trial reaches the
 * target, the best-scoring one wins. The recorded score is the trial's (the sample's, for large
 * outputs). `next` is what a larger output's search starts from.
 *
 * JPEG trials are baseline (sequential) encodes: progressive and scan-searched JPEGs decode to exactly
 * the same pixels (only the entropy-coded order differs), and the baseline encode costs 35 ms on a
 * 1024×768 output against 87 ms with the scan search, so the trials score the same pixels for less and
 * the chosen quality is encoded once more with the output's scan mode. A WebP trial of the whole output
 * is the output itself.
 */
async function autoQuality(
  img: RawImage,
  format: Lossy,
  options: EncodeOptions,
  target: QualityTarget,
  start?: AutoStart,
): Promise<{ quality: number; score: number; body: Buffer; next: AutoStart }> {
  const sample = sampleRows(img);
  const out = encodeTarget(img, format, options.photo);
  const ref = ssimReference(lumaOf(sample));
  const trials: Array<{ q: number; s: number; body: Buffer }> = [];
  const clamp = (q: number) => Math.min(AUTO_MAX_QUALITY, Math.max(AUTO_MIN_QUALITY, Math.round(q)));
  const trialEncoder = (p: Sharp, q: number): Sharp => (format === 'jpeg' ? p.jpeg({ quality: q }) : lossyEncoder(p, format, q, options, out));
  let q: number = clamp(start?.quality ?? defaultQuality(format, out));
  const guessSlope = start?.slope ?? AUTO_SLOPE;
  for (let i = 0; i < AUTO_TRIALS; i++) {
    const body = await trialEncoder(fromRaw(sample), q).toBuffer();
    const s = ssimAgainst(ref, await decodeLuma(body));
    trials.push({ q, s, body });
    const { lo, hi } = bracket(trials, target.value);
    let next: number;
    if (lo && hi) {
      if (hi.q - lo.q <= 1) break;
      // Secant between the closest qualities on either side of the target.
      next = lo.q + ((target.value - lo.s) * (hi.q - lo.q)) / Math.max(1e-6, hi.s - lo.s);
      next = Math.min(hi.q - 1, Math.max(lo.q + 1, next));
    } else {
      const last = trials[trials.length - 1];
      const prev = trials.length > 1 ? trials[trials.length - 2] : undefined;
      const slope = prev && last.q !== prev.q && (last.s - prev.s) / (last.q - prev.q) > 1e-5 ? (last.s - prev.s) / (last.q - prev.q) : guessSlope;
      next = last.q + (target.value - last.s) / slope;
      // Aim slightly past the target, so the next trial is likely to land on the other side of it.
      next += hi ? -1 : 1;
    }
    next = clamp(next);
    if (trials.some((t) => t.q === next)) break;
    q = next;
  }
  const { lo, hi } = bracket(trials, target.value);
  const pick = hi ?? trials.reduce((a, b) => (b.s > a.s ? b : a));
  const slope = lo && hi && hi.q > lo.q && hi.s > lo.s ? (hi.s - lo.s) / (hi.q - lo.q) : undefined;
  const reuse = sample === img && format !== 'jpeg';
  const body = reuse ? pick.body : await lossyEncoder(fromRaw(img), format, pick.q, options, out).toBuffer();
  return { quality: pick.q, score: Math.round(pick.s * 1e5) / 1e5, body, next: { quality: pick.q, ...(slope !== undefined ? { slope } : {}) } };
}

/** The highest-quality trial below the target and the lowest-quality one meeting it. */
function bracket<T extends { q: number; s: number }>(trials: T[], target: number): { lo?: T; hi?: T } {
  let lo: T | undefined;
  let hi: T | undefined;
  for (const t of trials) {
    if (t.s >= target) {
      if (!hi || t.q < hi.q) hi = t;
    } else if (!lo || t.q > lo.q) lo = t;
  }
  return { lo, hi };
}

/**
 * The long side of the pixels ThumbHash is computed from. ThumbHash keeps at most 7 cosine terms per
 * axis, so 32 samples already resolve its highest frequency several times over: on the four bench
 * photos 1–3 of the hash's ≈ 25 bytes changed against 100 px (the variants' bytes did not), and it
 * decodes to the same 32×23 preview. Its cost is per pixel, ≈ 10× less here; that matters most in a process's
 * first renders, while V8 still interprets (and compiles) it: renders 2–6 of a fresh process took
 * 2–36 ms (12–15 ms mean, two processes) of CPU per hash at 100 px against 0.5–12 ms (≈ 4 ms) at 32 px.
 */
const PLACEHOLDER_SIDE = 32;

/** A ThumbHash (≈25 bytes) from the smallest image already in memory, plus a PNG data URL to show it at once. */
async function makePlaceholder(img: RawImage): Promise<RenderResult['placeholder']> {
  const { data, info } = await fromRaw(img)
    .resize(PLACEHOLDER_SIDE, PLACEHOLDER_SIDE, { fit: 'inside' })
    .ensureAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  const hash = rgbaToThumbHash(info.width, info.height, data);
  return { type: 'thumbhash', value: Buffer.from(hash).toString('base64'), dataUrl: thumbHashToDataURL(hash) };
}
