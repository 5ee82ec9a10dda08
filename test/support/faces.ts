/** The reference face photos (`samples/faces/`) and their hand-checked boxes, shared by the crop and analyzer tests. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import type { AnalysisPixels, NormalizedBox } from '../../shared/ports';

const root = join(__dirname, '..', '..');

interface ReferenceFile {
  faces: Record<string, NormalizedBox[]>;
  noFaces: string[];
}

export const REFERENCE = JSON.parse(readFileSync(join(root, 'samples', 'faces', 'reference-faces.json'), 'utf8')) as ReferenceFile;

/** Path of a reference photo: face photos live in `samples/faces/`, the face-free ones in `samples/`. */
export function facePhotoPath(name: string): string {
  return name in REFERENCE.faces ? join(root, 'samples', 'faces', name) : join(root, 'samples', name);
}

/** Oriented size of a photo. */
export async function orientedSize(name: string): Promise<{ width: number; height: number }> {
  const meta = await sharp(facePhotoPath(name)).metadata();
  const swap = (meta.orientation ?? 1) >= 5;
  return { width: swap ? meta.height : meta.width, height: swap ? meta.width : meta.height };
}

/** The analysis rung the processor would hand over: oriented, sRGB, long side ≤ `maxSide`. */
export async function analysisPixels(name: string, maxSide = 640): Promise<AnalysisPixels> {
  const { data, info } = await sharp(facePhotoPath(name))
    .autoOrient()
    .resize(maxSide, maxSide, { fit: 'inside', withoutEnlargement: true })
    .toColourspace('srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels as 3 | 4 };
}

/**
 * Matches detections to reference faces one to one: a pair matches when each box contains the other's
 * centre (detectors frame faces differently, so overlap thresholds would judge the convention, not the hit).
 */
export function matchFaces(reference: readonly NormalizedBox[], found: readonly NormalizedBox[]): { hits: number; falsePositives: number } {
  const contains = (b: NormalizedBox, x: number, y: number): boolean => x >= b.left && x <= b.left + b.width && y >= b.top && y <= b.top + b.height;
  const centre = (b: NormalizedBox): [number, number] => [b.left + b.width / 2, b.top + b.height / 2];
  const free = [...reference];
  let hits = 0;
  for (const f of found) {
    const i = free.findIndex((r) => contains(r, ...centre(f)) && contains(f, ...centre(r)));
    if (i >= 0) {
      free.splice(i, 1);
      hits++;
    }
  }
  return { hits, falsePositives: found.length - hits };
}
