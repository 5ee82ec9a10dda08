/**
 * Animated GIF/WebP inputs. Every frame is decoded once, into one raw "strip" (frames stacked
 * vertically, libvips' page-height convention), and every variant is resized from that strip with
 * sharp's multi-page support, so each frame is scaled, cropped or padded on its own. GIF and WebP
 * outputs keep all frames with the input's delays and loop count; JPEG, PNG and AVIF outputs get the
 * first frame of the same resized strip (AVIF sequences are not widely decodable yet).
 *
 * Analysis runs on the same decode, before any variant, as for stills: faces and labels on the first frame
 * (its faces place every frame's `position: faces` crop), moderation on it and on up to
 * `ANIMATION_MODERATED_FRAMES` later frames, so an animation cannot hide flagged content behind a clean
 * first frame (before this, animations skipped analysis altogether and so escaped `PIXELPIPE_MODERATION=block`).
 *
 * Falls back to the still path (first frame only, see the processor) by returning `null` when:
 * animation is switched off (`PIXELPIPE_ANIMATED=false`); no output format can animate; the frames
 * together exceed `PIXELPIPE_MAX_ANIMATED_PIXELS` (default 25 MP: the strip holds every frame at once,
 * and libwebp's decoder needs about twice that while compositing; measured peak RSS for a 100-frame
 * 500×500 animation with the default variants is ~330 MB, against ~480 MB at 700×700); or the input
 * carries an EXIF rotation (libvips cannot rotate multi-page images by 90°).
 */
import sharp, { type Sharp } from 'sharp';
import { DEFAULT_QUALITY, type Filter, type ImageFormat, type PixelpipeConfig, type VariantSpec } from '../config';
import { ImageRejectedError } from '../errors';
import {
  ANALYSIS_MAX_SIDE,
  ANIMATION_MODERATED_FRAMES,
  type AnalysisPixels,
  type CropRect,
  type DetectedFace,
  type ImageProbe,
  type RenderOptions,
  type RenderResult,
  type RenderedOutput,
} from '../ports';
import { scaledSize, type Size } from './geometry';
import { facesCrop } from './smart-crop';

/** Raw pixels of a single frame, as the processor's still encoders and placeholder take them. */
export interface FrameImage {
  data: Buffer;
  width: number;
  height: number;
  channels: 1 | 2 | 3 | 4;
}

/** What the animated path borrows from the still processor, so both encode stills and filters identically. */
export interface AnimatedHooks {
  applyFilter(p: Sharp, filter: Filter | undefined): Sharp;
  encodeStill(img: FrameImage, v: VariantSpec, format: 'jpeg' | 'png' | 'avif', options: RenderOptions): Promise<RenderedOutput>;
  placeholder(img: FrameImage): Promise<RenderResult['placeholder']>;
}

/** All frames of an animation stacked vertically: `height = pageHeight * pages`. */
interface Strip {
  data: Buffer;
  width: number;
  pageHeight: number;
  pages: number;
  channels: 1 | 2 | 3 | 4;
}

type AnimatedFormat = 'webp' | 'gif';
const DEFAULT_ANIMATED_PIXELS = 25_000_000;
const ANIMATED: Record<AnimatedFormat, { contentType: string; extension: string }> = {
  webp: { contentType: 'image/webp', extension: 'webp' },
  gif: { contentType: 'image/gif', extension: 'gif' },
};

/** Whether an input qualifies for the animated path (before any pixel is decoded). */
export function wantsAnimation(probe: ImageProbe, variants: VariantSpec[], limits: PixelpipeConfig['limits']): boolean {
  if (limits.animated === false || probe.pages <= 1) return false;
  if (probe.format !== 'gif' && probe.format !== 'webp') return false;
  if ((probe.orientation ?? 1) !== 1) return false;
  if (probe.width * probe.height * probe.pages > animatedPixelBudget(limits)) return false;
  return variants.some((v) => v.formats.some((f) => isAnimatedFormat(outputFormat(f, probe))));
}

/**
 * Renders every variant of an animated input, or returns `null` when it should be rendered as a
 * still (see {@link wantsAnimation}). Throws `ImageRejectedError` for corrupt frames.
 */
