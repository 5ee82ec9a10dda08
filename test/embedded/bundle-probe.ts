/**
 * Entry bundled by `face-api-bundle.int.test.ts` exactly as `npm run build` bundles a function, then run
 * from a directory without node_modules: it proves the analyzer loads from the bundle and the files
 * shipped beside it alone, and measures what loading costs. argv: <raw rgb file> <width> <height>.
 */
import { existsSync, readFileSync } from 'node:fs';
import { FaceApiImageAnalyzer, faceApiAssetDirs } from '../../functions/embedded/face-api-image-analyzer';

// Milliseconds since the process started: Node's boot plus evaluating the whole bundle, the analyzer's module included.
const requiredMs = performance.now();
// TensorFlow.js registers its engine on the global object when it is evaluated.
const tfjsEvaluatedAtStart = '_tfengine' in globalThis;

async function main(): Promise<void> {
  const [file, w, h] = process.argv.slice(2);
  const pixels = { data: new Uint8Array(readFileSync(file)), width: Number(w), height: Number(h), channels: 3 as const };
  const analyzer = new FaceApiImageAnalyzer(faceApiAssetDirs(__dirname, existsSync));
  const first = await analyzer.analyze(pixels, ['faces']);
  const info = await analyzer.load();
  const warm = await analyzer.analyze(pixels, ['faces']);
  // PIXELPIPE_FACE_DESCRIPTORS=true: the landmark and recognition weights must be among the shipped files too.
  const withDescriptors = await new FaceApiImageAnalyzer({ ...faceApiAssetDirs(__dirname, existsSync), descriptors: true }).analyze(pixels, ['faces']);
  process.stdout.write(
    JSON.stringify({
      requiredMs,
      tfjsEvaluatedAtStart,
      tfjsEvaluatedAfter: '_tfengine' in globalThis,
      firstMs: first.ms,
      warmMs: warm.ms,
      info,
      faces: warm.faces,
      descriptorLengths: withDescriptors.faces!.map((f) => f.descriptor?.length ?? 0),
    }),
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
