/**
 * Architecture rules that a reviewer would otherwise have to remember:
 * the core imports no cloud SDK and never reads the environment.
 */
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

const root = join(__dirname, '..', '..');

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return tsFiles(p);
    return /\.(ts|mts|cts)$/.test(name) && !name.endsWith('.d.ts') ? [p] : [];
  });
}

/** Every module specifier in `import … from`, `export … from`, `import(…)` and `require(…)`. */
function specifiers(source: string): string[] {
  const out: string[] = [];
  const re = /(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|^\s*import\s+)(['"])([^'"]+)\1/gm;
  for (let m = re.exec(source); m; m = re.exec(source)) out.push(m[2]);
  return out;
}

const CLOUD_SDK = /^(@google-cloud\/|@aws-sdk\/|aws-sdk$|firebase|firebase-admin|@smithy\/|googleapis|google-auth-library)/;
const shared = tsFiles(join(root, 'shared')).filter((f) => !f.endsWith('.test.ts'));

test('the rule itself finds imports in every syntax', () => {
  expect(
    specifiers(
      `import a from '@aws-sdk/client-s3';\nexport { b } from "x";\nconst c = require('@google-cloud/storage');\nawait import('firebase-admin');\nimport 'side-effect';`,
    ),
  ).toEqual(['@aws-sdk/client-s3', 'x', '@google-cloud/storage', 'firebase-admin', 'side-effect']);
});

test('shared/ has source files to check', () => {
  expect(shared.length).toBeGreaterThan(15);
});

/** The embedded analyzer's runtime: megabytes of JavaScript and WebAssembly, loaded only by the adapter that needs it. */
const ML_RUNTIME = /^(@vladmandic\/face-api|@tensorflow\/)/;

test.each(shared.map((f) => [relative(root, f)]))('%s imports no cloud SDK, no ML runtime and no adapter', (file) => {
  const src = readFileSync(join(root, file), 'utf8');
  const bad = specifiers(src).filter((s) => CLOUD_SDK.test(s) || ML_RUNTIME.test(s) || /functions\//.test(s));
  expect(bad).toEqual([]);
});

/** Source without comments, so documentation may mention what the code must not do. */
function code(source: string): string {
  return source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
}

test.each(shared.map((f) => [relative(root, f)]))('%s never reads process.env', (file) => {
  expect(code(readFileSync(join(root, file), 'utf8'))).not.toMatch(/process\.env/);
});

/**
 * The cold-start budget of the upload (150 ms) and notify (250 ms) functions has no room for a storage
 * or Pub/Sub client library: each costs 95–310 ms to load. What an entry's bundle pulls in is read
 * from esbuild's metafile. The GCP entries authenticate with google-auth-library (and its gaxios,
 * gcp-metadata, …), about 30 ms; the AWS upload entry needs no Google code at all.
 */
describe('slim function bundles', () => {
  const HEAVY = /node_modules\/(@google-cloud\/(storage|pubsub)|google-gax|@grpc|@aws-sdk|@smithy|sharp|@tensorflow|@vladmandic)\//;
  const GOOGLE_AUTH = /node_modules\/(google-auth-library|gaxios|gcp-metadata|google-logging-utils)\//;
  test.each([
    ['functions/gcp/upload.ts', true],
    ['functions/gcp/notify.ts', true],
    ['functions/aws/upload.ts', false],
  ])('%s bundles no storage/Pub/Sub/AWS SDK, no sharp and no ML runtime (Google auth library: %s)', async (entry, googleAuth) => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { build } = require('esbuild') as typeof import('esbuild');
    const r = await build({
      entryPoints: [join(root, entry)],
      bundle: true,
      platform: 'node',
      format: 'cjs',
      write: false,
      metafile: true,
      logLevel: 'silent',
      outdir: '/tmp',
    });
    const inputs = Object.keys(r.metafile.inputs);
    expect(inputs.length).toBeGreaterThan(10);
    expect(inputs.filter((i) => HEAVY.test(i))).toEqual([]);
    expect(inputs.some((i) => /node_modules\/google-auth-library\//.test(i))).toBe(googleAuth);
    if (!googleAuth) expect(inputs.filter((i) => GOOGLE_AUTH.test(i))).toEqual([]);
  });
});

/**
 * `import { z } from 'zod'` re-exports every translation; scripts/build.mjs keeps only English, which
 * took ≈ 255 KiB and ≈ 10 ms of cold start off every function. The bundled zod must still report in
 * English, and `z.locales` must keep `en`.
 */
describe('zod is bundled with its English messages only', () => {
  test('no other locale is an input, and a bundled schema still explains its errors in English', async () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { build } = require('esbuild') as typeof import('esbuild');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { zodEnglishOnly } = require(join(root, 'scripts', 'lib', 'zod-english-only.cjs')) as { zodEnglishOnly: () => import('esbuild').Plugin };
    const r = await build({
      stdin: {
        contents:
          "import { z } from 'zod'; module.exports = { issue: z.object({ n: z.number().min(3) }).safeParse({ n: 1 }).error.issues[0].message, en: typeof z.locales.en, fr: typeof z.locales.fr };",
        resolveDir: root,
        loader: 'ts',
      },
      bundle: true,
      platform: 'node',
      format: 'cjs',
      write: false,
      metafile: true,
      logLevel: 'silent',
      plugins: [zodEnglishOnly()],
    });
    const locales = Object.keys(r.metafile.inputs).filter((i) => /zod\/v4\/locales\//.test(i));
    expect(locales.length).toBeGreaterThan(0);
    expect(locales.every((i) => /\/locales\/en\.c?js$/.test(i))).toBe(true);
    const file = join(mkdtempSync(join(tmpdir(), 'zod-en-')), 'bundle.js');
    writeFileSync(file, r.outputFiles[0].text);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    expect(require(file)).toEqual({ issue: 'Too small: expected number to be >=3', en: 'function', fr: 'undefined' });
  });
});
