/**
 * Use cases: backfill (process originals that have no current manifest) and reprocess (re-run chosen
 * or failed images after a fix).
 *
 * Loop-proof by construction, because the Firebase extension's backfill once re-processed its own
 * outputs until a user's bill ran into thousands of dollars:
 * - it only lists the originals prefix, and `processImage` only accepts keys that parse as originals,
 *   so nothing it writes (variants/, manifests/, state/) can ever become input, even in one bucket;
 * - each key is taken at most once per run, and a run stops at a hard cap of processed images;
 * - "done" is decided by the manifest of the object's current generation, so a rerun does nothing.
 */
import { PixelpipeError } from '../errors';
import { callOptions, childInvocation, type Invocation } from '../invocation';
import { attemptsKey, parseOriginalKey } from '../keys';
import type { PixelpipeConfig, Profile } from '../config';
import type { Manifest } from '../manifest';
import { defaultProfile, findProfile, profileForOriginal, recipeOf } from '../profiles';
import type { ObjectInfo } from '../ports';
import { processImage, readManifest as readStoredManifest, type ProcessDeps, type ProcessOutcome } from './process-image';

export interface BackfillOptions {
  /** Defaults to the configured originals bucket. */
  bucket?: string;
  /** Must lie inside the originals prefix; defaults to it. */
  prefix?: string;
  concurrency: number;
  /** Stop after this many images were processed in this run (the runaway-cost guard). */
  maxImages: number;
  /** Only report what would be processed. */
  dryRun?: boolean;
  /** Process even originals whose manifest is current. */
  force?: boolean;
  /**
   * Also reprocess images whose manifest is for the current generation but whose recipe fingerprint
   * differs from the current recipe of their profile (a processed manifest without one counts as stale).
   */
  stale?: boolean;
  /** Only images of this profile (from the manifest, or the original's pinned metadata when it has none). */
  profile?: string;
  /** Stops taking new images; the ones in flight finish (cancelling them is the run invocation's signal). */
  signal?: AbortSignal;
  onProgress?: (p: BackfillProgress) => void;
}

export interface BackfillProgress {
  listed: number;
  skipped: number;
  processed: number;
  failed: number;
  errors: number;
  /** Candidates found so far that still wait (grows while listing continues). */
  queued: number;
}

export interface BackfillReport extends BackfillProgress {
  stoppedBy: 'done' | 'cap' | 'aborted';
  /** Keys that would be processed (dry run) or were processed. */
  keys: string[];
  /** Stored size of those originals: what the run reads. */
  bytes: number;
  /** Why each of `keys` needed work (`no manifest`, `stale recipe`, …), counted. */
  reasons: Record<string, number>;
}

/** Why an original needs work, or `null` when its manifest is current (or it is not of the profile asked for). */
async function needsWork(deps: ProcessDeps, inv: Invocation, obj: ObjectInfo, opts: BackfillOptions): Promise<string | null> {
  const ref = parseOriginalKey(deps.config.layout, obj.key);
  if (!ref) return null;
  if (opts.force && !opts.profile) return 'forced';
  const m = await readStoredManifest(deps.store, deps.config, ref.id, callOptions(inv));
  const current = m !== null && m.source.key === obj.key && m.source.generation === obj.generation;
  if (opts.profile) {
    // A current manifest knows the profile; otherwise the original's pinned metadata decides (one lookup).
    const name = current ? manifestProfile(deps.config, m).name : await pinnedProfile(deps, inv, obj);
    if (name !== opts.profile) return null;
  }
  if (opts.force) return 'forced';
  if (!m) return 'no manifest';
  if (!current) return 'manifest is for another generation';
  if (opts.stale && isStale(deps.config, m)) return 'stale recipe';
  return null;
}

/** The profile a manifest's image is processed with now: its recorded one, or the default when that is gone. */
export function manifestProfile(config: PixelpipeConfig, m: Manifest): Profile {
  return findProfile(config, m.profile ?? config.defaultProfile) ?? defaultProfile(config);
}

