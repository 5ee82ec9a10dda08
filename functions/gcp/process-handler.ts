/**
 * The GCP process function's handler, built from injected dependencies so tests run it on fakes
 * without setting environment variables. Trigger: `google.cloud.storage.object.v1.finalized`.
 */
import { processImage, type ProcessDeps } from '../../shared/usecases/process-image';
import { eventHandler, parseStorageFinalized, type IncomingCloudEvent } from './cloud-events';

/** Validates the event, processes the object; rethrows only retryable errors (platform retry). */
export function createProcessHandler(deps: ProcessDeps): (event: IncomingCloudEvent) => Promise<void> {
  return eventHandler(deps.logger, 'process', parseStorageFinalized, (ref) => processImage(deps, ref));
}