export async function renderAnimated(
  input: Buffer,
  probe: ImageProbe,
  variants: VariantSpec[],
  limits: PixelpipeConfig['limits'],
  options: RenderOptions,
  hooks: AnimatedHooks,
): Promise<RenderResult | null> {
  if (!wantsAnimation(probe, variants, limits)) return null;
  const t0 = performance.now();
  const { strip, delay, loop } = await decodeStrip(input, probe, limits);
  const decodeMs = performance.now() - t0;
  const frame: Size = { width: strip.width, height: strip.pageHeight };
  // On the same single decode, before any variant: a blocked animation is stopped here like a still.
  let analysis: RenderResult['analysis'];
  if (options.analyze) {
    const [first, frames] = await analysisFrames(strip);
    analysis = await options.analyze(first, { probe, frames });
  }
  const faces = analysis?.faces ?? [];

  const encodeMs: Record<string, number> = {};
  const outputs: RenderedOutput[] = [];
  let smallest = strip;
  // One variant at a time: each resized strip holds every frame, so only one is alive besides the source.
  for (const v of variants) {
    const resized = await resizeStrip(strip, v, scaledSize(v, frame), faces);
    if (resized.width * resized.pageHeight < smallest.width * smallest.pageHeight) smallest = resized;
    // Encoders run one at a time too: an animated encoder buffers frames of its own.
    for (const f of v.formats) {
      const format = outputFormat(f, probe);
      const t = performance.now();
      const out = isAnimatedFormat(format)
        ? await encodeAnimated(resized, v, format, delay, loop, options, hooks)
        : await hooks.encodeStill(firstFrame(resized), v, format, options);
      if (resized.crop) out.crop = resized.crop;
      outputs.push(out);
      encodeMs[`${v.name}.${format}`] = Math.round((performance.now() - t) * 10) / 10;
    }
  }
  const rank = new Map(variants.map((v, i) => [v.name, i]));
  outputs.sort((a, b) => rank.get(a.variant)! - rank.get(b.variant)! || a.format.localeCompare(b.format));
  const placeholder = options.placeholder ? await hooks.placeholder(firstFrame(smallest)) : null;
  return {
    probe,
    outputs,
    placeholder,
    metrics: { decodeMs: Math.round(decodeMs * 10) / 10, encodeMs },
    ...(analysis !== undefined ? { analysis } : {}),
  };
}

/**
 * The frames handed to the analyzer, each at most {@link ANALYSIS_MAX_SIDE} px: the first, and up to
 * {@link ANIMATION_MODERATED_FRAMES} more spread evenly over the rest (the last included), so content that
 * appears only later in the animation is moderated too.
 */
export async function analysisFrames(s: Strip): Promise<[AnalysisPixels, AnalysisPixels[]]> {
  const picks = [0];
  const more = Math.min(ANIMATION_MODERATED_FRAMES, s.pages - 1);
  for (let i = 1; i <= more; i++) picks.push(Math.round((i * (s.pages - 1)) / more));
  const frameBytes = s.width * s.pageHeight * s.channels;
  const rungs = await Promise.all(
    [...new Set(picks)].map(async (page): Promise<AnalysisPixels> => {
      const data = s.data.subarray(page * frameBytes, (page + 1) * frameBytes);
      if (Math.max(s.width, s.pageHeight) <= ANALYSIS_MAX_SIDE) return { data, width: s.width, height: s.pageHeight, channels: s.channels };
      const r = await sharp(data, { raw: { width: s.width, height: s.pageHeight, channels: s.channels } })
        .resize(ANALYSIS_MAX_SIDE, ANALYSIS_MAX_SIDE, { fit: 'inside' })
        .raw()
        .toBuffer({ resolveWithObject: true });
      return { data: r.data, width: r.info.width, height: r.info.height, channels: r.info.channels };
    }),
  );
  return [rungs[0], rungs.slice(1)];
}

/** Frames are all in memory at once, so animations get their own (smaller) budget, never above the decode limit. */
export function animatedPixelBudget(limits: PixelpipeConfig['limits']): number {
  return Math.min(limits.maxInputPixels, limits.maxAnimatedPixels ?? DEFAULT_ANIMATED_PIXELS);
}

function isAnimatedFormat(f: string): f is AnimatedFormat {
  return f === 'webp' || f === 'gif';
}

/** "original" keeps the input's own (animated) format; everything else is what the variant asked for. */
function outputFormat(f: ImageFormat, probe: ImageProbe): 'jpeg' | 'png' | 'avif' | AnimatedFormat {
  return f === 'original' ? (probe.format as AnimatedFormat) : f;
}

async function decodeStrip(input: Buffer, probe: ImageProbe, limits: PixelpipeConfig['limits']): Promise<{ strip: Strip; delay: number[]; loop: number }> {
  try {
    // Header only: the frame timing the raw strip cannot carry.
    const meta = await sharp(input, { animated: true, limitInputPixels: false }).metadata();
    const { data, info } = await sharp(input, { animated: true, limitInputPixels: animatedPixelBudget(limits), failOn: limits.failOn, sequentialRead: true })
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    const pages = info.pages ?? probe.pages;
    const pageHeight = info.pageHeight ?? Math.floor(info.height / pages);
    if (pageHeight * pages !== info.height) throw new Error(`inconsistent frame height ${pageHeight} x ${pages} != ${info.height}`);
    // Browsers treat missing or zero delays as "as fast as possible"; 100 ms is what they settle on.
    const delay = Array.from({ length: pages }, (_, i) => meta.delay?.[i] || 100);
    return { strip: { data, width: info.width, pageHeight, pages, channels: info.channels }, delay, loop: meta.loop ?? 0 };
  } catch (err) {
    const message = (err as Error).message ?? '';
    if (/pixel limit/i.test(message)) throw new ImageRejectedError('too_many_pixels', 'the animation exceeds the pixel limit', err);
    throw new ImageRejectedError('corrupt_image', 'the animation data is corrupt or truncated', err);
  }
}

