/**
 * Face descriptors (`PIXELPIPE_FACE_DESCRIPTORS=true`) measured on the sample photos, one core: what the
 * landmark and recognition nets add per image and per face (warm), what their first load costs, and how
 * well each landmark net's descriptors tell people apart (same person: a portrait against its mirrored,
 * rescaled copy; different people: every other pair of faces). Run:
 * `node scripts/ts.mjs scripts/bench/face-descriptors.ts` (prints JSON).
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { FaceApiImageAnalyzer, faceApiAssetDirs, type DescriptorLandmarks } from '../../functions/embedded/face-api-image-analyzer';
import { ANALYSIS_MAX_SIDE, type AnalysisPixels } from '../../shared/ports';
import { REPO_ROOT } from './root';

async function rung(input: string | Buffer, mirror = false, scale = 1): Promise<AnalysisPixels> {
  let p = sharp(input).autoOrient();
  if (mirror) p = p.flop();
  const meta = await sharp(input).metadata();
  const side = Math.round(Math.min(ANALYSIS_MAX_SIDE, Math.max(meta.width, meta.height)) * scale);
  const { data, info } = await p.resize(side, side, { fit: 'inside' }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels as 3 };
}

const distance = (a: number[], b: number[]): number => Math.sqrt(a.reduce((s, v, i) => s + (v - b[i]) ** 2, 0));
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const cpu = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

async function main(): Promise<void> {
  const dir = join(REPO_ROOT, 'samples', 'faces');
  const photos = readdirSync(dir).filter((f) => f.endsWith('.jpg'));
  const pixels = await Promise.all(photos.map((f) => rung(join(dir, f))));
  const astronaut = join(dir, 'astronaut.jpg');
  const twin = await rung(astronaut, true, 0.7);
  const assets = faceApiAssetDirs(undefined, existsSync);
  const rounds = Number(process.env.ROUNDS ?? 3);
  const out: Record<string, unknown> = { photos: photos.length, rounds };

  // Boxes only first: the baseline the descriptors are measured against, and the runtime's load out of the way.
  const plain = new FaceApiImageAnalyzer(assets);
  const c0 = cpu();
  await plain.analyze(pixels[0], ['faces']);
  out.firstBoxesOnlyCpuMs = Math.round(cpu() - c0);
  const warm = async (a: FaceApiImageAnalyzer): Promise<{ perImage: number; faces: number }> => {
    const times: number[] = [];
    let faces = 0;
    for (let r = 0; r < rounds; r++) {
      for (const px of pixels) {
        const t = cpu();
        const res = await a.analyze(px, ['faces']);
        times.push(cpu() - t);
        if (r === 0) faces += res.faces!.length;
      }
    }
    return { perImage: median(times), faces };
  };
  const base = await warm(plain);
  out.boxesOnly = { warmCpuMsPerImage: round(base.perImage), faces: base.faces };

  for (const landmarks of ['tiny', 'full'] as DescriptorLandmarks[]) {
    const a = new FaceApiImageAnalyzer({ ...assets, descriptors: { landmarks } });
    const t = cpu();
    const w0 = performance.now();
    await a.load();
    const load = { cpuMs: Math.round(cpu() - t), wallMs: Math.round(performance.now() - w0) };
    const w = await warm(a);
    // Separation: same person (portrait vs mirrored, rescaled copy) against every pair of different faces.
    const portrait = (await a.analyze(await rung(astronaut), ['faces'])).faces![0].descriptor!;
    const same = distance(portrait, (await a.analyze(twin, ['faces'])).faces![0].descriptor!);
    const all: number[][] = [];
    for (const px of pixels) for (const f of (await a.analyze(px, ['faces'])).faces!) all.push(f.descriptor!);
    const different: number[] = [];
    for (let i = 0; i < all.length; i++) for (let j = i + 1; j < all.length; j++) different.push(distance(all[i], all[j]));
    different.sort((x, y) => x - y);
    out[landmarks] = {
      loadAfterRuntime: load,
      warmCpuMsPerImage: round(w.perImage),
      addedCpuMsPerImage: round(w.perImage - base.perImage),
      addedCpuMsPerFace: round(((w.perImage - base.perImage) * pixels.length) / Math.max(1, w.faces)),
      faces: w.faces,
      samePersonDistance: round(same, 3),
      differentPairs: different.length,
      differentMin: round(different[0], 3),
      differentMedian: round(median(different), 3),
      closestDifferentPairsBelow06: different.filter((d) => d < 0.6).length,
    };
  }
  console.log(JSON.stringify(out, null, 2));
}

function round(v: number, digits = 1): number {
  return Math.round(v * 10 ** digits) / 10 ** digits;
}

void main();
