/**
 * Use case: an original was deleted; remove everything derived from it and tell subscribers.
 *
 * How a delete and a running processor are kept from leaving anything behind, with a processor that
 * cannot delete anything (only this cascade's role may delete derived objects):
 * - every processing attempt first writes its lease (`state/<id>/<generation>.lease`, until its
 *   deadline) and only then reads the original; it releases the lease after its last write;
 * - the cascade runs after the storage service reports the deletion and, while any lease of the image
 *   is live, throws a retryable `image_busy`: the platform redelivers the deletion later (Eventarc's
 *   backoff, Lambda's async retries after 1 and 2 minutes), by when the attempt has finished or its
 *   deadline has passed. Only then does it remove `variants/<id>/`, `state/<id>/` and the manifest;
 * - so an attempt either took its lease before the cascade looked (the cascade waits for it and then
 *   removes everything it wrote), or after: then the original was already gone when the attempt read
 *   it, and the attempt wrote nothing but its lease (released; the state/ lifecycle rule expires it);
 * - the notifier publishes `processed`/`failed` only while the manifest's original still exists, so a
 *   manifest written while the cascade waits is never announced after `deleted`.
 * The wait is bounded: a lease lasts at most one processing timeout, and a deletion older than
 * `config.retry.maxEventAgeSeconds` no longer waits.
 */
import type { PixelpipeConfig } from '../config';
import { buildDeletedEvent, type ImageDeletion } from '../events';
import { callOptions, type CallOptions, type Invocation } from '../invocation';
import { manifestKey, parseOriginalKey } from '../keys';
import type { Clock, EventPublisher, ObjectStore } from '../ports';
import { liveLeaseUntil } from './attempt-ledger';
import { mapLimit, readManifest } from './process-image';
import { PixelpipeError, TransientError } from '../errors';

/** What the cascade needs from the outside world, built once per cold start. */
export interface DeleteDeps {
  /** Lists and deletes derived objects; reads (head) originals. Never deletes an original. */
  store: ObjectStore;
  publisher: EventPublisher;
  clock: Clock;
  config: PixelpipeConfig;
}

/** A deletion as the storage trigger reported it. */
export interface DeletionEvent {
  bucket: string;
  key: string;
  /** The generation that was deleted (GCS generation, S3 version id); absent for unversioned S3. */
  generation?: string;
  /** GCS: set when the deletion is the replacement of the object by a newer generation. */
  overwrittenByGeneration?: string;
  /** When the storage service reported the deletion. */
  eventTime?: Date;
  /**
   * What identifies this deletion when it has no generation (the S3 record's `sequencer`), so a
   * redelivery publishes the same event id.
   */
  sequencer?: string;
}

export type DeleteOutcome =
  | { status: 'ignored'; reason: 'outside_originals' | 'overwritten' | 'original_exists' }
  | { status: 'deleted'; imageId: string; removed: number; eventId: string; messageId: string };

/** Objects deleted at once; listing pages are bounded by {@link LIST_PAGE_SIZE}. */
const DELETE_CONCURRENCY = 8;
const LIST_PAGE_SIZE = 500;
/** An image has a handful of variants and attempt counters; more pages than this is a runaway prefix. */
const MAX_PAGES = 20;

/**
 * Removes the derived objects of a deleted original and publishes `pixelpipe.image.deleted.v1`.
 *
 * Generation-aware: a deletion that GCS reports because the object was overwritten
 * (`overwrittenByGeneration`), or after which an original lives under the key again (a newer
 * generation, or an unversioned S3 key re-uploaded), is ignored: the live generation's processing owns
 * the outputs. Redelivery is harmless: deleting what is already gone is no error, and the event id
 * depends only on the deletion (bucket, key, generation or sequencer).
 *
 * Every call runs within `inv`, ending `config.invocation.reserveMs` before its deadline; a transient
 * fault (or a prefix too large to clear in one invocation) is rethrown for a platform retry, which
 * resumes where this one stopped because the deletes are idempotent.
 */
