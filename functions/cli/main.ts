/**
 * `pixelpipe` command line. `process` runs the same core as the functions on local files, so users can
 * preview a config and benchmarks can drive the real code path.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, extname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig, type PixelpipeConfig } from '../../shared/config';
import { ConfigError, PixelpipeError } from '../../shared/errors';
import { createLogger, silentLogger } from '../../shared/logger';
import { systemClock, uuidIds } from '../../shared/clock';
import { SharpImageProcessor } from '../../shared/image/sharp-image-processor';
import { createInvocation, newTraceId, withInvocation } from '../../shared/invocation';
import { originalKey } from '../../shared/keys';
import { MemoryObjectStore } from '../../shared/testing/memory-object-store';
import { processImage, type ProcessDeps } from '../../shared/usecases/process-image';
import { createAnalysisStage } from '../../shared/usecases/analyze-image';
import { createEmbeddedAnalyzer } from '../embedded/face-api-image-analyzer';
import { backfill, reprocess, type BackfillReport } from '../../shared/usecases/backfill';
import { pruneVariants, type PruneReport } from '../../shared/usecases/prune-variants';
import { findProfile, PROFILE_METADATA, profileNames } from '../../shared/profiles';
import type { ObjectStore } from '../../shared/ports';
import { quietAwsSdkNodeVersionNotice } from '../local/sdk-notices';
import { createProgressBar } from './progress';

const USAGE = `usage:
  pixelpipe [<command>] --help | -h
  pixelpipe process <files...> [--config file.json] [--profile NAME] [--out dir] [--json] [--verbose]
  pixelpipe backfill --store gcs|s3 [--bucket B] [--prefix originals/…] [--profile NAME] [--concurrency N] [--max N] [--dry-run] [--force | --stale]
  pixelpipe backfill --store gcs|s3 --prune [--apply] [--profile NAME] [--concurrency N] [--max N]
  pixelpipe reprocess --store gcs|s3 (<imageId...> | --failed) [--concurrency N] [--max N]

  backfill/reprocess read PIXELPIPE_* from the environment (or --config) for buckets and layout;
  --endpoint URL points them at a local S3/GCS server.

  --config  JSON object: "variants": [...] and/or PIXELPIPE_* settings (same names as the environment)
  --profile process: the profile to apply (as if pinned at upload); backfill: only images of that profile
  --stale   also reprocess images whose recipe (variants, encoder settings) changed since they were processed
  --prune   delete variant objects whose variant the current recipe no longer has (a dry run: the plan;
            --apply deletes). Run --stale first: images with a stale manifest are left alone.
  --out     write every variant and the manifest under <dir>/<file name>/
  --json    print one JSON manifest per line instead of a summary`;

/** Reads a `--config` file into the environment-shaped record `loadConfig` takes. */
export async function configFromFile(path: string | undefined, env: Record<string, string | undefined>): Promise<PixelpipeConfig> {
  const merged: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(env)) if (k.startsWith('PIXELPIPE_')) merged[k] = v;
  // Local runs never sign uploads, so the JWT settings a deployment needs are irrelevant here.
  merged.PIXELPIPE_AUTH_MODE ??= 'anonymous';
  // The CLI previews what a deploy would make, faces included, without any cloud account.
  merged.PIXELPIPE_ANALYZER ??= 'embedded';
  if (path) {
    const raw = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
    for (const [k, v] of Object.entries(raw)) {
      if (k === 'variants') merged.PIXELPIPE_VARIANTS = JSON.stringify(v);
      else if (k.startsWith('PIXELPIPE_')) merged[k] = typeof v === 'string' ? v : JSON.stringify(v);
      else throw new Error(`${path}: unknown key "${k}" (expected "variants" or PIXELPIPE_* settings)`);
    }
  }
  return loadConfig(merged);
}

