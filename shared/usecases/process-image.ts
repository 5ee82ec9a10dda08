/**
 * Use case: an object was finalized in storage; turn it into variants and a manifest.
 */
import type { PixelpipeConfig, Profile } from '../config';
import { ImageRejectedError, ObjectNotFoundError, PixelpipeError, type ImageReasonCode } from '../errors';
import { callOptions, remainingMs, type CallOptions, type Invocation } from '../invocation';
import { manifestKey, parseOriginalKey, variantKey } from '../keys';
import { MANIFEST_SCHEMA_VERSION, parseManifest, type Manifest } from '../manifest';
import { profileForOriginal, readCapBytes, recipeOf } from '../profiles';
import type { Clock, ImageProcessor, ObjectInfo, ObjectStore, RenderOptions, RenderResult, RenderedOutput, StoredObject } from '../ports';
import { beginAnalysis, type AnalysisStage, type ImageAnalysis } from './analyze-image';
import { beginAttempt, giveUpOrRethrow, releaseLease, takeLease, type LedgerContext } from './attempt-ledger';

/** What processing needs from the outside world, built once per cold start. */
export interface ProcessDeps {
  store: ObjectStore;
  processor: ImageProcessor;
  clock: Clock;
  config: PixelpipeConfig;
  /** The analyzer stage (see `createAnalysisStage`); absent: no analysis, `faces` crops fall back to `attention`. */
  analysis?: AnalysisStage;
}

/** What the trigger told us; only bucket and key are required (backfill and reprocess know no more). */
export interface ObjectEvent {
  bucket: string;
  key: string;
  /** The generation the event is about; a newer object under the same key supersedes it. */
  generation?: string;
  /** When the platform first emitted the event; old events stop being retried. */
  eventTime?: Date;
  /** Process even when a manifest for this generation exists (reprocess after a config change). */
  force?: boolean;
}

export type ProcessOutcome =
  /** `object_gone`: the original was deleted before it was read. */
  | { status: 'ignored'; reason: 'outside_originals' | 'superseded' | 'object_gone' }
  | { status: 'duplicate'; manifest: Manifest }
  | { status: 'processed' | 'failed'; manifest: Manifest };

const WRITE_CONCURRENCY = 4;

/** One delivery being processed: what `finish` and the ledger need, built once in {@link processImage}. */
interface Run extends LedgerContext {
  processor: ImageProcessor;
  clock: Clock;
  owner: string;
  started: number;
  analysisStage?: AnalysisStage;
  /** The profile pinned in the original's metadata, once it was read. */
  profile?: Profile;
  /** This image's analysis, once rendering began: `finish` records it in the manifest. */
  analysis?: ImageAnalysis;
}

/**
 * Processes one original: guard → dedupe → attempt budget → read once → render → write variants →
 * write the manifest last.
 *
 * Returns normally for everything that must not be retried (ignored keys, duplicates, bad images,
 * which get a `failed` manifest). Throws a retryable error for transient faults, after counting the
 * attempt, so the platform retries; once the attempt budget or event age is exhausted the image ends
 * `failed` with `retries_exhausted` instead of retrying forever.
 *
 * Every storage call runs within `inv`: normal work ends `config.invocation.reserveMs` before the
 * deadline, so a stalled downstream still leaves time to record the attempt (or, on the last allowed
 * attempt, the failed manifest) before the platform ends the invocation.
 */
export async function processImage(deps: ProcessDeps, inv: Invocation, event: ObjectEvent): Promise<ProcessOutcome> {
  const { config, store, clock } = deps;
  const started = clock.now().getTime();
  const ref = event.bucket === config.buckets.originals ? parseOriginalKey(config.layout, event.key) : null;
  // The recursion guard: variants, manifests and state objects never parse as originals.
  if (!ref) return { status: 'ignored', reason: 'outside_originals' };
  const work = callOptions(inv, config.invocation.reserveMs);
  const run: Run = {
    store,
    config,
    inv,
    work,
    processor: deps.processor,
    clock,
    log: inv.logger.child({ imageId: ref.id, bucket: event.bucket, key: event.key, generation: event.generation }),
    imageId: ref.id,
    owner: ref.owner,
    event,
    started,
    analysisStage: deps.analysis,
  };

  const existing = await readManifest(store, config, ref.id, work);
  if (!event.force && existing && existing.source.key === event.key && event.generation !== undefined && existing.source.generation === event.generation) {
    run.log.info('duplicate delivery: manifest already written for this generation', { status: existing.status });
    return { status: 'duplicate', manifest: existing };
  }

  // Before anything else is read or written: a cascade starting from now on waits for this attempt.
  await takeLease(run);
  try {
    return await attemptProcessing(run);
  } finally {
    await releaseLease(run);
  }
}

