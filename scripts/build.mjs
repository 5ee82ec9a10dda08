#!/usr/bin/env node
// One esbuild bundle per function (plus the CLI). sharp stays external: it ships a native binary per
// platform, installed next to the bundle (see serverless.yml / the GCP deploy). Cloud SDKs are bundled
// so a cold start loads one file instead of resolving hundreds of modules.
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile, stat, readFile } from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import faceApiAssets from './lib/face-api-assets.cjs';
import zodLocales from './lib/zod-english-only.cjs';
const { bundlesFaceApi, buildFaceApiRuntime, copyFaceApiAssets, faceApiRuntimePlugin } = faceApiAssets;
const { zodEnglishOnly } = zodLocales;

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8'));

// google-auth-library's gaxios 7 loads node-fetch (and its web-streams polyfill) when it runs on Node;
// the slim GCP functions send every request with Node's own fetch instead (see functions/gcp/google-auth.ts),
// and this makes the metadata-server requests of gcp-metadata do the same. Not for the process
// function or the CLI, whose @google-cloud/storage relies on gaxios 6 and node-fetch 2.
const NATIVE_FETCH = { 'node-fetch': join(root, 'scripts', 'lib', 'native-fetch.cjs') };

/** name → [entry, extra externals, runtime dependencies of the bundle, import aliases] */
export const FUNCTIONS = {
  'gcp/upload': ['functions/gcp/upload.ts', [], [], NATIVE_FETCH],
  'gcp/process': ['functions/gcp/process.ts', ['sharp'], ['sharp']],
  'gcp/notify': ['functions/gcp/notify.ts', [], [], NATIVE_FETCH],
  'gcp/cascade': ['functions/gcp/cascade.ts', [], []],
  'gcp/images': ['functions/gcp/images.ts', [], []],
  'aws/upload': ['functions/aws/upload.ts', [], []],
  'aws/process': ['functions/aws/process.ts', ['sharp'], ['sharp']],
  'aws/notify': ['functions/aws/notify.ts', [], []],
  'aws/cascade': ['functions/aws/cascade.ts', [], []],
  'aws/images': ['functions/aws/images.ts', [], []],
  cli: ['functions/cli/main.ts', ['sharp'], ['sharp']],
  lib: ['shared/index.ts', ['sharp'], ['sharp']],
};

const only = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const quiet = process.argv.includes('--quiet');
const rows = [];
/**
 * Bundles one copy of a package that npm installed more than once at the same version. npm nests
 * gaxios 7 (with google-logging-utils) under both google-auth-library and gcp-metadata because
 * @google-cloud/storage holds gaxios 6 at the top; identical name and version means identical code,
 * so the second copy only costs cold start (and would keep separate module state).
 */
function dedupeSameVersion() {
  const pkgDir = (file) => {
    const parts = file.split(sep);
    const i = parts.lastIndexOf('node_modules');
    if (i < 0) return undefined;
    return parts.slice(0, i + (parts[i + 1]?.startsWith('@') ? 3 : 2)).join(sep);
  };
  const versions = new Map();
  const versionOf = (dir) => {
    if (!versions.has(dir)) {
      try {
        const { name, version } = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
        versions.set(dir, name && version ? `${name}@${version}` : undefined);
      } catch {
        versions.set(dir, undefined);
      }
    }
    return versions.get(dir);
  };
  return {
    name: 'dedupe-same-version',
    setup(b) {
      const first = new Map();
      b.onResolve({ filter: /^[^./]/ }, async (args) => {
        if (args.pluginData?.dedupe) return undefined;
        const r = await b.resolve(args.path, { kind: args.kind, importer: args.importer, resolveDir: args.resolveDir, pluginData: { dedupe: true } });
        // Unresolvable (e.g. an optional require in a try block) or external: esbuild's own handling.
        if (r.errors.length || r.external || !r.path) return undefined;
        const dir = pkgDir(r.path);
        const id = dir && versionOf(dir);
        if (!id) return { path: r.path, sideEffects: r.sideEffects };
        if (!first.has(id)) first.set(id, dir);
        return { path: first.get(id) + r.path.slice(dir.length), sideEffects: r.sideEffects };
      });
    },
  };
}

for (const [name, [entry, external, deps, alias = {}]] of Object.entries(FUNCTIONS)) {
  if (only.length && !only.includes(name)) continue;
  try {
    await stat(join(root, entry));
  } catch {
    if (!quiet) console.warn(`skip ${name}: ${entry} does not exist yet`);
    continue;
  }
  const outdir = join(root, 'dist', name);
  await mkdir(outdir, { recursive: true });
  const result = await build({
    entryPoints: [join(root, entry)],
    outfile: join(outdir, 'index.js'),
    bundle: true,
    platform: 'node',
    // The clouds run Node 22; our machines run Node 20, and nothing we emit needs syntax past ES2022.
    target: ['node20', 'node22'],
    format: 'cjs',
    minify: true,
    sourcemap: 'linked',
    metafile: true,
    legalComments: 'none',
    // heic-decode's WebAssembly is only loaded for HEIC input: keep it out of the hot bundle.
    external: [...external, 'heic-decode'],
    plugins: [faceApiRuntimePlugin, dedupeSameVersion(), zodEnglishOnly()],
    logLevel: 'warning',
    alias,
  });
  const runtimeDeps = Object.fromEntries([...deps, ...(external.includes('sharp') ? ['heic-decode'] : [])].map((d) => [d, pkg.dependencies[d]]));
  if (!external.includes('sharp')) delete runtimeDeps['heic-decode'];
  await writeFile(
    join(outdir, 'package.json'),
    JSON.stringify(
      { name: `pixelpipe-${name.replace('/', '-')}`, private: true, main: 'index.js', engines: { node: '>=20' }, dependencies: runtimeDeps },
      null,
      2,
    ),
  );
  const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + (o.bytes ?? 0), 0);
  const js = (await stat(join(outdir, 'index.js'))).size;
  // The embedded analyzer reads its model and wasm from files: ship them beside the bundle that loads it.
  const assets = bundlesFaceApi(result.metafile) ? (await buildFaceApiRuntime(build, outdir)) + (await copyFaceApiAssets(outdir)) : 0;
  rows.push({
    bundle: name,
    'index.js KiB': (js / 1024).toFixed(1),
    'with map KiB': (bytes / 1024).toFixed(1),
    'face-api runtime + assets KiB': (assets / 1024).toFixed(1),
    externals: [...external, 'heic-decode'].join(' '),
  });
}
if (!quiet) console.table(rows);