/** The analyzer for local runs: the embedded one (the cloud services need an account and a deploy). */
function cliAnalysis(config: PixelpipeConfig): Pick<ProcessDeps, 'analysis'> {
  if (config.analysis.analyzer === 'none') return {};
  if (config.analysis.analyzer !== 'embedded') {
    throw new ConfigError('PIXELPIPE_ANALYZER', `${config.analysis.analyzer} is not available to the CLI; use embedded or none`);
  }
  return { analysis: createAnalysisStage(createEmbeddedAnalyzer(__dirname, { descriptors: config.analysis.faceDescriptors }), config.analysis) };
}

/** Processes local files through the core and returns the manifests (exit code 1 if any failed). */
export async function runProcess(
  files: string[],
  opts: { config?: string; profile?: string; out?: string; json?: boolean; verbose?: boolean },
): Promise<number> {
  const config = await configFromFile(opts.config, process.env);
  if (opts.profile !== undefined && !findProfile(config, opts.profile)) {
    throw new UsageError(`--profile must be one of: ${profileNames(config).join(', ')} (got "${opts.profile}")`);
  }
  const store = new MemoryObjectStore();
  const deps: ProcessDeps = { store, processor: new SharpImageProcessor(), clock: systemClock, config, ...cliAnalysis(config) };
  const logger = opts.verbose ? createLogger({ level: 'debug' }) : silentLogger;
  let failures = 0;
  for (const file of files) {
    const body = await readFile(file);
    const id = uuidIds.newId();
    const key = originalKey(config.layout, 'local', id);
    const info = await store.put(config.buckets.originals, key, body, {
      contentType: 'application/octet-stream',
      // Pinned the way an upload pins it, so the processor resolves the profile exactly as in the cloud.
      metadata: { 'pixelpipe-filename': encodeURIComponent(basename(file)), ...(opts.profile !== undefined ? { [PROFILE_METADATA]: opts.profile } : {}) },
    });
    // Each file gets the deadline a deployed function would have (PIXELPIPE_FUNCTION_TIMEOUT_SECONDS).
    const init = { deadline: Date.now() + config.invocation.timeoutSeconds * 1000, traceId: newTraceId(), logger };
    const outcome = await withInvocation(init, (inv) => processImage(deps, inv, { bucket: info.bucket, key, generation: info.generation }));
    if (outcome.status !== 'processed' && outcome.status !== 'failed') throw new Error(`unexpected outcome ${outcome.status}`);
    const m = outcome.manifest;
    if (m.status === 'failed') failures++;
    if (opts.out) {
      const dir = resolve(opts.out, basename(file, extname(file)));
      await mkdir(dir, { recursive: true });
      for (const v of m.variants) {
        const obj = await store.get(config.buckets.variants, v.key);
        await writeFile(join(dir, basename(v.key)), obj.body);
      }
      await writeFile(join(dir, 'manifest.json'), JSON.stringify(m, null, 2));
    }
    if (opts.json) {
      process.stdout.write(`${JSON.stringify({ file, ...m })}\n`);
    } else if (m.status === 'failed') {
      process.stdout.write(`✗ ${file}: failed (${m.reason?.code}: ${m.reason?.message})\n`);
    } else {
      process.stdout.write(
        `✓ ${file}: ${m.source.width}x${m.source.height} ${m.source.format}, ${m.variants.length} outputs in ${m.durationMs} ms ` +
          `(decode ${m.metrics?.decodeMs} ms, peak RSS ${Math.round((m.metrics?.peakRssBytes ?? 0) / 2 ** 20)} MiB)` +
          `${opts.out ? ` → ${resolve(opts.out, basename(file, extname(file)))}` : ''}\n`,
      );
      for (const v of m.variants)
        process.stdout.write(`    ${v.name.padEnd(14)} ${v.format.padEnd(5)} ${`${v.width}x${v.height}`.padStart(10)} ${String(v.bytes).padStart(9)} B\n`);
    }
  }
  return failures ? 1 : 0;
}

