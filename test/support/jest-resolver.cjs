// Jest resolver: gaxios 7 (google-auth-library's HTTP client) gets Node's fetch where it would load
// node-fetch 3, as the function bundles do (see scripts/lib/native-fetch.cjs). gaxios 6, which
// @google-cloud/storage uses with node-fetch 2's streams, keeps the real one.
'use strict';
const { readFileSync } = require('node:fs');
const { join, sep } = require('node:path');

const NATIVE_FETCH = join(__dirname, '..', '..', 'scripts', 'lib', 'native-fetch.cjs');
const majors = new Map();

function gaxiosMajor(basedir) {
  const parts = basedir.split(sep);
  const i = parts.lastIndexOf('gaxios');
  if (i < 1 || parts[i - 1] !== 'node_modules') return undefined;
  const dir = parts.slice(0, i + 1).join(sep);
  if (!majors.has(dir)) {
    try {
      majors.set(dir, Number(JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).version.split('.')[0]));
    } catch {
      majors.set(dir, undefined);
    }
  }
  return majors.get(dir);
}

module.exports = (request, options) => {
  if (request === 'node-fetch' && gaxiosMajor(options.basedir) >= 7) return NATIVE_FETCH;
  return options.defaultResolver(request, options);
};
