import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { loadConfig, parseVariants, type VariantSpec } from '../../shared/config';
import { SharpImageProcessor } from '../../shared/image/sharp-image-processor';
import { boxInside } from '../../shared/image/smart-crop';
import type { AnalysisPixels, AnalysisResult, CropRect, RenderOptions } from '../../shared/ports';
import { REFERENCE, facePhotoPath, orientedSize } from '../support/faces';

const processor = new SharpImageProcessor();
const { limits } = loadConfig({ PIXELPIPE_AUTH_MODE: 'anonymous' });
const opts: RenderOptions = { webpEffort: 2, avifEffort: 2, placeholder: false };
const variants = (specs: Record<string, unknown>[]): VariantSpec[] => parseVariants(specs.map((s) => ({ formats: ['png'], fit: 'cover', ...s })));

/** An analyzer stand-in that "finds" the hand-checked reference faces: the crops are tested, not the detector. */
function referenceFaces(name: string, seen: AnalysisPixels[] = []): RenderOptions['analyze'] {
  return (pixels) => {
    seen.push(pixels);
    const result: AnalysisResult = { faces: (REFERENCE.faces[name] ?? []).map((box) => ({ box, score: 1 })), unavailable: [], analyzer: 'reference', ms: 0 };
    return Promise.resolve(result);
  };
}

/**
 * Checks that `output` shows the original cut at `crop`: the mean absolute difference per sample is small,
 * and several times smaller than for the same crop moved by a tenth of its size (resampling alone differs a little).
 */
async function expectShowsCrop(file: string, crop: CropRect, output: Buffer): Promise<void> {
  const meta = await sharp(file).metadata();
  const [W, H] = (meta.orientation ?? 1) >= 5 ? [meta.height, meta.width] : [meta.width, meta.height];
  const here = await differenceFromCrop(file, crop, output);
  expect(here).toBeLessThan(10);
  const dx = Math.max(2, Math.round(crop.width / 10));
  const dy = Math.max(2, Math.round(crop.height / 10));
  const moved = {
    ...crop,
    left: crop.left + dx <= W - crop.width ? crop.left + dx : crop.left - dx,
    top: crop.top + dy <= H - crop.height ? crop.top + dy : crop.top - dy,
  };
  const there = await differenceFromCrop(file, { ...moved, left: Math.max(0, moved.left), top: Math.max(0, moved.top) }, output);
  // A crop of the whole image (a square photo in a square box) cannot be moved to compare with.
  if (crop.width < W || crop.height < H) expect(here * 2).toBeLessThan(there);
}

/** Mean absolute difference per sample between an output and the original cut at `crop` and scaled to the output's size. */
async function differenceFromCrop(file: string, crop: CropRect, output: Buffer): Promise<number> {
  const out = await sharp(output).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const ref = await sharp(await sharp(file).autoOrient().extract(crop).toBuffer())
    .resize(out.info.width, out.info.height, { fit: 'fill' })
    .removeAlpha()
    .raw()
    .toBuffer();
  let sum = 0;
  for (let i = 0; i < ref.length; i++) sum += Math.abs(ref[i] - out.data[i]);
  return sum / ref.length;
}