/** The part of {@link processImage} that runs under the attempt's lease. */
async function attemptProcessing(run: Run): Promise<ProcessOutcome> {
  const { store, config, event, work, inv, started } = run;
  const attempt = await beginAttempt(run, started);
  // Built when needed, so the ledger logs with the trace id learnt from the original.
  const giveUp = (err: unknown): Promise<ProcessOutcome> =>
    giveUpOrRethrow({ ...run, attempt: attempt.number, fail: (rejected: ImageRejectedError) => failLate(run, attempt.number, rejected) }, err);
  if (attempt.exhausted) return failLate(run, attempt.number, attempt.exhausted);

  let original: StoredObject;
  try {
    // The profile (and so its byte cap) arrives with the body: read under the largest cap, check the profile's below.
    original = await store.get(event.bucket, event.key, { maxBytes: readCapBytes(config), ...work });
  } catch (err) {
    if (err instanceof ObjectNotFoundError) {
      run.log.warn('original is gone (deleted or overwritten before processing)');
      return { status: 'ignored', reason: 'object_gone' };
    }
    if (!(err instanceof ImageRejectedError)) return giveUp(err);
    const info = await headQuietly(store, event.bucket, event.key, work);
    return finish(run, attempt.number, info, { rejected: err }).catch(giveUp);
  }
  if (event.generation !== undefined && original.generation !== event.generation) {
    run.log.info('event superseded by a newer generation of the same key', { current: original.generation });
    return { status: 'ignored', reason: 'superseded' };
  }
  const trace = original.metadata['pixelpipe-trace'];
  // The upload's trace id follows the image; the invocation's own id is only a fallback.
  if (trace && trace !== inv.traceId) run.log = run.log.child({ traceId: trace });

  const pinned = profileForOriginal(config, original.metadata);
  if (pinned.unknown)
    run.log.warn('the pinned profile is no longer configured; processing with the default profile', { pinned: pinned.unknown, profile: pinned.profile.name });
  run.profile = pinned.profile;

  try {
    if (original.body.length > run.profile.limits.maxInputBytes) {
      throw new ImageRejectedError(
        'too_many_bytes',
        `object has ${original.body.length} bytes; the limit of profile ${run.profile.name} is ${run.profile.limits.maxInputBytes}`,
      );
    }
    return await render(run, attempt.number, original);
  } catch (err) {
    if (err instanceof ImageRejectedError) return finish(run, attempt.number, original, { rejected: err }).catch(giveUp);
    return giveUp(err);
  }
}

async function render(run: Run, attempt: number, original: StoredObject): Promise<ProcessOutcome> {
  const { config } = run;
  const { variants, limits, analysis } = run.profile!;
  const stage = run.analysisStage && analysis ? { ...run.analysisStage, config: { ...run.analysisStage.config, ...analysis } } : run.analysisStage;
  run.analysis = beginAnalysis(stage, run, variants);
  const options: RenderOptions = {
    webpEffort: config.output.webpEffort,
    avifEffort: config.output.avifEffort,
    placeholder: config.output.placeholder,
    qualityTarget: config.output.qualityTarget,
  };
  let result: RenderResult;
  try {
    result = await run.processor.render(original.body, variants, limits, { ...options, ...run.analysis.renderOptions });
  } catch (err) {
    const background = stage?.config.blockedPlaceholder ?? 'none';
    const source = run.analysis.source;
    if (!(err instanceof ImageRejectedError) || err.code !== 'content_blocked' || background === 'none' || !source || !run.processor.renderBlank) throw err;
    // Blocked: the variant URLs serve a flat stand-in of the right size and format, never the image.
    const blanks = await run.processor.renderBlank(source, variants, background, options);
    const placeholders = await writeOutputs(run, original, blanks, true);
    run.log.info('blocked image: placeholder variants written', { variants: placeholders.length, background });
    return finish(run, attempt, original, { rejected: err, variants: placeholders });
  }
  const entries = await writeOutputs(run, original, result.outputs, false);
  return finish(run, attempt, original, {
    processed: {
      variants: entries,
      placeholder: result.placeholder,
      probe: result.probe,
      metrics: {
        decodeMs: result.metrics.decodeMs,
        encodeMs: result.metrics.encodeMs,
        bytesIn: original.body.length,
        bytesOut: entries.reduce((n, e) => n + e.bytes, 0),
        peakRssBytes: process.resourceUsage().maxRSS * 1024,
      },
    },
  });
}

