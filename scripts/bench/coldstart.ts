/**
 * Function bundles: size and cold-start init time. A cold start is a fresh `node` process that requires
 * the function's entry and stops the clock once the module (and so the handler, built at module load)
 * is ready; `performance.now()` counts from the process's start, so the figure includes Node's own boot.
 *
 * Two variants per function: the esbuild bundle `dist/<cloud>/<fn>/index.js` (what is deployed), and the
 * same entry transpiled with every package left in `node_modules` (what a plain `tsc` build deploys).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { instanceCommand, type Instance } from './child';
import { round, summarize, type Summary } from './stats';

/** The six cloud functions: dist name and TypeScript entry. */
export const FUNCTIONS = [
  { name: 'gcp/upload', entry: 'functions/gcp/upload.ts', role: 'upload' },
  { name: 'gcp/process', entry: 'functions/gcp/process.ts', role: 'process' },
  { name: 'gcp/notify', entry: 'functions/gcp/notify.ts', role: 'notify' },
  { name: 'aws/upload', entry: 'functions/aws/upload.ts', role: 'upload' },
  { name: 'aws/process', entry: 'functions/aws/process.ts', role: 'process' },
  { name: 'aws/notify', entry: 'functions/aws/notify.ts', role: 'notify' },
] as const;

/** What a function does, which decides its cold-start target. */
export type Role = (typeof FUNCTIONS)[number]['role'];

/** Cold-start targets from the performance issue, in ms from process start. */
export const COLD_START_TARGET_MS: Record<Role, number> = { process: 300, upload: 150, notify: 250 };

/** What a row of the bundle table is: a function, or Node's own start-up for reference. */
export type RowRole = Role | 'floor';

/** Cold-start figures of one file over several fresh processes. */
export interface ColdStart {
  /** Process start → handler ready. */
  readyMs: Summary;
  /** The `require()` alone. */
  requireMs: Summary;
  /** Files Node had to resolve and load. */
  modules: number;
}

/** One row of the bundle table: a function's size and cold starts, or why it was not measured. */
export interface BundleResult {
  name: string;
  role: RowRole;
  /** Why it was not measured (entry or bundle missing, load failure). */
  skipped?: string;
  bundleBytes?: number;
  bundle?: ColdStart;
  nodeModules?: ColdStart;
  nodeModulesError?: string;
  bundleError?: string;
}

/** Runs `node scripts/build.mjs` and returns its output (the bundles table), or throws on failure. */
export function buildBundles(root: string): string {
  const r = spawnSync(process.execPath, [join(root, 'scripts', 'build.mjs')], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`scripts/build.mjs failed:\n${r.stderr}`);
  return `${r.stdout}${r.stderr}`;
}

/**
 * Environment a deployed function would have: a valid JWT config (the real authenticator is loaded),
 * a region, a project and a topic of the right shape. No network is used while loading.
 */
function functionEnv(cloud: string): Record<string, string> {
  const common = {
    PIXELPIPE_AUTH_MODE: 'jwt',
    PIXELPIPE_JWKS_URL: 'https://id.example.invalid/.well-known/jwks.json',
    PIXELPIPE_JWT_ISSUER: 'https://id.example.invalid/',
    PIXELPIPE_JWT_AUDIENCE: 'pixelpipe-bench',
    PIXELPIPE_ORIGINALS_BUCKET: 'bench-originals',
    PIXELPIPE_VARIANTS_BUCKET: 'bench-variants',
    PIXELPIPE_LOG_LEVEL: 'warn',
    // Analysis configured, as the target says: the embedded analyzer must cost the cold start nothing (it loads on the first image).
    PIXELPIPE_ANALYZER: 'embedded',
  };
  if (cloud === 'aws') {
    return {
      ...common,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'AKIABENCHMARK000000',
      AWS_SECRET_ACCESS_KEY: 'bench-secret',
      PIXELPIPE_TOPIC: 'arn:aws:sns:us-east-1:123456789012:pixelpipe-events',
    };
  }
  return { ...common, GOOGLE_CLOUD_PROJECT: 'pixelpipe-bench', GCLOUD_PROJECT: 'pixelpipe-bench', PIXELPIPE_TOPIC: 'pixelpipe-events' };
}

/** The script a fresh process runs: require, stop the clock, report. */
const PROBE = `
const file = process.argv[1];
const t0 = performance.now();
const m = require(file);
const t1 = performance.now();
const handler = m.handler ?? m.default ?? Object.values(m).find((v) => typeof v === 'function');
process.stdout.write(JSON.stringify({ ready: t1, require: t1 - t0, modules: Object.keys(require.cache).length, handler: typeof handler }) + '\\n');
process.exit(0);
`;

