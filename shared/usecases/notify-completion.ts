/**
 * Use case: a manifest was written; publish the completion event.
 */
import type { PixelpipeConfig } from '../config';
import { ObjectNotFoundError, PixelpipeError, TransientError } from '../errors';
import { buildCompletionEvent } from '../events';
import { callOptions, type Invocation } from '../invocation';
import { parseManifestKey } from '../keys';
import { parseManifest, type Manifest } from '../manifest';
import type { EventPublisher, ObjectReader } from '../ports';

/** What notifying needs from the outside world, built once per cold start. */
export interface NotifyDeps {
  /** Only reads: the manifest named by the notification, and a `head` of its original. */
  store: ObjectReader;
  publisher: EventPublisher;
  config: PixelpipeConfig;
}

export type NotifyOutcome =
  | { status: 'ignored'; reason: 'not_a_manifest' | 'manifest_gone' | 'invalid_manifest' | 'original_gone' }
  | { status: 'published'; eventId: string; messageId: string; manifest: Manifest };

/**
 * Reads the manifest, checks that its original still exists (else the image is being deleted and
 * nothing is published), and publishes one CloudEvent with filterable attributes. The event (id, time,
 * body) depends only on the manifest, so a redelivered notification publishes an identical message.
 * Every publishing failure is rethrown as retryable: the platform retries the notifier and finally
 * parks the notification in its dead-letter queue, so no completion is silently lost. Both calls end
 * `config.invocation.reserveMs` before the invocation's deadline, so an outage fails the invocation
 * (and is logged) before the platform kills it.
 */
export async function notifyCompletion(deps: NotifyDeps, inv: Invocation, ref: { bucket: string; key: string }): Promise<NotifyOutcome> {
  const { config } = deps;
  const id = ref.bucket === config.buckets.variants ? parseManifestKey(config.layout, ref.key) : null;
  if (!id) return { status: 'ignored', reason: 'not_a_manifest' };
  const log = inv.logger.child({ imageId: id, bucket: ref.bucket, key: ref.key });
  const call = callOptions(inv, config.invocation.reserveMs);
  let manifest: Manifest;
  try {
    const obj = await deps.store.get(ref.bucket, ref.key, { maxBytes: 1024 * 1024, ...call });
    manifest = parseManifest(JSON.parse(obj.body.toString('utf8')));
  } catch (err) {
    if (err instanceof ObjectNotFoundError) {
      log.warn('manifest disappeared before notification');
      return { status: 'ignored', reason: 'manifest_gone' };
    }
    if (err instanceof PixelpipeError && err.retryable) throw err;
    log.error('manifest is not valid; not publishing', { err, reason: 'invalid_manifest' });
    return { status: 'ignored', reason: 'invalid_manifest' };
  }
  // The notifier's half of the delete race (delete-image.ts): an image whose original is gone has been,
  // or is being, cascaded; announcing it now could put `processed` after `deleted`.
  // A lookup that fails does not hold the event back: a completion must not depend on the originals
  // bucket answering (a poison original's failed event would never be published).
  const original = await deps.store.head(manifest.source.bucket, manifest.source.key, call).catch((err: unknown) => {
    log.info('could not check that the original still exists; publishing anyway', { err });
    return undefined;
  });
  if (original === null) {
    log.info('original is gone; the delete cascade reports this image, not the notifier', { status: manifest.status });
    return { status: 'ignored', reason: 'original_gone' };
  }
  const { event, attributes } = buildCompletionEvent(manifest, config.eventSource, new Date(manifest.createdAt));
  let messageId: string;
  try {
    messageId = await deps.publisher.publish(JSON.stringify(event), attributes, call);
  } catch (err) {
    if (err instanceof PixelpipeError && err.retryable) throw err;
    // A missing topic or permission is a deployment fault, not a property of this image: hand the
    // notification back to the platform (retries, then the dead-letter queue) instead of dropping it.
    log.error('publish refused; leaving the notification to platform retry and the dead-letter queue', { err, reason: 'publish_failed', eventId: event.id });
    throw new TransientError('publish_failed', 'the completion event could not be published', err);
  }
  log.info('completion event published', { eventId: event.id, type: event.type, messageId, traceId: manifest.traceId, durationMs: manifest.durationMs });
  return { status: 'published', eventId: event.id, messageId, manifest };
}
