import { boxInside, facesCrop, type CropRect } from '../../shared/image/smart-crop';
import type { NormalizedBox } from '../../shared/ports';
import { REFERENCE, orientedSize } from '../support/faces';

const ASPECTS: [string, number][] = [
  ['square 1:1', 1],
  ['portrait 4:5', 4 / 5],
  ['portrait 9:16', 9 / 16],
];

function centreCrop(W: number, H: number, aspect: number): CropRect {
  const width = Math.round(Math.min(W, H * aspect));
  const height = Math.round(width / aspect);
  return { left: Math.round((W - width) / 2), top: Math.round((H - height) / 2), width, height };
}

function expectWithinImage(crop: CropRect, W: number, H: number, aspect: number): void {
  expect(crop.left).toBeGreaterThanOrEqual(0);
  expect(crop.top).toBeGreaterThanOrEqual(0);
  expect(crop.left + crop.width).toBeLessThanOrEqual(W);
  expect(crop.top + crop.height).toBeLessThanOrEqual(H);
  // Whole pixels: the ratio is exact to within one pixel of rounding on the shorter side.
  expect(Math.abs(crop.width / aspect - crop.height)).toBeLessThanOrEqual(1);
}

describe('facesCrop on the reference photos', () => {
  for (const [name, faces] of Object.entries(REFERENCE.faces)) {
    for (const [label, aspect] of ASPECTS) {
      it(`${name}, ${label}: keeps every reference face when the faces fit that shape, else at least as many as a centre crop`, async () => {
        const { width: W, height: H } = await orientedSize(name);
        const crop = facesCrop({ width: W, height: H, aspect, faces })!;
        expectWithinImage(crop, W, H, aspect);
        const spanX = (Math.max(...faces.map((f) => f.left + f.width)) - Math.min(...faces.map((f) => f.left))) * W;
        const spanY = (Math.max(...faces.map((f) => f.top + f.height)) - Math.min(...faces.map((f) => f.top))) * H;
        const maxW = Math.min(W, H * aspect);
        const inside = faces.filter((f) => boxInside(f, crop, W, H)).length;
        if (spanX <= maxW - 1 && spanY * aspect <= maxW - 1) {
          expect(inside).toBe(faces.length);
        } else {
          const centred = faces.filter((f) => boxInside(f, centreCrop(W, H, aspect), W, H)).length;
          expect(crop.width).toBeGreaterThanOrEqual(Math.floor(maxW) - 1);
          expect(inside).toBeGreaterThanOrEqual(Math.max(1, centred));
        }
      });
    }
  }

  it('keeps every face of every group photo in the square crop, which their spread allows', async () => {
    let kept = 0;
    let total = 0;
    for (const [name, faces] of Object.entries(REFERENCE.faces)) {
      const { width: W, height: H } = await orientedSize(name);
      const crop = facesCrop({ width: W, height: H, aspect: 1, faces })!;
      kept += faces.filter((f) => boxInside(f, crop, W, H)).length;
      total += faces.length;
    }
    expect(total).toBe(24);
    expect(kept).toBe(total);
  });

  it('keeps more faces than a centre crop where the centre cuts some off (group-1, 9:16)', async () => {
    const faces = REFERENCE.faces['group-1.jpg'];
    const { width: W, height: H } = await orientedSize('group-1.jpg');
    const crop = facesCrop({ width: W, height: H, aspect: 9 / 16, faces })!;
    const centred = faces.filter((f) => boxInside(f, centreCrop(W, H, 9 / 16), W, H)).length;
    const inside = faces.filter((f) => boxInside(f, crop, W, H)).length;
    expect(centred).toBeLessThan(inside);
  });
});

describe('facesCrop geometry', () => {
  const face: NormalizedBox = { left: 0.7, top: 0.1, width: 0.1, height: 0.15 };

  it('returns null without faces, so the caller can fall back', () => {
    expect(facesCrop({ width: 1000, height: 800, aspect: 1, faces: [] })).toBeNull();
  });

  it('frames a lone face tightly with its margin, centred on it', () => {
    const crop = facesCrop({ width: 1000, height: 800, aspect: 1, faces: [face], margin: 0.5 })!;
    // Face 100×120 px at (700, 80); margin 0.5 × 120 = 60 px each side → 220×240 → a 240 px square.
    expect(crop).toEqual({ left: 630, top: 20, width: 240, height: 240 });
  });

  it('never goes below minWidth, so a small face is not enlarged past the original', () => {
    const crop = facesCrop({ width: 1000, height: 800, aspect: 1, faces: [face], margin: 0.5, minWidth: 400 })!;
    expect(crop.width).toBe(400);
    expect(boxInside(face, crop, 1000, 800)).toBe(true);
  });

  it('clamps to the image while keeping the face inside', () => {
    const corner: NormalizedBox = { left: 0.92, top: 0.0, width: 0.08, height: 0.1 };
    const crop = facesCrop({ width: 1000, height: 800, aspect: 16 / 9, faces: [corner], minWidth: 600 })!;
    expectWithinImage(crop, 1000, 800, 16 / 9);
    expect(crop.left + crop.width).toBe(1000);
    expect(crop.top).toBe(0);
    expect(boxInside(corner, crop, 1000, 800)).toBe(true);
  });

  it('lets the margins give way before a face is cut', () => {
    // Two 100 px faces spanning 950 px of a 2000×1000 image: the largest square (1000 px) holds them bare,
    // not with 40 px margins on both sides.
    const faces: NormalizedBox[] = [
      { left: 0.3, top: 0.45, width: 0.05, height: 0.1 },
      { left: 0.725, top: 0.45, width: 0.05, height: 0.1 },
    ];
    const crop = facesCrop({ width: 2000, height: 1000, aspect: 1, faces })!;
    expect(crop).toEqual({ left: 575, top: 0, width: 1000, height: 1000 });
    expect(faces.every((f) => boxInside(f, crop, 2000, 1000, 0))).toBe(true);
  });

  it('keeps margins that the image edge clips, rather than shrinking the crop', () => {
    const faces: NormalizedBox[] = [{ left: 0.0, top: 0.0, width: 0.1, height: 0.1 }];
    const crop = facesCrop({ width: 1000, height: 1000, aspect: 1, faces, margin: 0.5 })!;
    expect(crop).toEqual({ left: 0, top: 0, width: 150, height: 150 });
  });

  it('rejects impossible geometry', () => {
    expect(() => facesCrop({ width: 0, height: 10, aspect: 1, faces: [face] })).toThrow(RangeError);
    expect(() => facesCrop({ width: 10, height: 10, aspect: Number.NaN, faces: [face] })).toThrow(RangeError);
  });
});
