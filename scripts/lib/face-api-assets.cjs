/*
 * How a function bundle carries the embedded face analyzer. Its heavy runtime
 * (functions/embedded/face-api-runtime.ts: TensorFlow.js, the wasm backend, face-api; ≈ 2.4 MB) is kept out
 * of the function's `index.js` by {@link faceApiRuntimePlugin} and bundled on its own as
 * `face-api/runtime.js` beside it, so a cold start does not even parse it. The files it reads at run time
 * are copied beside it too:
 * `<bundle>/face-api/model/` (the two detectors' weights, and the full landmark and recognition nets that
 * `PIXELPIPE_FACE_DESCRIPTORS=true` uses; not the tiny landmark, age or expression models) and `<bundle>/face-api/wasm/` (the SIMD binary: the analyzer refuses to run without
 * SIMD, so the plain one is never read). Nothing is downloaded: both come from installed npm packages.
 */
'use strict';

const { copyFile, mkdir, stat } = require('node:fs/promises');
const { dirname, join } = require('node:path');

const MODEL_FILES = [
  'tiny_face_detector_model-weights_manifest.json',
  'tiny_face_detector_model.bin',
  'ssd_mobilenetv1_model-weights_manifest.json',
  'ssd_mobilenetv1_model.bin',
  // PIXELPIPE_FACE_DESCRIPTORS=true only (read on the first image then, never otherwise): the landmark net
  // that aligns faces and the recognition net (6.4 MB) that embeds them. Shipped in the bundles that carry
  // face-api (the process functions, the CLI), so turning descriptors on is a configuration change, not a rebuild.
  'face_landmark_68_model-weights_manifest.json',
  'face_landmark_68_model.bin',
  'face_recognition_model-weights_manifest.json',
  'face_recognition_model.bin',
];
const WASM_FILES = ['tfjs-backend-wasm-simd.wasm'];

const RUNTIME_FILE = 'face-api/runtime.js';
const RUNTIME_ENTRY = join(__dirname, '..', '..', 'functions', 'embedded', 'face-api-runtime.ts');

/** esbuild plugin: the analyzer's `import('./face-api-runtime')` stays a run-time require of the file beside the bundle. */
const faceApiRuntimePlugin = {
  name: 'face-api-runtime',
  setup(b) {
    b.onResolve({ filter: /[\\/]face-api-runtime$/ }, () => ({ path: `./${RUNTIME_FILE}`, external: true }));
  },
};

/** True when esbuild's metafile shows the bundle loads the analyzer's runtime (or, unsplit, contains face-api). */
function bundlesFaceApi(metafile) {
  const external = Object.values(metafile.outputs).some((o) => (o.imports ?? []).some((i) => i.path === `./${RUNTIME_FILE}`));
  return external || Object.keys(metafile.inputs).some((p) => p.includes('@vladmandic/face-api/'));
}

/** Bundles the runtime into `<outdir>/face-api-runtime.js` with `esbuild`'s `build`; returns its size in bytes. */
async function buildFaceApiRuntime(build, outdir) {
  const outfile = join(outdir, RUNTIME_FILE);
  await build({
    entryPoints: [RUNTIME_ENTRY],
    outfile,
    bundle: true,
    platform: 'node',
    target: ['node20', 'node22'],
    format: 'cjs',
    minify: true,
    legalComments: 'none',
    logLevel: 'warning',
  });
  return (await stat(outfile)).size;
}

/** Copies the assets into `<outdir>/face-api/` and returns their total size in bytes. */
async function copyFaceApiAssets(outdir) {
  const modelSrc = join(dirname(require.resolve('@vladmandic/face-api/package.json')), 'model');
  const wasmSrc = join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist');
  let bytes = 0;
  for (const [src, files, dest] of [
    [modelSrc, MODEL_FILES, join(outdir, 'face-api', 'model')],
    [wasmSrc, WASM_FILES, join(outdir, 'face-api', 'wasm')],
  ]) {
    await mkdir(dest, { recursive: true });
    for (const f of files) {
      await copyFile(join(src, f), join(dest, f));
      bytes += (await stat(join(dest, f))).size;
    }
  }
  return bytes;
}

module.exports = { bundlesFaceApi, buildFaceApiRuntime, copyFaceApiAssets, faceApiRuntimePlugin, MODEL_FILES, WASM_FILES, RUNTIME_FILE };
