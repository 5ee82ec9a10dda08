#!/usr/bin/env node
// Runs a TypeScript script: bundles it with esbuild (dependencies stay in node_modules) into
// node_modules/.cache/pixelpipe and executes it with the remaining arguments. Node 20 cannot run
// TypeScript itself, and this keeps scripts on exactly the code the functions use.
import { build } from 'esbuild';
import { spawn } from 'node:child_process';
import { rename } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

let child;
// Installed before bundling, so a Ctrl-C during the build exits cleanly instead of with an error.
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => (child ? child.kill(sig) : process.exit(130)));

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const [entry, ...args] = process.argv.slice(2);
if (!entry) {
  console.error('usage: node scripts/ts.mjs <script.ts> [args...]');
  process.exit(2);
}
const outfile = join(root, 'node_modules', '.cache', 'pixelpipe', relative(root, resolve(entry)).replace(/\.ts$/, '.js'));
// Build to a private file and rename it into place: concurrent runs (parallel tests) never read a half-written bundle.
const tmp = `${outfile}.${process.pid}.tmp`;
await build({
  entryPoints: [resolve(entry)],
  outfile: tmp,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  packages: 'external',
  sourcemap: 'inline',
  logLevel: 'warning',
});
await rename(tmp, outfile);
child = spawn(process.execPath, ['--enable-source-maps', outfile, ...args], { stdio: 'inherit' });
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