/**
 * Writes rendered outputs as variants and returns their manifest entries. Placeholders of a blocked image
 * are marked as such and are not cached as immutable: a reviewer may release the image, and reprocessing
 * then writes the real variants under the same keys.
 */
async function writeOutputs(run: Run, original: StoredObject, outputs: RenderedOutput[], placeholder: boolean): Promise<Manifest['variants']> {
  const { config, store } = run;
  return mapLimit(outputs, WRITE_CONCURRENCY, async (o) => {
    const key = variantKey(config.layout, run.imageId, o.variant, o.extension);
    await store.put(config.buckets.variants, key, o.body, {
      contentType: o.contentType,
      cacheControl: placeholder ? 'no-cache' : config.output.cacheControl,
      metadata: {
        'pixelpipe-image': run.imageId,
        'pixelpipe-generation': original.generation,
        ...(placeholder ? { 'pixelpipe-placeholder': 'content_blocked' } : {}),
      },
      ...run.work,
    });
    return {
      name: o.variant,
      format: o.format,
      key,
      contentType: o.contentType,
      width: o.width,
      height: o.height,
      bytes: o.body.length,
      ...(placeholder ? { placeholder: true } : {}),
      ...(o.quality !== undefined ? { quality: o.quality } : {}),
      ...(o.score !== undefined ? { score: o.score } : {}),
      // A placeholder's crop would describe the blank, not the image: left out.
      ...(o.crop && !placeholder ? { crop: o.crop } : {}),
      ...(config.output.publicBaseUrl ? { url: `${config.output.publicBaseUrl.replace(/\/$/, '')}/${key}` } : {}),
    };
  });
}

/**
 * Ends the image `failed` when the budget is spent or the last attempt hit a transient fault: under the
 * remaining time (the reserve), with at most half of it spent looking up the original's metadata.
 */
async function failLate(run: Run, attempt: number, rejected: ImageRejectedError): Promise<ProcessOutcome> {
  const now = run.inv.now();
  const lookup: CallOptions = { signal: run.inv.signal, deadline: now + Math.max(0, remainingMs(run.inv)) / 2 };
  const info = await headQuietly(run.store, run.event.bucket, run.event.key, lookup);
  return finish(run, attempt, info, { rejected }, callOptions(run.inv));
}

type Finish =
  /** `variants`: placeholders written for a blocked image. */
  | { rejected: ImageRejectedError; variants?: Manifest['variants'] }
  | {
      processed: {
        variants: Manifest['variants'];
        placeholder: Manifest['placeholder'];
        probe: { mimeType: string; width: number; height: number; format: string };
        metrics: NonNullable<Manifest['metrics']>;
      };
    };

