// esbuild plugin: bundles zod with its English messages only.
//
// `import { z } from 'zod'` is a namespace that re-exports `locales`, so esbuild keeps all of zod's
// ~50 translations (≈ 260 KiB minified) in every bundle although pixelpipe never calls
// `z.config(z.locales.xx())`: English is registered by zod's schemas module itself. Evaluating them
// cost ≈ 20 ms of every function's cold start on one core (measured: zod alone 45 → 20 ms require).
// `z.locales` keeps `en`; any other locale is `undefined` in a bundle, loudly so at the call site.
const { dirname, join } = require('node:path');

const NAMESPACE = 'zod-english-only';

/** @returns {import('esbuild').Plugin} */
function zodEnglishOnly() {
  return {
    name: NAMESPACE,
    setup(build) {
      build.onResolve({ filter: /^\.\.\/locales\/index\.c?js$/ }, (args) => {
        if (!/[\\/]node_modules[\\/]zod[\\/]/.test(args.importer)) return undefined;
        const cjs = args.path.endsWith('.cjs');
        return { path: join(dirname(args.importer), '..', 'locales', cjs ? 'en.cjs' : 'en.js'), namespace: NAMESPACE };
      });
      build.onLoad({ filter: /.*/, namespace: NAMESPACE }, (args) => ({
        contents: `export { default as en } from ${JSON.stringify(args.path)};`,
        resolveDir: dirname(args.path),
        loader: 'js',
      }));
    },
  };
}

module.exports = { zodEnglishOnly };
