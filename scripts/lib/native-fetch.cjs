// Stands in for node-fetch 3 wherever gaxios 7 (google-auth-library's HTTP client) would load it on
// Node: in the slim GCP bundles (NATIVE_FETCH in scripts/build.mjs) and in the tests
// (test/support/jest-resolver.cjs), so both run what ships. gaxios only calls the default export
// like fetch(url, init); Node's own fetch is what gaxios 7 uses when given a fetchImplementation.
'use strict';
Object.defineProperty(exports, '__esModule', { value: true });
exports.default = function nativeFetch(input, init) {
  return globalThis.fetch(input, init);
};
