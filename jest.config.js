/**
 * Tiers, by file name: `*.test.ts` unit (in-memory fakes), `*.int.test.ts` adapter/integration (real
 * local servers the tests start), `*.e2e.test.ts` end to end (real browser). `npm test` runs them all.
 */
const swc = ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax: 'typescript' } }, module: { type: 'commonjs' } }];

/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/shared', '<rootDir>/functions', '<rootDir>/test', '<rootDir>/scripts'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.(t|j|mj)s$': swc },
  // thumbhash ships ES modules only; gaxios 7 loads node-fetch with import(), which Jest runs only
  // when transformed into require() (then test/support/jest-resolver.cjs hands it Node's fetch).
  transformIgnorePatterns: ['/node_modules/(?!(?:.+/node_modules/)?(?:thumbhash|gaxios)/)'],
  resolver: '<rootDir>/test/support/jest-resolver.cjs',
  moduleFileExtensions: ['ts', 'js', 'mjs', 'json'],
  testTimeout: 30000,
  maxWorkers: 2,
  verbose: false,
};
