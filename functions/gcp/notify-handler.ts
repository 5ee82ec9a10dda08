/**
 * The GCP notify function's handler, built from injected dependencies so tests run it on fakes
 * without setting environment variables. Trigger: a GCS Pub/Sub notification on the `manifests/`
 * prefix (`messagePublished`) or a storage `finalized` event.
 */
import type { Logger } from '../../shared/ports';
import { notifyCompletion, type NotifyDeps } from '../../shared/usecases/notify-completion';
import { eventHandler, parseFinalizeNotification, type IncomingCloudEvent } from './cloud-events';

export interface NotifyHandlerDeps extends NotifyDeps {
  logger: Logger;
  /** Epoch milliseconds; injectable so tests control the deadline. Defaults to `Date.now`. */
  now?: () => number;
}

/** Validates the event and publishes the completion event within the configured function timeout; rethrows only retryable errors. */
export function createNotifyHandler(deps: NotifyHandlerDeps): (event: IncomingCloudEvent) => Promise<void> {
  return eventHandler({
    what: 'notify',
    config: deps.config,
    logger: deps.logger,
    now: deps.now,
    parse: parseFinalizeNotification,
    run: (ref, inv) => notifyCompletion(deps, inv, { bucket: ref.bucket, key: ref.key }),
  });
}