/** Entry point; returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  // Asked for help anywhere before a `--` (so `pixelpipe backfill --store s3 --help` helps too): usage on stdout, success.
  const options = argv.includes('--') ? argv.slice(0, argv.indexOf('--')) : argv;
  if (command === 'help' || options.includes('--help') || options.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  try {
    if (command === 'process') {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: { config: { type: 'string' }, profile: { type: 'string' }, out: { type: 'string' }, json: { type: 'boolean' }, verbose: { type: 'boolean' } },
      });
      if (!positionals.length) throw new UsageError('process needs at least one file');
      return await runProcess(positionals, values);
    }
    if (command === 'backfill' || command === 'reprocess') return await runBulk(command, rest);
    throw new UsageError(command ? `unknown command "${command}"` : 'missing command');
  } catch (err) {
    if (err instanceof UsageError || isParseArgsError(err)) {
      process.stderr.write(`${err.message}\n\n${USAGE}\n`);
      return 2;
    }
    process.stderr.write(`pixelpipe: ${err instanceof PixelpipeError || err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

class UsageError extends Error {}

/** node:util parseArgs' refusals (unknown option, missing value, stray argument) are usage errors too. */
function isParseArgsError(err: unknown): err is Error {
  // By code, not class: node's TypeError comes from another realm under jest.
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_');
}

/** Builds the object store for `--store`; SDKs are loaded only for the one asked for. */
async function createStore(kind: string | undefined, endpoint: string | undefined): Promise<ObjectStore> {
  if (kind === 'gcs') {
    if (endpoint) process.env.STORAGE_EMULATOR_HOST = endpoint;
    const { Storage } = await import('@google-cloud/storage');
    const { GcsObjectStore } = await import('../gcp/gcs-object-store');
    return new GcsObjectStore(
      new Storage({ retryOptions: { autoRetry: false }, ...(process.env.GOOGLE_CLOUD_PROJECT ? { projectId: process.env.GOOGLE_CLOUD_PROJECT } : {}) }),
    );
  }
  if (kind === 's3') {
    quietAwsSdkNodeVersionNotice();
    const { S3Client } = await import('@aws-sdk/client-s3');
    const { S3ObjectStore } = await import('../aws/s3-object-store');
    return new S3ObjectStore(new S3Client({ maxAttempts: 1, ...(endpoint ? { endpoint, forcePathStyle: true } : {}) }));
  }
  throw new UsageError('--store must be gcs or s3');
}