function once(file: string, env: Record<string, string>, instance: Instance): Promise<{ ready: number; require: number; modules: number }> {
  const cmd = instanceCommand(instance, ['-e', PROBE, file]);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd.command, cmd.args, { env: { ...cmd.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').pop() ?? '';
      if (code === 0 && line.startsWith('{')) resolve(JSON.parse(line) as { ready: number; require: number; modules: number });
      else
        reject(
          new Error(
            (
              err
                .trim()
                .split('\n')
                .find((l) => /Error/.test(l)) ??
              err.trim().split('\n')[0] ??
              `exit ${code}`
            ).slice(0, 200),
          ),
        );
    });
  });
}

/** Cold starts of several files, `runs` fresh processes each, alternating so drift hits all alike. */
async function measure(files: string[], env: Record<string, string>, runs: number, instance: Instance): Promise<Array<ColdStart | Error>> {
  const ready: number[][] = files.map(() => []);
  const req: number[][] = files.map(() => []);
  const modules: number[] = files.map(() => 0);
  const failed: Array<Error | undefined> = files.map(() => undefined);
  for (let i = 0; i < runs; i++) {
    for (let f = 0; f < files.length; f++) {
      if (failed[f]) continue;
      try {
        const r = await once(files[f], env, instance);
        ready[f].push(r.ready);
        req[f].push(r.require);
        modules[f] = r.modules;
      } catch (err) {
        failed[f] = err as Error;
      }
    }
  }
  const s = (v: number[]): Summary => {
    const x = summarize(v);
    return { n: x.n, median: round(x.median), min: round(x.min), max: round(x.max), p25: round(x.p25), p75: round(x.p75) };
  };
  return files.map((_, f) => failed[f] ?? { readyMs: s(ready[f]), requireMs: s(req[f]), modules: modules[f] });
}

/**
 * Measures every function: bundle size, cold start from the bundle, and cold start with node_modules
 * resolution, after a first row for Node's own start-up. Functions whose entry or bundle does not exist
 * yet are reported as skipped.
 */
export async function measureBundles(
  root: string,
  runs: number,
  instance: Instance,
  withNodeModules = true,
  log: (msg: string) => void = () => {},
): Promise<BundleResult[]> {
  const unbundledDir = join(root, 'node_modules', '.cache', 'pixelpipe', 'coldstart');
  mkdirSync(unbundledDir, { recursive: true });
  return [await nodeFloor(unbundledDir, runs, instance), ...(await measureFunctions(root, unbundledDir, runs, instance, withNodeModules, log))];
}

/** The floor: a fresh Node process requiring an empty module. */
export async function nodeFloor(dir: string, runs: number, instance: Instance): Promise<BundleResult> {
  const empty = join(dir, 'empty.js');
  writeFileSync(empty, 'exports.handler = () => {};\n');
  const [r] = await measure([empty], {}, runs, instance);
  return r instanceof Error
    ? { name: 'node (empty module)', role: 'floor', bundleError: r.message }
    : { name: 'node (empty module)', role: 'floor', bundleBytes: 0, bundle: r };
}

async function measureFunctions(
  root: string,
  unbundledDir: string,
  runs: number,
  instance: Instance,
  withNodeModules: boolean,
  log: (msg: string) => void,
): Promise<BundleResult[]> {
  const results: BundleResult[] = [];
  for (const fn of FUNCTIONS) {
    const cloud = fn.name.split('/')[0];
    const env = functionEnv(cloud);
    const result: BundleResult = { name: fn.name, role: fn.role };
    results.push(result);
    if (!existsSync(join(root, fn.entry))) {
      result.skipped = `${fn.entry} does not exist yet`;
      continue;
    }
    const bundle = join(root, 'dist', fn.name, 'index.js');
    if (!existsSync(bundle)) {
      result.skipped = `dist/${fn.name}/index.js was not built`;
      continue;
    }
    result.bundleBytes = statSync(bundle).size;
    log(`cold start ${fn.name}`);
    const unbundled = join(unbundledDir, `${fn.name.replace('/', '-')}.js`);
    const files = [bundle];
    if (withNodeModules) {
      try {
        await build({
          entryPoints: [join(root, fn.entry)],
          outfile: unbundled,
          bundle: true,
          packages: 'external',
          platform: 'node',
          target: 'node20',
          format: 'cjs',
          logLevel: 'silent',
        });
        files.push(unbundled);
      } catch (err) {
        result.nodeModulesError = (err as Error).message.split('\n')[0];
      }
    } else {
      result.nodeModulesError = 'not measured (--quick)';
    }
    const [b, n] = await measure(files, env, runs, instance);
    if (b instanceof Error) result.bundleError = b.message;
    else result.bundle = b;
    if (n instanceof Error) result.nodeModulesError = n.message;
    else if (n) result.nodeModules = n;
  }
  return results;
}
