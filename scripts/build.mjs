#!/usr/bin/env node
// One esbuild bundle per function (plus the CLI). sharp stays external: it ships a native binary per
// platform, installed next to the bundle (see serverless.yml / the GCP deploy). Cloud SDKs are bundled
// so a cold start loads one file instead of resolving hundreds of modules.
import { build } from 'esbuild';
import { mkdir, writeFile, stat, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8'));

/** name → [entry, extra externals, runtime dependencies of the bundle] */
export const FUNCTIONS = {
  'gcp/upload': ['functions/gcp/upload.ts', [], []],
  'gcp/process': ['functions/gcp/process.ts', ['sharp'], ['sharp']],
  'gcp/notify': ['functions/gcp/notify.ts', [], []],
  'aws/upload': ['functions/aws/upload.ts', [], []],
  'aws/process': ['functions/aws/process.ts', ['sharp'], ['sharp']],
  'aws/notify': ['functions/aws/notify.ts', [], []],
  cli: ['functions/cli/main.ts', ['sharp'], ['sharp']],
  lib: ['shared/index.ts', ['sharp'], ['sharp']],
};

const only = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const quiet = process.argv.includes('--quiet');
const rows = [];
for (const [name, [entry, external, deps]] of Object.entries(FUNCTIONS)) {
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
    logLevel: 'warning',
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
  rows.push({
    bundle: name,
    'index.js KiB': (js / 1024).toFixed(1),
    'with map KiB': (bytes / 1024).toFixed(1),
    externals: [...external, 'heic-decode'].join(' '),
  });
}
if (!quiet) console.table(rows);
