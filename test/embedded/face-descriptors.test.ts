/**
 * `PIXELPIPE_FACE_DESCRIPTORS=true` with the real embedded models: each face gets a 128-d descriptor,
 * the same person is closer than different people, and descriptors (biometric data) appear only in the
 * private manifest: never in the completion event or the status API. With descriptors off there are none.
 *
 * Same person: the samples hold no two photos of one person, so NASA's astronaut portrait is compared with
 * a mirrored, 70 % rescaled and brightened copy of itself; different people: the cameraman portrait and
 * every face of the six group photos.
 */
import { existsSync, readFileSync } from 'node:fs';
import sharp from 'sharp';
import { DEFAULT_DESCRIPTOR_LANDMARKS, FaceApiImageAnalyzer, FACE_DESCRIPTOR_LENGTH, faceApiAssetDirs } from '../../functions/embedded/face-api-image-analyzer';
import { loadConfig } from '../../shared/config';
import { buildCompletionEvent } from '../../shared/events';
import { SharpImageProcessor } from '../../shared/image/sharp-image-processor';
import type { AnalysisPixels } from '../../shared/ports';
import { FixedClock } from '../../shared/testing/fakes';
import { testInvocation } from '../../shared/testing/invocation';
import { MemoryObjectStore } from '../../shared/testing/memory-object-store';
import { createAnalysisStage } from '../../shared/usecases/analyze-image';
import { getImageStatus } from '../../shared/usecases/get-image-status';
import { processImage } from '../../shared/usecases/process-image';
import { REFERENCE, analysisPixels, facePhotoPath } from '../support/faces';

jest.setTimeout(60_000);
const assets = faceApiAssetDirs(undefined, existsSync);
const withDescriptors = new FaceApiImageAnalyzer({ ...assets, descriptors: true });
const boxesOnly = new FaceApiImageAnalyzer(assets);

const distance = (a: number[], b: number[]): number => Math.sqrt(a.reduce((s, v, i) => s + (v - b[i]) ** 2, 0));

async function altered(name: string): Promise<AnalysisPixels> {
  const { data, info } = await sharp(facePhotoPath(name))
    .flop()
    .resize(358)
    .modulate({ brightness: 1.15 })
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: 3 };
}

async function descriptorsOf(px: AnalysisPixels): Promise<number[][]> {
  const r = await withDescriptors.analyze(px, ['faces']);
  return r.faces!.map((f) => f.descriptor!);
}

describe('face descriptors (real models)', () => {
  test('on: every face carries 128 finite numbers, with the landmark net chosen by measurement', async () => {
    expect(withDescriptors.name).toBe(`face-api/tiny_face_detector@448+face_recognition(landmark_68${DEFAULT_DESCRIPTOR_LANDMARKS === 'tiny' ? '_tiny' : ''})`);
    const faces = (await withDescriptors.analyze(await analysisPixels('group-5.jpg'), ['faces'])).faces!;
    expect(faces.length).toBeGreaterThanOrEqual(REFERENCE.faces['group-5.jpg'].length - 1);
    for (const f of faces) {
      expect(f.descriptor).toHaveLength(FACE_DESCRIPTOR_LENGTH);
      expect(f.descriptor!.every((v) => Number.isFinite(v))).toBe(true);
      // Not all zeros or constant: a real embedding.
      expect(Math.max(...f.descriptor!) - Math.min(...f.descriptor!)).toBeGreaterThan(0.1);
    }
  });

  test('off (the default): no descriptor on any face', async () => {
    const faces = (await boxesOnly.analyze(await analysisPixels('group-5.jpg'), ['faces'])).faces!;
    expect(faces.length).toBeGreaterThan(0);
    for (const f of faces) expect(f).not.toHaveProperty('descriptor');
  });

  test('the same person (astronaut vs a mirrored, rescaled copy) is closer than any two different people', async () => {
    const [astronaut] = await descriptorsOf(await analysisPixels('astronaut.jpg'));
    const [copy] = await descriptorsOf(await altered('astronaut.jpg'));
    const [cameraman] = await descriptorsOf(await analysisPixels('cameraman.jpg'));
    const same = distance(astronaut, copy);
    const others = [cameraman];
    for (const g of ['group-1.jpg', 'group-2.jpg', 'group-3.jpg', 'group-4.jpg', 'group-5.jpg', 'group-6.jpg'])
      others.push(...(await descriptorsOf(await analysisPixels(g))));
    expect(others.length).toBeGreaterThanOrEqual(20);
    const closestOther = Math.min(...others.map((o) => distance(astronaut, o)));
    console.log(`descriptor distance: same person ${same.toFixed(3)}, closest of ${others.length} other faces ${closestOther.toFixed(3)}`);
    // face-api's customary match threshold is 0.6.
    expect(same).toBeLessThan(0.6);
    expect(closestOther).toBeGreaterThan(0.6);
    expect(same).toBeLessThan(closestOther);
  });

  test.each([
    ['on', 'true'],
    ['off', 'false'],
  ])('through processImage, descriptors %s: manifest as configured; never in the event or the status API', async (_label, flag) => {
    const config = loadConfig({
      PIXELPIPE_AUTH_MODE: 'anonymous',
      PIXELPIPE_ANALYZER: 'embedded',
      PIXELPIPE_FACE_DESCRIPTORS: flag,
      PIXELPIPE_VARIANTS: JSON.stringify([{ name: 'thumb', width: 96, height: 96, fit: 'cover', position: 'faces', formats: ['jpeg'] }]),
    });
    const analyzer = config.analysis.faceDescriptors ? withDescriptors : boxesOnly;
    const store = new MemoryObjectStore();
    const deps = { store, processor: new SharpImageProcessor(), clock: new FixedClock(), config, analysis: createAnalysisStage(analyzer, config.analysis) };
    const id = '00000000-0000-4000-8000-0000000de5c0';
    const info = await store.put(config.buckets.originals, `originals/alice/${id}`, readFileSync(facePhotoPath('group-1.jpg')), { contentType: 'image/jpeg' });
    const out = await processImage(deps, testInvocation(), { bucket: info.bucket, key: info.key, generation: info.generation });
    expect(out.status).toBe('processed');
    if (out.status !== 'processed') return;
    const stored = JSON.parse((await store.get(config.buckets.variants, `manifests/${id}.json`)).body.toString('utf8')) as typeof out.manifest;
    const faces = stored.analysis!.faces!;
    expect(faces.length).toBeGreaterThan(0);
    const event = buildCompletionEvent(stored, '//t', new Date()).event;
    const status = await getImageStatus({ store, config }, testInvocation(), id);
    if (flag === 'true') {
      for (const f of faces) expect(f.descriptor).toHaveLength(FACE_DESCRIPTOR_LENGTH);
      expect(stored.analysis!.faceDescriptors).toBe(faces.length);
      // The event keeps the count, so a subscriber knows to read the manifest.
      expect(event.data.analysis!.faceDescriptors).toBe(faces.length);
    } else {
      expect(stored.analysis!.faceDescriptors).toBeUndefined();
      expect(JSON.stringify(stored)).not.toContain('descriptor');
    }
    expect(event.data.analysis!.faces).toHaveLength(faces.length);
    expect(JSON.stringify(event)).not.toContain('"descriptor"');
    expect(JSON.stringify(status)).not.toContain('"descriptor"');
  });
});