/** Writes the manifest (the commit marker the notifier waits for) and logs the outcome. */
async function finish(
  run: Run,
  attempts: number,
  object: Omit<StoredObject, 'body'> | undefined,
  outcome: Finish,
  call: CallOptions = run.work,
): Promise<ProcessOutcome> {
  const { config, store, event } = run;
  const now = run.clock.now();
  const filename = object?.metadata['pixelpipe-filename'];
  const profile = run.profile ?? (object ? profileForOriginal(config, object.metadata).profile : undefined);
  const manifest: Manifest = {
    schemaVersion: MANIFEST_SCHEMA_VERSION,
    id: run.imageId,
    owner: run.owner,
    status: 'rejected' in outcome ? 'failed' : 'processed',
    ...('rejected' in outcome ? { reason: { code: outcome.rejected.code as ImageReasonCode, message: outcome.rejected.message } } : {}),
    source: {
      bucket: event.bucket,
      key: event.key,
      generation: object?.generation ?? event.generation ?? 'unknown',
      contentType: 'processed' in outcome ? outcome.processed.probe.mimeType : object?.contentType,
      bytes: object?.size ?? 0,
      ...('processed' in outcome
        ? { width: outcome.processed.probe.width, height: outcome.processed.probe.height, format: outcome.processed.probe.format }
        : {}),
      ...(filename ? { filename: safeDecode(filename) } : {}),
    },
    variants: 'processed' in outcome ? outcome.processed.variants : (outcome.variants ?? []),
    placeholder: 'processed' in outcome ? outcome.processed.placeholder : null,
    bucket: config.buckets.variants,
    ...(object?.metadata['pixelpipe-trace'] ? { traceId: object.metadata['pixelpipe-trace'] } : {}),
    attempts,
    createdAt: now.toISOString(),
    durationMs: Math.max(0, now.getTime() - run.started),
    ...('processed' in outcome ? { metrics: outcome.processed.metrics } : {}),
    ...(run.analysis?.manifest ? { analysis: run.analysis.manifest } : {}),
    ...(profile ? { profile: profile.name } : {}),
    // Only outputs have a recipe: `backfill --stale` regenerates processed images, not refused ones.
    ...(profile && 'processed' in outcome ? { recipe: recipeOf(config, profile) } : {}),
  };
  await store.put(config.buckets.variants, manifestKey(config.layout, run.imageId), Buffer.from(JSON.stringify(manifest, null, 2)), {
    contentType: 'application/json',
    // Manifests change when an image is re-uploaded or reprocessed: never cache them as immutable.
    cacheControl: 'no-cache',
    // The trace id rides along so the notifier can log under it before reading the manifest.
    metadata: { 'pixelpipe-image': run.imageId, 'pixelpipe-status': manifest.status, ...(manifest.traceId ? { 'pixelpipe-trace': manifest.traceId } : {}) },
    ...call,
  });
  const fields = { traceId: manifest.traceId, durationMs: manifest.durationMs, attempts, status: manifest.status };
  if (manifest.status === 'failed') run.log.warn('image failed', { ...fields, reason: manifest.reason?.code, detail: manifest.reason?.message });
  else run.log.info('image processed', { ...fields, ...manifest.metrics, variants: manifest.variants.length });
  return { status: manifest.status, manifest };
}

/** The image's manifest, or `null` when absent or unreadable (transient storage errors are rethrown). */
export async function readManifest(store: ObjectStore, config: PixelpipeConfig, id: string, call: CallOptions = {}): Promise<Manifest | null> {
  try {
    const obj = await store.get(config.buckets.variants, manifestKey(config.layout, id), { maxBytes: 1024 * 1024, ...call });
    return parseManifest(JSON.parse(obj.body.toString('utf8')));
  } catch (err) {
    if (err instanceof ObjectNotFoundError) return null;
    if (err instanceof PixelpipeError && err.retryable) throw err;
    // A manifest we cannot read is as good as none: processing rewrites it.
    return null;
  }
}

/**
 * Metadata for a failed manifest (size, filename, trace). Best effort: giving up must not depend on
 * storage answering, or a poison object whose reads and lookups both fail would be retried forever.
 */
async function headQuietly(store: ObjectStore, bucket: string, key: string, call: CallOptions): Promise<ObjectInfo | undefined> {
  try {
    return (await store.head(bucket, key, call)) ?? undefined;
  } catch {
    return undefined;
  }
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * `Promise.all` over `items` with at most `limit` in flight. After the first failure no new item is
 * started, and the call settles only once the ones in flight have: no write may outlive the
 * invocation that reported the failure (a frozen Lambda would resume it during the next one).
 */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failure: { err: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (!failure && next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i], i);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.err;
  return results;
}