/** A processed manifest whose recipe is not the current recipe of its profile (failed ones have no outputs to refresh). */
export function isStale(config: PixelpipeConfig, m: Manifest): boolean {
  return m.status === 'processed' && m.recipe !== recipeOf(config, manifestProfile(config, m));
}

async function pinnedProfile(deps: ProcessDeps, inv: Invocation, obj: ObjectInfo): Promise<string | undefined> {
  // Listings carry no user metadata on S3: ask for it.
  const info = Object.keys(obj.metadata).length ? obj : await deps.store.head(obj.bucket, obj.key, callOptions(inv));
  return info ? profileForOriginal(deps.config, info.metadata).profile.name : undefined;
}

/**
 * Runs one image of a run under its own deadline (`config.invocation.timeoutSeconds`, as a function
 * invocation would have), within the run's.
 */
function processOne(deps: ProcessDeps, run: Invocation, event: Parameters<typeof processImage>[2]): Promise<ProcessOutcome> {
  const inv = childInvocation(run, { timeoutMs: deps.config.invocation.timeoutSeconds * 1000 });
  return processImage(deps, inv, event).finally(() => inv.dispose());
}

/**
 * Processes every original under the prefix that has no manifest for its current generation. `inv` is
 * the whole run's context (its signal cancels the images in flight); each image gets its own deadline.
 */
export async function backfill(deps: ProcessDeps, inv: Invocation, opts: BackfillOptions): Promise<BackfillReport> {
  const { config } = deps;
  const bucket = opts.bucket ?? config.buckets.originals;
  const prefix = opts.prefix ?? config.layout.originals;
  if (bucket !== config.buckets.originals) {
    throw new PixelpipeError('invalid_config', `backfill reads only the originals bucket (${config.buckets.originals}), not ${bucket}`, { retryable: false });
  }
  if (!prefix.startsWith(config.layout.originals)) {
    throw new PixelpipeError('invalid_config', `the prefix must lie inside ${config.layout.originals}`, { retryable: false });
  }
  if (opts.profile !== undefined && !findProfile(config, opts.profile)) {
    throw new PixelpipeError('invalid_config', `no profile "${opts.profile}" is configured`, { retryable: false });
  }
  const p: BackfillProgress = { listed: 0, skipped: 0, processed: 0, failed: 0, errors: 0, queued: 0 };
  const seen = new Set<string>();
  const keys: string[] = [];
  let bytes = 0;
  const reasons: Record<string, number> = {};
  let stoppedBy: BackfillReport['stoppedBy'] = 'done';
  const report = () => opts.onProgress?.({ ...p });
  const stop = (): boolean => {
    if (opts.signal?.aborted) stoppedBy = 'aborted';
    else if (keys.length >= opts.maxImages) stoppedBy = 'cap';
    else return false;
    return true;
  };

  const inFlight = new Set<Promise<void>>();
  const run = async (obj: ObjectInfo, force: boolean): Promise<void> => {
    try {
      tally(p, await processOne(deps, inv, { bucket, key: obj.key, generation: obj.generation, force }));
    } catch (err) {
      // A transient fault on one image must not abort the run; the next run picks it up again.
      p.errors++;
      inv.logger.error('backfill: image failed transiently', { key: obj.key, err, reason: err instanceof PixelpipeError ? err.code : 'internal' });
    } finally {
      p.queued--;
      report();
    }
  };

  let pageToken: string | undefined;
  listing: do {
    const page = await deps.store.list(bucket, prefix, { pageToken, pageSize: 500, ...callOptions(inv) });
    pageToken = page.nextPageToken;
    for (const obj of page.items) {
      if (stop()) break listing;
      if (seen.has(obj.key)) continue;
      seen.add(obj.key);
      p.listed++;
      const reason = await needsWork(deps, inv, obj, opts);
      if (!reason) {
        p.skipped++;
        report();
        continue;
      }
      keys.push(obj.key);
      bytes += obj.size;
      reasons[reason] = (reasons[reason] ?? 0) + 1;
      if (opts.dryRun) continue;
      p.queued++;
      // A stale image has a manifest for this generation: only `force` gets it past the duplicate check.
      const task = run(obj, opts.force === true || reason === 'stale recipe').finally(() => inFlight.delete(task));
      inFlight.add(task);
      if (inFlight.size >= opts.concurrency) await Promise.race(inFlight);
    }
    report();
  } while (pageToken);
  await Promise.all(inFlight);
  report();
  return { ...p, stoppedBy, keys, bytes, reasons };
}