function fromStrip(s: Strip): Sharp {
  // `animated` makes sharp treat the raw strip as pages, so resize/extract/extend work per frame.
  return sharp(s.data, { animated: true, raw: { width: s.width, height: s.pageHeight * s.pages, channels: s.channels, pageHeight: s.pageHeight } });
}

/** The same geometry as the still path: scale every frame to `scaled`, then centre-crop (cover) or pad (contain). */
async function resizeStrip(src: Strip, v: VariantSpec, scaled: Size, faces: readonly DetectedFace[]): Promise<Strip & { crop?: CropRect }> {
  const crop = v.fit === 'cover' && (v.width! < scaled.width || v.height! < scaled.height);
  const pad = v.fit === 'contain' && (scaled.width < v.width! || scaled.height < v.height!);
  const same = src.width === scaled.width && src.pageHeight === scaled.height;
  // An unchanged size is the source itself: no copy of every frame.
  if (same && !crop && !pad) return src;
  let p = fromStrip(src);
  let cropped: CropRect | undefined;
  if (!same) p = p.resize(scaled.width, scaled.height, { fit: 'fill' });
  if (crop) {
    const width = Math.min(v.width!, scaled.width);
    const height = Math.min(v.height!, scaled.height);
    const at = cropOrigin(v, scaled, { width, height }, faces);
    p = p.extract({ ...at, width, height });
    cropped = toOriginal({ ...at, width, height }, scaled, src);
  } else if (pad) {
    const padX = Math.max(0, v.width! - scaled.width);
    const padY = Math.max(0, v.height! - scaled.height);
    p = p.extend({ left: Math.floor(padX / 2), right: Math.ceil(padX / 2), top: Math.floor(padY / 2), bottom: Math.ceil(padY / 2), background: v.background });
    if (src.channels === 3) p = p.removeAlpha();
  }
  const { data, info } = await p.raw().toBuffer({ resolveWithObject: true });
  const pageHeight = info.pageHeight ?? info.height / src.pages;
  return { data, width: info.width, pageHeight, pages: info.height / pageHeight, channels: info.channels, ...(cropped ? { crop: cropped } : {}) };
}

/**
 * Where every frame's `cover` crop starts. `position: faces` with faces found on the first frame: the
 * window is centred on the {@link facesCrop} rectangle (a window of the variant's size in the scaled frame is
 * the largest of its aspect, so it holds that rectangle whole). Otherwise the centre: sharp's saliency
 * strategies pick one offset per image, and frames that differ would each want another.
 */
function cropOrigin(v: VariantSpec, scaled: Size, box: Size, faces: readonly DetectedFace[]): { left: number; top: number } {
  const centre = { left: Math.floor((scaled.width - box.width) / 2), top: Math.floor((scaled.height - box.height) / 2) };
  if (v.position !== 'faces' || faces.length === 0) return centre;
  const rect = facesCrop({ width: scaled.width, height: scaled.height, aspect: box.width / box.height, faces: faces.map((f) => f.box), minWidth: box.width });
  if (!rect) return centre;
  const clamp = (v: number, max: number) => Math.min(Math.max(0, Math.round(v)), max);
  return {
    left: clamp(rect.left + rect.width / 2 - box.width / 2, scaled.width - box.width),
    top: clamp(rect.top + rect.height / 2 - box.height / 2, scaled.height - box.height),
  };
}

/** A rectangle of the scaled frame in pixels of the original frame. */
function toOriginal(r: CropRect, scaled: Size, src: Strip): CropRect {
  const sx = src.width / scaled.width;
  const sy = src.pageHeight / scaled.height;
  return { left: Math.round(r.left * sx), top: Math.round(r.top * sy), width: Math.round(r.width * sx), height: Math.round(r.height * sy) };
}

function firstFrame(s: Strip): FrameImage {
  return { data: s.data.subarray(0, s.width * s.pageHeight * s.channels), width: s.width, height: s.pageHeight, channels: s.channels };
}

async function encodeAnimated(
  s: Strip,
  v: VariantSpec,
  format: AnimatedFormat,
  delay: number[],
  loop: number,
  options: RenderOptions,
  hooks: AnimatedHooks,
): Promise<RenderedOutput> {
  // Filters run over the whole strip; a blur therefore bleeds a few pixels across frame edges.
  let p = hooks.applyFilter(fromStrip(s), v.filter);
  // Animations are encoded once at a fixed quality: "auto" would mean trial encodes of every frame.
  const quality = typeof v.quality === 'number' ? v.quality : DEFAULT_QUALITY.webp;
  p = format === 'webp' ? p.webp({ quality, effort: options.webpEffort, delay, loop }) : p.gif({ delay, loop });
  const { data } = await p.toBuffer({ resolveWithObject: true });
  return { variant: v.name, format, ...ANIMATED[format], width: s.width, height: s.pageHeight, body: data };
}