export async function deleteImage(deps: DeleteDeps, inv: Invocation, event: DeletionEvent): Promise<DeleteOutcome> {
  const { config, store } = deps;
  const ref = event.bucket === config.buckets.originals ? parseOriginalKey(config.layout, event.key) : null;
  if (!ref) return { status: 'ignored', reason: 'outside_originals' };
  const log = inv.logger.child({ imageId: ref.id, bucket: event.bucket, key: event.key, generation: event.generation });
  if (event.overwrittenByGeneration) {
    log.info('deletion is an overwrite; the new generation keeps its outputs', { overwrittenByGeneration: event.overwrittenByGeneration });
    return { status: 'ignored', reason: 'overwritten' };
  }
  const work = callOptions(inv, config.invocation.reserveMs);
  const live = await store.head(event.bucket, event.key, work);
  if (live) {
    log.info('an original lives under the key again; not cascading', { current: live.generation });
    return { status: 'ignored', reason: 'original_exists' };
  }
  const fresh = !event.eventTime || deps.clock.now().getTime() - event.eventTime.getTime() <= config.retry.maxEventAgeSeconds * 1000;
  // Leases hold invocation deadlines: compared on the invocation's clock.
  const busyUntil = fresh ? await liveLeaseUntil(store, config, ref.id, inv.now(), work) : null;
  if (busyUntil !== null) {
    log.info('a processing attempt is running; the deletion is retried after it', { leaseUntil: new Date(busyUntil).toISOString() });
    throw new TransientError('image_busy', `image ${ref.id} is being processed until ${new Date(busyUntil).toISOString()} at the latest`);
  }
  // Read before deleting: the trace id follows the image into its last event.
  const manifest = await readManifest(store, config, ref.id, work);
  if (manifest && event.generation !== undefined && manifest.source.generation !== event.generation) {
    // The original is gone either way; the outputs of whatever generation made them go with it.
    log.info('manifest describes another generation of the deleted original', { manifestGeneration: manifest.source.generation });
  }
  const { layout, buckets } = config;
  let removed = 0;
  for (const prefix of [`${layout.variants}${ref.id}/`, `${layout.state}${ref.id}/`]) {
    removed += await deletePrefix(store, buckets.variants, prefix, work);
  }
  // The manifest goes last: while it exists, a retried cascade still has a record of what to remove.
  await store.delete(buckets.variants, manifestKey(layout, ref.id), work);
  removed += manifest ? 1 : 0;

  const deletedAt = (event.eventTime ?? deps.clock.now()).toISOString();
  const deletion: ImageDeletion = {
    schemaVersion: 1,
    id: ref.id,
    owner: ref.owner,
    status: 'deleted',
    source: { bucket: event.bucket, key: event.key, ...(event.generation !== undefined ? { generation: event.generation } : {}) },
    deletedAt,
    ...(manifest?.traceId ? { traceId: manifest.traceId } : {}),
  };
  const { event: cloudEvent, attributes } = buildDeletedEvent(deletion, config.eventSource, event.generation ?? event.sequencer ?? deletedAt);
  let messageId: string;
  try {
    messageId = await deps.publisher.publish(JSON.stringify(cloudEvent), attributes, work);
  } catch (err) {
    if (err instanceof PixelpipeError && err.retryable) throw err;
    // As for the notifier: a refused publish is a deployment fault; hand the event back for retry/DLQ.
    throw new TransientError('publish_failed', 'the deleted event could not be published', err);
  }
  log.info('image deleted', { removed, eventId: cloudEvent.id, messageId, traceId: manifest?.traceId });
  return { status: 'deleted', imageId: ref.id, removed, eventId: cloudEvent.id, messageId };
}

/** Deletes every object under `prefix`, page by page (bounded), `DELETE_CONCURRENCY` at a time. */
async function deletePrefix(store: ObjectStore, bucket: string, prefix: string, call: CallOptions): Promise<number> {
  let removed = 0;
  for (let page = 0; page < MAX_PAGES; page++) {
    // Always the first page: what this loop deleted is gone, so the next listing starts after it.
    const { items, nextPageToken } = await store.list(bucket, prefix, { pageSize: LIST_PAGE_SIZE, ...call });
    await mapLimit(items, DELETE_CONCURRENCY, (o) => store.delete(bucket, o.key, call));
    removed += items.length;
    if (!nextPageToken || items.length === 0) return removed;
  }
  throw new TransientError('deadline_exceeded', `more than ${MAX_PAGES * LIST_PAGE_SIZE} objects under ${prefix}; continuing on the retry`);
}
