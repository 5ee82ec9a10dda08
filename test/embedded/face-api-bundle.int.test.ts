import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build, type Metafile, type Plugin } from 'esbuild';
import { analysisPixels, matchFaces, REFERENCE } from '../support/faces';

// eslint-disable-next-line @typescript-eslint/no-require-imports -- the build's own CommonJS helper, shared with scripts/build.mjs
const { bundlesFaceApi, buildFaceApiRuntime, copyFaceApiAssets, faceApiRuntimePlugin } = require('../../scripts/lib/face-api-assets.cjs') as {
  bundlesFaceApi: (m: Metafile) => boolean;
  buildFaceApiRuntime: (b: typeof build, dir: string) => Promise<number>;
  copyFaceApiAssets: (dir: string) => Promise<number>;
  faceApiRuntimePlugin: Plugin;
};

let dir: string;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('bundles with esbuild and runs from the bundle and its shipped files alone, on the wasm backend', async () => {
  // Outside the repository, so nothing can be resolved from node_modules at run time.
  dir = mkdtempSync(join(tmpdir(), 'face-api-bundle-'));
  const result = await build({
    entryPoints: [join(__dirname, 'bundle-probe.ts')],
    outfile: join(dir, 'index.js'),
    bundle: true,
    platform: 'node',
    target: ['node20', 'node22'],
    format: 'cjs',
    minify: true,
    metafile: true,
    legalComments: 'none',
    plugins: [faceApiRuntimePlugin],
    logLevel: 'error',
  });
  expect(bundlesFaceApi(result.metafile)).toBe(true);
  // The runtime is a file of its own: the function's bundle holds none of TensorFlow.js or face-api.
  expect(Object.keys(result.metafile.inputs).filter((p) => /@tensorflow|@vladmandic/.test(p))).toEqual([]);
  const runtime = await buildFaceApiRuntime(build, dir);
  const assets = await copyFaceApiAssets(dir);
  const js = statSync(join(dir, 'index.js')).size;
  const pixels = await analysisPixels('group-5.jpg');
  writeFileSync(join(dir, 'pixels.rgb'), pixels.data);
  const out = execFileSync(process.execPath, [join(dir, 'index.js'), join(dir, 'pixels.rgb'), String(pixels.width), String(pixels.height)], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  const probe = JSON.parse(out) as {
    requiredMs: number;
    tfjsEvaluatedAtStart: boolean;
    tfjsEvaluatedAfter: boolean;
    firstMs: number;
    warmMs: number;
    info: { backend: string; simd: boolean };
    faces: { box: { left: number; top: number; width: number; height: number } }[];
    descriptorLengths: number[];
  };
  console.log(
    `bundle ${(js / 1e6).toFixed(2)} MB + runtime ${(runtime / 1e6).toFixed(2)} MB + assets ${(assets / 1e6).toFixed(2)} MB; process ready ${probe.requiredMs.toFixed(0)} ms, ` +
      `first image ${probe.firstMs} ms (incl. load), warm ${probe.warmMs} ms`,
  );
  expect(probe.info).toMatchObject({ backend: 'wasm', simd: true });
  expect(
    matchFaces(
      REFERENCE.faces['group-5.jpg'],
      probe.faces.map((f) => f.box),
    ).hits,
  ).toBeGreaterThanOrEqual(4);
  // Descriptors from the shipped weights alone: one 128-d descriptor per face found.
  expect(probe.descriptorLengths.length).toBe(probe.faces.length);
  expect(probe.descriptorLengths.every((n) => n === 128)).toBe(true);
  // The runtime loads on first use: starting the bundle must not evaluate TensorFlow.js.
  expect([probe.tfjsEvaluatedAtStart, probe.tfjsEvaluatedAfter]).toEqual([false, true]);
  expect(js).toBeLessThan(100_000);
  expect(runtime).toBeLessThan(6e6);
});
