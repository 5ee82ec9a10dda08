/**
 * The notify function's handler. Trigger: S3 `ObjectCreated:*` on the variants bucket, prefix
 * `manifests/`, suffix `.json`; any other key that reaches it is ignored by the use case.
 */
import { PixelpipeError, TransientError } from '../../shared/errors';
import { notifyCompletion, type NotifyDeps } from '../../shared/usecases/notify-completion';
import { forEachRecord, type BatchResult } from './s3-event';

/**
 * Creates the Lambda handler: one CloudEvent per manifest record. The use case already absorbs
 * permanent data problems (missing or invalid manifest), so whatever it throws (SNS down, a denied
 * publish after a bad deploy) fails the invocation: retried, then parked in the dead-letter queue
 * where it can be redriven once fixed, instead of a completion event silently never being sent.
 */
export function createNotifyHandler(deps: NotifyDeps): (event: unknown) => Promise<BatchResult> {
  return (event) =>
    forEachRecord(event, deps.logger, 'notify', async (ref) => {
      try {
        const outcome = await notifyCompletion(deps, { bucket: ref.bucket, key: ref.key });
        if (outcome.status === 'ignored') return { status: 'ignored', reason: outcome.reason };
        return { status: 'published', imageId: outcome.manifest.id, reason: outcome.manifest.status };
      } catch (err) {
        throw asRetryable(err);
      }
    });
}

/** Publish failures of any kind are worth another attempt (see above); keep the cause for the logs. */
function asRetryable(err: unknown): unknown {
  if (err instanceof PixelpipeError && !err.retryable) return new TransientError('publish_failed', `${err.code}: ${err.message}`, err);
  return err;
}
