/**
 * Subject-aware crops: where to cut a `cover` variant so the detected faces stay in it. Pure geometry on
 * the oriented original's pixel grid; the processor turns the rectangle into a sharp `extract`.
 */
import type { CropRect, NormalizedBox } from '../ports';

export type { CropRect } from '../ports';

export interface FacesCropInput {
  /** Oriented original size in pixels. */
  width: number;
  height: number;
  /** Target aspect ratio, width / height (the variant's `width / height`). */
  aspect: number;
  faces: readonly NormalizedBox[];
  /** Space kept around each face, as a fraction of the face's larger side (hair, chin, ears). Default 0.4. */
  margin?: number;
  /**
   * Smallest crop width in pixels, normally the variant's output width: a lone small face is not blown
   * up past the original's resolution. Capped by what the image allows.
   */
  minWidth?: number;
}

interface Span {
  lo: number;
  hi: number;
}

/**
 * The smallest crop of `aspect` that contains every face with its margin, centred on the faces and
 * clamped to the image; `null` when there is no face (the caller falls back to another strategy).
 *
 * When the faces with their margins do not fit the largest crop of that aspect, the margins give way
 * first (the crop is centred on the bare faces); when even the bare faces do not fit, the largest crop is
 * slid along the long axis to the position that keeps the most whole faces.
 */
export function facesCrop(input: FacesCropInput): CropRect | null {
  const { width: W, height: H, aspect, faces } = input;
  if (!(aspect > 0) || !(W > 0) || !(H > 0)) throw new RangeError(`facesCrop: bad geometry ${W}×${H} aspect ${aspect}`);
  if (faces.length === 0) return null;
  const margin = input.margin ?? 0.4;
  const boxes = faces.map((f) => ({ x: { lo: f.left * W, hi: (f.left + f.width) * W }, y: { lo: f.top * H, hi: (f.top + f.height) * H } }));
  const bare = { x: union(boxes.map((b) => b.x)), y: union(boxes.map((b) => b.y)) };
  const padded = {
    x: union(
      boxes.map((b) => {
        const m = margin * Math.max(b.x.hi - b.x.lo, b.y.hi - b.y.lo);
        return { lo: Math.max(0, b.x.lo - m), hi: Math.min(W, b.x.hi + m) };
      }),
    ),
    y: union(
      boxes.map((b) => {
        const m = margin * Math.max(b.x.hi - b.x.lo, b.y.hi - b.y.lo);
        return { lo: Math.max(0, b.y.lo - m), hi: Math.min(H, b.y.hi + m) };
      }),
    ),
  };

  // The largest crop of this aspect the image holds.
  const maxW = Math.min(W, H * aspect);
  const maxH = maxW / aspect;
  const need = (s: { x: Span; y: Span }): number => Math.max(s.x.hi - s.x.lo, (s.y.hi - s.y.lo) * aspect);
  const minW = Math.min(maxW, input.minWidth ?? 0);
  let cropW: number;
  let centre: { x: number; y: number };
  if (need(padded) <= maxW) {
    cropW = Math.max(need(padded), minW);
    centre = mid(padded);
  } else {
    cropW = maxW;
    centre = mid(bare);
    if (need(bare) > maxW) centre = bestSlide(boxes, maxW, maxH, centre);
  }
  const cropH = cropW / aspect;
  return toPixels(centre.x - cropW / 2, centre.y - cropH / 2, cropW, cropH, W, H);
}

function union(spans: Span[]): Span {
  return { lo: Math.min(...spans.map((s) => s.lo)), hi: Math.max(...spans.map((s) => s.hi)) };
}

function mid(s: { x: Span; y: Span }): { x: number; y: number } {
  return { x: (s.x.lo + s.x.hi) / 2, y: (s.y.lo + s.y.hi) / 2 };
}

/**
 * A face counts as kept when this share of its box is inside the crop: detector boxes run wider than the
 * face (forehead, chin), so a crop centred on a group that trims each edge face a little keeps every face,
 * where sliding to hold two boxes whole would cut a third face by a quarter (group-1.jpg).
 */
const KEPT_SHARE = 0.8;

/**
 * Tries windows whose edge touches a face's edge on each axis, and the faces' centre, and keeps the one
 * that keeps the most faces (see {@link KEPT_SHARE}; then the most face area, then the one nearest the
 * faces' centre).
 */
function bestSlide(boxes: { x: Span; y: Span }[], cw: number, ch: number, prefer: { x: number; y: number }): { x: number; y: number } {
  const xs = [prefer.x, ...boxes.flatMap((b) => [b.x.lo + cw / 2, b.x.hi - cw / 2])];
  const ys = [prefer.y, ...boxes.flatMap((b) => [b.y.lo + ch / 2, b.y.hi - ch / 2])];
  let best = { score: -1, area: -1, dist: Infinity, c: prefer };
  for (const x of xs) {
    for (const y of ys) {
      const win = { x: { lo: x - cw / 2, hi: x + cw / 2 }, y: { lo: y - ch / 2, hi: y + ch / 2 } };
      const visible = boxes.map((b) => overlap(b.x, win.x) * overlap(b.y, win.y));
      const inside = boxes.filter((b, i) => visible[i] >= KEPT_SHARE * (b.x.hi - b.x.lo) * (b.y.hi - b.y.lo) - 1e-6);
      const area = visible.reduce((n, a) => n + a, 0);
      const dist = Math.hypot(x - prefer.x, y - prefer.y);
      if (inside.length > best.score || (inside.length === best.score && (area > best.area || (area === best.area && dist < best.dist)))) {
        best = { score: inside.length, area, dist, c: { x, y } };
      }
    }
  }
  return best.c;
}

function overlap(a: Span, b: Span): number {
  return Math.max(0, Math.min(a.hi, b.hi) - Math.max(a.lo, b.lo));
}

/** Clamps to the image and rounds outward to whole pixels without leaving it. */
function toPixels(left: number, top: number, w: number, h: number, W: number, H: number): CropRect {
  const width = Math.max(1, Math.min(W, Math.round(w)));
  const height = Math.max(1, Math.min(H, Math.round(h)));
  const x = Math.min(Math.max(0, Math.round(left)), W - width);
  const y = Math.min(Math.max(0, Math.round(top)), H - height);
  return { left: x, top: y, width, height };
}

/** Whether `box` (fractions of a `W`×`H` image) lies wholly inside `crop` (pixels), within `tolerancePx`. */
export function boxInside(box: NormalizedBox, crop: CropRect, W: number, H: number, tolerancePx = 1): boolean {
  return (
    box.left * W >= crop.left - tolerancePx &&
    box.top * H >= crop.top - tolerancePx &&
    (box.left + box.width) * W <= crop.left + crop.width + tolerancePx &&
    (box.top + box.height) * H <= crop.top + crop.height + tolerancePx
  );
}
