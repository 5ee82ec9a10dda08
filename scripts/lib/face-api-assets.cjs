/*
 * The files the embedded face analyzer reads at run time, copied beside a bundle that contains it:
 * `<bundle>/face-api/model/` (only the two detectors' weights: not the recognition, landmark, age or
 * expression models) and `<bundle>/face-api/wasm/` (the SIMD binary: the analyzer refuses to run without
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
];
const WASM_FILES = ['tfjs-backend-wasm-simd.wasm'];

/** True when esbuild's metafile shows the bundle contains face-api. */
function bundlesFaceApi(metafile) {
  return Object.keys(metafile.inputs).some((p) => p.includes('@vladmandic/face-api/'));
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

module.exports = { bundlesFaceApi, copyFaceApiAssets, MODEL_FILES, WASM_FILES };
