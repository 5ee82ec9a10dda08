#!/usr/bin/env node
/*
 * Writes the package.json of the container image's runtime dependencies (used by the Dockerfile):
 * the union of the "dependencies" of the built function bundles (dist/gcp/<fn>/package.json, e.g. sharp
 * and heic-decode for process) plus the Functions Framework that serves them, each pinned to the exact
 * version locked in package-lock.json, so the image runs what the tests ran.
 *
 *   node runtime-package.cjs <package-lock.json> <bundles dir> <output package.json> [function...]
 *   (functions default to: upload process notify)
 */
'use strict';

const fs = require('node:fs');
const path = require('node:path');

function runtimePackage(lock, bundlesDir, functions) {
  const version = (name) => {
    const entry = lock.packages && lock.packages[`node_modules/${name}`];
    if (!entry || !entry.version) throw new Error(`${name} is missing from package-lock.json`);
    return entry.version;
  };
  const dependencies = { '@google-cloud/functions-framework': version('@google-cloud/functions-framework') };
  for (const fn of functions) {
    const pkg = JSON.parse(fs.readFileSync(path.join(bundlesDir, fn, 'package.json'), 'utf8'));
    for (const name of Object.keys(pkg.dependencies || {})) dependencies[name] = version(name);
  }
  const sorted = Object.fromEntries(Object.entries(dependencies).sort(([a], [b]) => a.localeCompare(b)));
  return { name: 'pixelpipe-runtime', private: true, description: 'Runtime dependencies of the pixelpipe GCP function bundles', dependencies: sorted };
}

if (require.main === module) {
  const [lockFile, bundlesDir, out, ...fns] = process.argv.slice(2);
  if (!lockFile || !bundlesDir || !out) {
    process.stderr.write('usage: runtime-package.cjs <package-lock.json> <bundles dir> <output> [function...]\n');
    process.exit(2);
  }
  const lock = JSON.parse(fs.readFileSync(lockFile, 'utf8'));
  const pkg = runtimePackage(lock, bundlesDir, fns.length ? fns : ['upload', 'process', 'notify']);
  fs.writeFileSync(out, JSON.stringify(pkg, null, 2) + '\n');
}

module.exports = { runtimePackage };
