/**
 * The notify function's handler. Trigger: S3 `ObjectCreated:*` on the variants bucket, prefix
 * `manifests/`, suffix `.json`; any other key that reaches it is ignored by the use case.
 */
import { withInvocation } from '../../shared/invocation';
import { notifyCompletion, type NotifyDeps } from '../../shared/usecases/notify-completion';
import { lambdaInvocationInit, type LambdaContext, type LambdaEdgeDeps } from './lambda-invocation';
import { forEachRecord, type BatchResult } from './s3-event';

export type NotifyHandlerDeps = NotifyDeps & LambdaEdgeDeps;

/**
 * Creates the Lambda handler: one CloudEvent per manifest record, within the invocation's deadline. The
 * use case absorbs permanent data problems (missing or invalid manifest) and turns every publish failure
 * (SNS down, a denied publish after a bad deploy) into a retryable error, so the invocation fails:
 * retried, then parked in the dead-letter queue where it can be redriven once fixed, instead of an event
 * silently never sent.
 */
export function createNotifyHandler(deps: NotifyHandlerDeps): (event: unknown, context?: LambdaContext) => Promise<BatchResult> {
  return (event, context) =>
    withInvocation(lambdaInvocationInit(deps, context), (inv) =>
      forEachRecord(event, inv.logger, 'notify', async (ref) => {
        const outcome = await notifyCompletion(deps, inv, { bucket: ref.bucket, key: ref.key });
        if (outcome.status === 'ignored') return { status: 'ignored', reason: outcome.reason };
        return { status: 'published', imageId: outcome.manifest.id, reason: outcome.manifest.status };
      }),
    );
}
