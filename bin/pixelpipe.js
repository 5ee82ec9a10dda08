#!/usr/bin/env node
'use strict';
// The CLI is bundled by `npm run build` / `npm install` (prepare). Build it on first use when missing,
// so a fresh checkout works even if install scripts were skipped.
const { existsSync } = require('node:fs');
const { join } = require('node:path');
const { execFileSync } = require('node:child_process');

const bundle = join(__dirname, '..', 'dist', 'cli', 'index.js');
if (!existsSync(bundle)) {
  execFileSync(process.execPath, [join(__dirname, '..', 'scripts', 'build.mjs'), '--quiet', 'cli'], { stdio: 'inherit' });
}
require(bundle)
  .main(process.argv.slice(2))
  .then((code) => {
    process.exitCode = code;
  });
