/**
 * The process function's handler, built from injected dependencies so tests run it on fakes.
 * Trigger: S3 `ObjectCreated:*` notifications on the originals bucket, prefix `originals/`.
 */
import { withInvocation } from '../../shared/invocation';
import { processImage, type ProcessDeps } from '../../shared/usecases/process-image';
import { lambdaInvocationInit, type LambdaContext, type LambdaEdgeDeps } from './lambda-invocation';
import { forEachRecord, type BatchResult } from './s3-event';

export type ProcessHandlerDeps = ProcessDeps & LambdaEdgeDeps;

/**
 * Creates the Lambda handler. Every record is processed within the invocation's deadline; bad images
 * end as `failed` manifests and are acknowledged; a transient fault in any record fails the invocation
 * (after the others ran) so Lambda's async retry, and finally the on-failure destination, take over.
 */
export function createProcessHandler(deps: ProcessHandlerDeps): (event: unknown, context?: LambdaContext) => Promise<BatchResult> {
  return (event, context) =>
    withInvocation(lambdaInvocationInit(deps, context), (inv) =>
      forEachRecord(event, inv.logger, 'process', async (ref) => {
        const outcome = await processImage(deps, inv, { bucket: ref.bucket, key: ref.key, generation: ref.generation, eventTime: ref.eventTime });
        if (outcome.status === 'ignored') return { status: 'ignored', reason: outcome.reason };
        return { status: outcome.status, imageId: outcome.manifest.id, ...(outcome.manifest.reason ? { reason: outcome.manifest.reason.code } : {}) };
      }),
    );
}