export interface ReprocessOptions {
  concurrency: number;
  maxImages: number;
  /** Stops taking new images; the ones in flight finish. */
  signal?: AbortSignal;
  onProgress?: (p: BackfillProgress) => void;
}

/**
 * Re-runs images after a fix: the given ids, or (ids omitted) every image whose manifest is `failed`.
 * Clears each image's attempt counter first, so images that exhausted their retries get a fresh budget.
 * `inv` is the whole run's context, as for {@link backfill}.
 */
export async function reprocess(deps: ProcessDeps, inv: Invocation, ids: string[] | 'failed', opts: ReprocessOptions): Promise<BackfillReport> {
  const { config, store } = deps;
  const call = callOptions(inv);
  const targets: Manifest[] = [];
  if (ids === 'failed') {
    let pageToken: string | undefined;
    do {
      const page = await store.list(config.buckets.variants, config.layout.manifests, { pageToken, pageSize: 500, ...call });
      pageToken = page.nextPageToken;
      for (const item of page.items) {
        const id = item.key.slice(config.layout.manifests.length, -'.json'.length);
        const m = await readStoredManifest(deps.store, deps.config, id, call);
        if (m?.status === 'failed') targets.push(m);
      }
    } while (pageToken && targets.length < opts.maxImages);
  } else {
    for (const id of ids) {
      const m = await readStoredManifest(deps.store, deps.config, id, call);
      if (!m) throw new PixelpipeError('not_found_object', `no manifest for image ${id}`, { retryable: false });
      targets.push(m);
    }
  }
  const p: BackfillProgress = { listed: targets.length, skipped: 0, processed: 0, failed: 0, errors: 0, queued: 0 };
  const keys: string[] = [];
  let stoppedBy: BackfillReport['stoppedBy'] = 'done';
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < targets.length) {
      if (opts.signal?.aborted) return void (stoppedBy = 'aborted');
      if (keys.length >= opts.maxImages) return void (stoppedBy = 'cap');
      const m = targets[next++];
      keys.push(m.source.key);
      try {
        const current = await store.head(m.source.bucket, m.source.key, call);
        if (!current) {
          p.skipped++;
          continue;
        }
        await store.delete(config.buckets.variants, attemptsKey(config.layout, m.id, current.generation), call);
        tally(p, await processOne(deps, inv, { bucket: m.source.bucket, key: m.source.key, generation: current.generation, force: true }));
      } catch (err) {
        p.errors++;
        inv.logger.error('reprocess: image failed transiently', { imageId: m.id, err, reason: err instanceof PixelpipeError ? err.code : 'internal' });
      } finally {
        opts.onProgress?.({ ...p });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.concurrency, targets.length)) }, worker));
  return { ...p, stoppedBy, keys, bytes: targets.reduce((n, m) => n + m.source.bytes, 0), reasons: { requested: targets.length } };
}

/** Counts one outcome: ignored and duplicate ones count as skipped. */
function tally(p: BackfillProgress, out: ProcessOutcome): void {
  if (out.status === 'processed') p.processed++;
  else if (out.status === 'failed') p.failed++;
  else p.skipped++;
}
