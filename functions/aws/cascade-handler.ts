/**
 * The cascade function's handler. Trigger: S3 `ObjectRemoved:*` on the originals bucket, prefix
 * `originals/`; any other key that reaches it is ignored by the use case.
 */
import { withInvocation } from '../../shared/invocation';
import { deleteImage, type DeleteDeps } from '../../shared/usecases/delete-image';
import { lambdaInvocationInit, type LambdaContext, type LambdaEdgeDeps } from './lambda-invocation';
import { forEachRecord, type BatchResult } from './s3-event';

export type CascadeHandlerDeps = DeleteDeps & LambdaEdgeDeps;

/**
 * Creates the Lambda handler: one cascade per removed original, within the invocation's deadline. A
 * transient fault in any record fails the invocation (after the others ran): Lambda retries, and the
 * retry resumes because every delete is idempotent and the event id depends only on the deletion.
 */
export function createCascadeHandler(deps: CascadeHandlerDeps): (event: unknown, context?: LambdaContext) => Promise<BatchResult> {
  return (event, context) =>
    withInvocation(lambdaInvocationInit(deps, context), (inv) =>
      forEachRecord(
        event,
        inv.logger,
        'cascade',
        async (ref) => {
          const outcome = await deleteImage(deps, inv, {
            bucket: ref.bucket,
            key: ref.key,
            generation: ref.generation,
            eventTime: ref.eventTime,
            sequencer: ref.sequencer,
          });
          if (outcome.status === 'ignored') return { status: 'ignored', reason: outcome.reason };
          return { status: 'deleted', imageId: outcome.imageId };
        },
        'ObjectRemoved:',
      ),
    );
}
