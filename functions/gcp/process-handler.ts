/**
 * The GCP process function's handler, built from injected dependencies so tests run it on fakes
 * without setting environment variables. Trigger: `google.cloud.storage.object.v1.finalized`.
 */
import type { Logger } from '../../shared/ports';
import { processImage, type ProcessDeps } from '../../shared/usecases/process-image';
import { eventHandler, parseStorageFinalized, type IncomingCloudEvent } from './cloud-events';

export interface ProcessHandlerDeps extends ProcessDeps {
  logger: Logger;
  /** Epoch milliseconds; injectable so tests control the deadline. Defaults to `Date.now`. */
  now?: () => number;
}

/**
 * Validates the event and processes the object within the configured function timeout; rethrows only
 * retryable errors (platform retry).
 */
export function createProcessHandler(deps: ProcessHandlerDeps): (event: IncomingCloudEvent) => Promise<void> {
  return eventHandler({
    what: 'process',
    config: deps.config,
    logger: deps.logger,
    now: deps.now,
    parse: parseStorageFinalized,
    run: (ref, inv) => processImage(deps, inv, { bucket: ref.bucket, key: ref.key, generation: ref.generation, eventTime: ref.eventTime }),
  });
}
