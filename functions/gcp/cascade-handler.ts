/**
 * The GCP cascade function's handler, built from injected dependencies so tests run it on fakes
 * without setting environment variables. Trigger: `google.cloud.storage.object.v1.deleted` on the
 * originals bucket (Eventarc), or a GCS Pub/Sub notification with `eventType` `OBJECT_DELETE`.
 */
import type { Logger } from '../../shared/ports';
import { deleteImage, type DeleteDeps } from '../../shared/usecases/delete-image';
import { eventHandler, parseDeletion, type IncomingCloudEvent } from './cloud-events';

export interface CascadeHandlerDeps extends DeleteDeps {
  logger: Logger;
  /** Epoch milliseconds; injectable so tests control the deadline. Defaults to `Date.now`. */
  now?: () => number;
}

/** Validates the deletion and runs the cascade within the configured function timeout; rethrows only retryable errors. */
export function createCascadeHandler(deps: CascadeHandlerDeps): (event: IncomingCloudEvent) => Promise<void> {
  return eventHandler({
    what: 'cascade',
    config: deps.config,
    logger: deps.logger,
    now: deps.now,
    parse: parseDeletion,
    run: (ref, inv) =>
      deleteImage(deps, inv, {
        bucket: ref.bucket,
        key: ref.key,
        generation: ref.generation,
        eventTime: ref.eventTime,
        overwrittenByGeneration: ref.overwrittenByGeneration,
      }),
  });
}