describe('cover positions', () => {
  it('records the centre crop (the default) in original pixels', async () => {
    const file = facePhotoPath('group-1.jpg');
    const r = await processor.render(readFileSync(file), variants([{ name: 'thumb', width: 200, height: 200 }]), limits, opts);
    const { width: W, height: H } = await orientedSize('group-1.jpg');
    const crop = r.outputs[0].crop!;
    expect(crop.height).toBe(H);
    expect(Math.abs(crop.width - H)).toBeLessThanOrEqual(1);
    expect(Math.abs(crop.left - (W - H) / 2)).toBeLessThanOrEqual(2);
    await expectShowsCrop(file, crop, r.outputs[0].body);
    expect(r.analysis).toBeUndefined();
  });

  for (const name of Object.keys(REFERENCE.faces)) {
    it(`${name}: position faces keeps every reference face in the square thumb, and the pixels are the recorded crop`, async () => {
      const file = facePhotoPath(name);
      const r = await processor.render(readFileSync(file), variants([{ name: 'thumb', width: 200, height: 200, position: 'faces' }]), limits, {
        ...opts,
        analyze: referenceFaces(name),
      });
      const [thumb] = r.outputs;
      expect([thumb.width, thumb.height]).toEqual([200, 200]);
      const { width: W, height: H } = await orientedSize(name);
      const faces = REFERENCE.faces[name];
      expect(faces.filter((f) => boxInside(f, thumb.crop!, W, H)).length).toBe(faces.length);
      await expectShowsCrop(file, thumb.crop!, thumb.body);
      expect(r.analysis?.analyzer).toBe('reference');
    });
  }

  it('keeps more faces than the centre in a 9:16 portrait of a wide group', async () => {
    const name = 'group-1.jpg';
    const file = facePhotoPath(name);
    const spec = (position: string) => variants([{ name: 'tall', width: 180, height: 320, position }]);
    const [centre] = (await processor.render(readFileSync(file), spec('centre'), limits, opts)).outputs;
    const [faces] = (await processor.render(readFileSync(file), spec('faces'), limits, { ...opts, analyze: referenceFaces(name) })).outputs;
    const { width: W, height: H } = await orientedSize(name);
    const kept = (c: CropRect) => REFERENCE.faces[name].filter((f) => boxInside(f, c, W, H)).length;
    expect(kept(centre.crop!)).toBeLessThan(kept(faces.crop!));
  });

  it('falls back to attention when no face was found', async () => {
    const file = facePhotoPath('landscape.jpg');
    const body = readFileSync(file);
    const [attention] = (await processor.render(body, variants([{ name: 't', width: 200, height: 200, position: 'attention' }]), limits, opts)).outputs;
    const [faces] = (
      await processor.render(body, variants([{ name: 't', width: 200, height: 200, position: 'faces' }]), limits, {
        ...opts,
        analyze: referenceFaces('landscape.jpg'),
      })
    ).outputs;
    expect(faces.crop).toEqual(attention.crop);
    await expectShowsCrop(file, attention.crop!, attention.body);
  });

  it('records where entropy cut, and the pixels match it', async () => {
    const file = facePhotoPath('dandelions.jpg');
    const [out] = (await processor.render(readFileSync(file), variants([{ name: 't', width: 300, height: 300, position: 'entropy' }]), limits, opts)).outputs;
    expect([out.width, out.height]).toEqual([300, 300]);
    await expectShowsCrop(file, out.crop!, out.body);
  });

  it('hands the analyzer one ≤ 640 px rung of the oriented pixels, once, before the variants', async () => {
    const seen: AnalysisPixels[] = [];
    // portrait-exif6.jpg is stored landscape with EXIF orientation 6: the analyzer must see it upright.
    const r = await processor.render(
      readFileSync(facePhotoPath('portrait-exif6.jpg')),
      variants([
        { name: 'a', width: 200, height: 200, position: 'faces' },
        { name: 'b', width: 100, height: 300, position: 'faces' },
        { name: 'c', width: 1000, fit: 'inside' },
      ]),
      limits,
      { ...opts, analyze: referenceFaces('portrait-exif6.jpg', seen) },
    );
    expect(seen).toHaveLength(1);
    expect(Math.max(seen[0].width, seen[0].height)).toBeLessThanOrEqual(640);
    expect(seen[0].height).toBeGreaterThan(seen[0].width);
    expect(seen[0].data.length).toBe(seen[0].width * seen[0].height * seen[0].channels);
    expect(r.outputs.map((o) => [o.variant, o.width, o.height, o.crop !== undefined])).toEqual([
      ['a', 200, 200, true],
      ['b', 100, 300, true],
      ['c', 1000, 1500, false],
    ]);
  });
});

describe('position config', () => {
  it('leaves existing variants unchanged (no position means centre) and accepts the four positions on cover', () => {
    expect(parseVariants([{ name: 'a', width: 10, height: 10, fit: 'cover' }])[0]).not.toHaveProperty('position');
    for (const position of ['centre', 'attention', 'entropy', 'faces']) {
      expect(parseVariants([{ name: 'a', width: 10, height: 10, fit: 'cover', position }])[0].position).toBe(position);
    }
  });

  it('rejects a position on fits that do not crop, and unknown positions', () => {
    expect(() => parseVariants([{ name: 'a', width: 10, position: 'faces' }])).toThrow(/position only applies to fit cover/);
    expect(() => parseVariants([{ name: 'a', width: 10, height: 10, fit: 'cover', position: 'north' }])).toThrow();
  });
});
