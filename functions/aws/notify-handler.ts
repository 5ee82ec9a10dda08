/**
 * The notify function's handler. Trigger: S3 `ObjectCreated:*` on the variants bucket, prefix
 * `manifests/`, suffix `.json`; any other key that reaches it is ignored by the use case.
 */
import { notifyCompletion, type NotifyDeps } from '../../shared/usecases/notify-completion';
import { forEachRecord, type BatchResult } from './s3-event';

/**
 * Creates the Lambda handler: one CloudEvent per manifest record. The use case absorbs permanent data
 * problems (missing or invalid manifest) and turns every publish failure (SNS down, a denied publish
 * after a bad deploy) into a retryable error, so the invocation fails: retried, then parked in the
 * dead-letter queue where it can be redriven once fixed, instead of an event silently never sent.
 */
export function createNotifyHandler(deps: NotifyDeps): (event: unknown) => Promise<BatchResult> {
  return (event) =>
    forEachRecord(event, deps.logger, 'notify', async (ref) => {
      const outcome = await notifyCompletion(deps, { bucket: ref.bucket, key: ref.key });
      if (outcome.status === 'ignored') return { status: 'ignored', reason: outcome.reason };
      return { status: 'published', imageId: outcome.manifest.id, reason: outcome.manifest.status };
    });
}
