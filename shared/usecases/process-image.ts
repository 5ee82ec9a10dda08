/**
 * Use case: an object was finalized in storage; turn it into variants and a manifest.
 */
import type { PixelpipeConfig } from '../config';
import { ImageRejectedError, ObjectNotFoundError, PixelpipeError, isRetryable, type ImageReasonCode } from '../errors';
import { attemptsKey, manifestKey, parseOriginalKey, variantKey } from '../keys';
import { MANIFEST_SCHEMA_VERSION, parseManifest, type Manifest } from '../manifest';
import type { Clock, ImageProcessor, Logger, ObjectInfo, ObjectStore, StoredObject } from '../ports';

export interface ProcessDeps {
  store: ObjectStore;
  processor: ImageProcessor;
  clock: Clock;
  logger: Logger;
  config: PixelpipeConfig;
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
  | { status: 'ignored'; reason: 'outside_originals' | 'superseded' | 'object_gone' }
  | { status: 'duplicate'; manifest: Manifest }
  | { status: 'processed' | 'failed'; manifest: Manifest };

const WRITE_CONCURRENCY = 4;

/**
 * Processes one original: guard → dedupe → attempt budget → read once → render → write variants →
 * write the manifest last.
 *
 * Returns normally for everything that must not be retried (ignored keys, duplicates, bad images,
 * which get a `failed` manifest). Throws a retryable error for transient faults, after counting the
 * attempt, so the platform retries; once the attempt budget or event age is exhausted the image ends
 * `failed` with `retries_exhausted` instead of retrying forever.
 */
export async function processImage(deps: ProcessDeps, event: ObjectEvent): Promise<ProcessOutcome> {
  const { config, store, clock } = deps;
  const started = clock.now().getTime();
  const ref = event.bucket === config.buckets.originals ? parseOriginalKey(config.layout, event.key) : null;
  // The recursion guard: variants, manifests and state objects never parse as originals.
  if (!ref) return { status: 'ignored', reason: 'outside_originals' };
  const log = deps.logger.child({ imageId: ref.id, bucket: event.bucket, key: event.key, generation: event.generation });

  const existing = await readManifest(store, config, ref.id);
  if (!event.force && existing && existing.source.key === event.key && event.generation !== undefined && existing.source.generation === event.generation) {
    log.info('duplicate delivery: manifest already written for this generation', { status: existing.status });
    return { status: 'duplicate', manifest: existing };
  }

  let attempts = 1;
  if (event.generation !== undefined) {
    attempts = (await readAttempts(store, config, ref.id, event.generation)) + 1;
    const ageSeconds = event.eventTime ? (started - event.eventTime.getTime()) / 1000 : 0;
    if (attempts > config.retry.maxAttempts || ageSeconds > config.retry.maxEventAgeSeconds) {
      const info = await headQuietly(store, event.bucket, event.key);
      return finish(deps, log, ref, event, info, started, attempts, {
        rejected: new ImageRejectedError('retries_exhausted', `gave up after ${attempts - 1} attempts over ${Math.round(ageSeconds)} s`),
      });
    }
  }

  let original: StoredObject;
  try {
    original = await store.get(event.bucket, event.key, { maxBytes: config.limits.maxInputBytes });
  } catch (err) {
    if (err instanceof ObjectNotFoundError) {
      log.warn('original is gone (deleted or overwritten before processing)');
      return { status: 'ignored', reason: 'object_gone' };
    }
    if (err instanceof ImageRejectedError) {
      const info = await headQuietly(store, event.bucket, event.key);
      return finish(deps, log, ref, event, info, started, attempts, { rejected: err });
    }
    return giveUpOrRethrow(deps, log, ref, event, started, attempts, err);
  }
  if (event.generation !== undefined && original.generation !== event.generation) {
    log.info('event superseded by a newer generation of the same key', { current: original.generation });
    return { status: 'ignored', reason: 'superseded' };
  }

  try {
    const result = await deps.processor.render(original.body, config.variants, config.limits, {
      webpEffort: config.output.webpEffort,
      avifEffort: config.output.avifEffort,
      placeholder: config.output.placeholder,
    });
    const entries = await mapLimit(result.outputs, WRITE_CONCURRENCY, async (o) => {
      const key = variantKey(config.layout, ref.id, o.variant, o.extension);
      await store.put(config.buckets.variants, key, o.body, {
        contentType: o.contentType,
        cacheControl: config.output.cacheControl,
        metadata: { 'pixelpipe-image': ref.id, 'pixelpipe-generation': original.generation },
      });
      return {
        name: o.variant,
        format: o.format,
        key,
        contentType: o.contentType,
        width: o.width,
        height: o.height,
        bytes: o.body.length,
        ...(config.output.publicBaseUrl ? { url: `${config.output.publicBaseUrl.replace(/\/$/, '')}/${key}` } : {}),
      };
    });
    return finish(deps, log, ref, event, original, started, attempts, {
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
  } catch (err) {
    if (err instanceof ImageRejectedError) return finish(deps, log, ref, event, original, started, attempts, { rejected: err });
    return giveUpOrRethrow(deps, log, ref, event, started, attempts, err);
  }
}

type Finish =
  | { rejected: ImageRejectedError }
  | {
      processed: {
        variants: Manifest['variants'];
        placeholder: Manifest['placeholder'];
        probe: { mimeType: string; width: number; height: number; format: string };
        metrics: NonNullable<Manifest['metrics']>;
      };
    };

async function finish(
  deps: ProcessDeps,
  log: Logger,
  ref: { owner: string; id: string },
  event: ObjectEvent,
  object: Omit<StoredObject, 'body'> | undefined,
  started: number,
  attempts: number,
  outcome: Finish,
): Promise<ProcessOutcome> {
  const { config, store, clock } = deps;
  const now = clock.now();
  const filename = object?.metadata['pixelpipe-filename'];
  const manifest: Manifest = {
    schemaVersion: MANIFEST_SCHEMA_VERSION,
    id: ref.id,
    owner: ref.owner,
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
    variants: 'processed' in outcome ? outcome.processed.variants : [],
    placeholder: 'processed' in outcome ? outcome.processed.placeholder : null,
    bucket: config.buckets.variants,
    ...(object?.metadata['pixelpipe-trace'] ? { traceId: object.metadata['pixelpipe-trace'] } : {}),
    attempts,
    createdAt: now.toISOString(),
    durationMs: Math.max(0, now.getTime() - started),
    ...('processed' in outcome ? { metrics: outcome.processed.metrics } : {}),
  };
  await store.put(config.buckets.variants, manifestKey(config.layout, ref.id), Buffer.from(JSON.stringify(manifest, null, 2)), {
    contentType: 'application/json',
    // Manifests change when an image is re-uploaded or reprocessed: never cache them as immutable.
    cacheControl: 'no-cache',
    metadata: { 'pixelpipe-image': ref.id, 'pixelpipe-status': manifest.status },
  });
  const fields = { traceId: manifest.traceId, durationMs: manifest.durationMs, attempts, status: manifest.status };
  if (manifest.status === 'failed') log.warn('image failed', { ...fields, reason: manifest.reason?.code, detail: manifest.reason?.message });
  else log.info('image processed', { ...fields, ...manifest.metrics, variants: manifest.variants.length });
  return { status: manifest.status, manifest };
}

/**
 * A transient fault: on the last allowed attempt the image ends `failed` (retries_exhausted) now, so the
 * platform's final retry leaves a manifest and a failure event behind; otherwise the attempt is counted
 * and the error rethrown for a platform retry.
 */
async function giveUpOrRethrow(
  deps: ProcessDeps,
  log: Logger,
  ref: { owner: string; id: string },
  event: ObjectEvent,
  started: number,
  attempts: number,
  err: unknown,
): Promise<ProcessOutcome> {
  if (isRetryable(err) && event.generation !== undefined && attempts >= deps.config.retry.maxAttempts) {
    try {
      const info = await headQuietly(deps.store, event.bucket, event.key);
      return await finish(deps, log, ref, event, info, started, attempts, {
        rejected: new ImageRejectedError('retries_exhausted', `gave up after ${attempts} attempts: ${err instanceof Error ? err.message : String(err)}`),
      });
    } catch {
      // Storage is still down: the next delivery finds the budget spent and writes the manifest then.
    }
  }
  throw await countAttempt(deps, log, ref.id, event, attempts, err);
}

async function countAttempt(deps: ProcessDeps, log: Logger, id: string, event: ObjectEvent, attempts: number, err: unknown): Promise<unknown> {
  log.error('transient failure; the platform will retry', {
    err,
    attempt: attempts,
    reason: err instanceof PixelpipeError ? err.code : 'internal',
    retryable: isRetryable(err),
  });
  if (event.generation !== undefined) {
    try {
      await deps.store.put(deps.config.buckets.variants, attemptsKey(deps.config.layout, id, event.generation), Buffer.from(String(attempts)), {
        contentType: 'text/plain',
        cacheControl: 'no-store',
      });
    } catch (counterErr) {
      // Counting is best effort: the event-age cap still ends a poison object if storage stays down.
      log.warn('could not record the attempt', { err: counterErr });
    }
  }
  return err;
}

/** The image's manifest, or `null` when absent or unreadable (transient storage errors are rethrown). */
export async function readManifest(store: ObjectStore, config: PixelpipeConfig, id: string): Promise<Manifest | null> {
  try {
    const obj = await store.get(config.buckets.variants, manifestKey(config.layout, id), { maxBytes: 1024 * 1024 });
    return parseManifest(JSON.parse(obj.body.toString('utf8')));
  } catch (err) {
    if (err instanceof ObjectNotFoundError) return null;
    if (err instanceof PixelpipeError && err.retryable) throw err;
    // A manifest we cannot read is as good as none: processing rewrites it.
    return null;
  }
}

async function readAttempts(store: ObjectStore, config: PixelpipeConfig, id: string, generation: string): Promise<number> {
  try {
    const obj = await store.get(config.buckets.variants, attemptsKey(config.layout, id, generation), { maxBytes: 64 });
    const n = Number.parseInt(obj.body.toString('utf8'), 10);
    return Number.isFinite(n) && n >= 0 ? n : 0;
  } catch (err) {
    if (err instanceof ObjectNotFoundError) return 0;
    throw err;
  }
}

/**
 * Metadata for a failed manifest (size, filename, trace). Best effort: giving up must not depend on
 * storage answering, or a poison object whose reads and lookups both fail would be retried forever.
 */
async function headQuietly(store: ObjectStore, bucket: string, key: string): Promise<ObjectInfo | undefined> {
  try {
    return (await store.head(bucket, key)) ?? undefined;
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
