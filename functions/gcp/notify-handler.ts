/**
 * The GCP notify function's handler, built from injected dependencies so tests run it on fakes
 * without setting environment variables. Trigger: a GCS Pub/Sub notification on the `manifests/`
 * prefix (`messagePublished`) or a storage `finalized` event.
 */
import { notifyCompletion, type NotifyDeps } from '../../shared/usecases/notify-completion';
import { eventHandler, parseFinalizeNotification, type IncomingCloudEvent } from './cloud-events';

/** Validates the event, publishes the completion event; rethrows only retryable errors. */
export function createNotifyHandler(deps: NotifyDeps): (event: IncomingCloudEvent) => Promise<void> {
  return eventHandler(deps.logger, 'notify', parseFinalizeNotification, (ref) => notifyCompletion(deps, ref));
}