async function runBulk(command: 'backfill' | 'reprocess', args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: command === 'reprocess',
    options: {
      store: { type: 'string' },
      endpoint: { type: 'string' },
      config: { type: 'string' },
      bucket: { type: 'string' },
      prefix: { type: 'string' },
      concurrency: { type: 'string', default: '4' },
      max: { type: 'string', default: '1000' },
      'dry-run': { type: 'boolean' },
      force: { type: 'boolean' },
      stale: { type: 'boolean' },
      prune: { type: 'boolean' },
      apply: { type: 'boolean' },
      profile: { type: 'string' },
      failed: { type: 'boolean' },
      verbose: { type: 'boolean' },
    },
  });
  const concurrency = positiveInt(values.concurrency, '--concurrency');
  const maxImages = positiveInt(values.max, '--max');
  if (command === 'reprocess' && !values.failed === !positionals.length) throw new UsageError('reprocess takes image ids or --failed (not both)');
  if (values.apply && !values.prune) throw new UsageError('--apply only goes with --prune');
  if (values.prune && (values.stale || values.force || values['dry-run'])) {
    throw new UsageError('--prune is a dry run unless --apply; run --stale first, on its own');
  }
  if (values.stale && values.force) throw new UsageError('--force already reprocesses everything; --stale picks the stale images');
  const config = await configFromFile(values.config, process.env);
  if (values.profile !== undefined && !findProfile(config, values.profile)) {
    throw new UsageError(`--profile must be one of: ${profileNames(config).join(', ')} (got "${values.profile}")`);
  }
  const deps: ProcessDeps = {
    store: await createStore(values.store, values.endpoint),
    processor: new SharpImageProcessor(),
    clock: systemClock,
    config,
    ...cliAnalysis(config),
  };
  const logger = createLogger({ level: values.verbose ? 'debug' : 'warn', sink: (l) => process.stderr.write(`${l}\n`) });
  // The run itself has no deadline; each image gets the configured function timeout (see backfill()).
  const run = createInvocation({ deadline: Number.POSITIVE_INFINITY, traceId: newTraceId(), logger });
  const bar = createProgressBar();
  const ac = new AbortController();
  // First Ctrl-C finishes the images in flight (so the next run resumes cleanly); the second exits.
  process.once('SIGINT', () => {
    process.stderr.write('\ninterrupted: finishing images in flight (Ctrl-C again to quit now)\n');
    ac.abort();
    process.once('SIGINT', () => process.exit(130));
  });
  if (values.prune) {
    const prune = (dryRun: boolean) => pruneVariants(deps, run, { dryRun, profile: values.profile, concurrency, maxDeletes: maxImages, signal: ac.signal });
    // The plan first, always; deleting is a second pass that finds the same objects (or fewer, if some went meanwhile).
    const plan = await prune(true);
    process.stdout.write(`${prunePlan(plan)}\n`);
    const report = values.apply && plan.candidates ? await prune(false) : plan;
    run.dispose();
    if (!values.apply) for (const k of plan.keys) process.stdout.write(`${k}\n`);
    process.stdout.write(`${JSON.stringify({ command: 'prune', applied: Boolean(values.apply), ...report, keys: undefined })}\n`);
    if (report.stoppedBy === 'cap') process.stderr.write(`stopped at the cap of ${maxImages} objects; run again to continue\n`);
    return report.errors ? 1 : 0;
  }
  const backfillOptions = {
    bucket: values.bucket,
    prefix: values.prefix,
    concurrency,
    maxImages,
    force: values.force,
    stale: values.stale,
    profile: values.profile,
    signal: ac.signal,
    onProgress: (p: Parameters<typeof bar.update>[0]) => bar.update(p),
  };
  if (command === 'backfill' && values.stale && !values['dry-run']) {
    // Reprocessing for a recipe change can be the whole library: say how much before starting.
    process.stdout.write(`${backfillPlan(await backfill(deps, run, { ...backfillOptions, dryRun: true, onProgress: undefined }))}\n`);
  }
  const report =
    command === 'backfill'
      ? await backfill(deps, run, { ...backfillOptions, dryRun: values['dry-run'] })
      : await reprocess(deps, run, values.failed ? 'failed' : positionals, { concurrency, maxImages, signal: ac.signal, onProgress: (p) => bar.update(p) });
  if (command === 'backfill' && values['dry-run']) process.stdout.write(`${backfillPlan(report)}\n`);
  run.dispose();
  bar.done(report);
  if (values['dry-run']) for (const k of report.keys) process.stdout.write(`${k}\n`);
  process.stdout.write(`${JSON.stringify({ command, ...report, keys: undefined })}\n`);
  if (report.stoppedBy === 'cap') process.stderr.write(`stopped at the cap of ${maxImages} images; run again to continue\n`);
  return report.errors ? 1 : 0;
}

/** `plan: reprocess 5 images (1.2 MiB of originals to read): 3 stale recipe, 2 no manifest`. */
export function backfillPlan(r: BackfillReport): string {
  const why = Object.entries(r.reasons).map(([reason, n]) => `${n} ${reason}`);
  return `plan: process ${r.keys.length} image${r.keys.length === 1 ? '' : 's'} (${formatBytes(r.bytes)} of originals to read)${why.length ? `: ${why.join(', ')}` : ''}`;
}

/** `plan: delete 8 variant objects of 4 images (3.1 KiB); left alone: 2 images with a stale recipe`. */
export function prunePlan(r: PruneReport): string {
  const skipped = Object.entries(r.skippedImages).map(([why, n]) => `${n} (${why})`);
  return (
    `plan: delete ${r.candidates} variant object${r.candidates === 1 ? '' : 's'} of ${r.images} image${r.images === 1 ? '' : 's'} (${formatBytes(r.bytes)})` +
    `${skipped.length ? `; images left alone: ${skipped.join(', ')}` : ''}${r.stoppedBy === 'cap' ? ' (stopped at the cap: more may follow)' : ''}`
  );
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

function positiveInt(v: string | undefined, name: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${name} must be a positive integer`);
  return n;
}

if (require.main === module) {
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
