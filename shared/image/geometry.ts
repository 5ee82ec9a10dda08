/**
 * Pure geometry: how large each variant comes out, and how large the single decode must be.
 * Kept free of sharp so it can be unit-tested exhaustively and reused by the benchmark.
 */
import type { VariantSpec } from '../config';

export interface Size {
  width: number;
  height: number;
}

/**
 * The scale factors (x, y) that a variant applies to a source of `src` size before any crop or pad.
 * `cover`/`outside` scale until both sides reach the box; `inside`/`contain` until both fit.
 */
export function variantScale(v: Pick<VariantSpec, 'width' | 'height' | 'fit' | 'withoutEnlargement'>, src: Size): { x: number; y: number } {
  const sx = v.width !== undefined ? v.width / src.width : undefined;
  const sy = v.height !== undefined ? v.height / src.height : undefined;
  let x: number;
  let y: number;
  if (v.fit === 'fill') {
    x = sx ?? 1;
    y = sy ?? 1;
  } else {
    const defined = [sx, sy].filter((s): s is number => s !== undefined);
    const s = v.fit === 'cover' || v.fit === 'outside' ? Math.max(...defined) : Math.min(...defined);
    x = y = s;
  }
  if (v.withoutEnlargement) {
    x = Math.min(x, 1);
    y = Math.min(y, 1);
  }
  return { x, y };
}

/** The size the variant's resize step produces before cropping (cover) or padding (contain). */
export function scaledSize(v: Pick<VariantSpec, 'width' | 'height' | 'fit' | 'withoutEnlargement'>, src: Size): Size {
  const s = variantScale(v, src);
  return { width: Math.max(1, Math.round(src.width * s.x)), height: Math.max(1, Math.round(src.height * s.y)) };
}

/**
 * The size of the one decode that serves every variant: the largest scale any variant needs, capped
 * at the source size (upscaling variants enlarge from full resolution, never from a reduced decode).
 */
export function decodeSize(variants: Array<Pick<VariantSpec, 'width' | 'height' | 'fit' | 'withoutEnlargement'>>, src: Size): Size {
  let s = 0;
  for (const v of variants) {
    const vs = variantScale(v, src);
    s = Math.max(s, vs.x, vs.y);
  }
  s = Math.min(1, s);
  // One extra pixel of headroom so rounding never forces a variant to upscale the reduced decode.
  return {
    width: Math.min(src.width, Math.max(1, Math.ceil(src.width * s) + 1)),
    height: Math.min(src.height, Math.max(1, Math.ceil(src.height * s) + 1)),
  };
}
