/**
 * GCP entry: `notify` CloudEvent function. Wired either to a GCS Pub/Sub notification on the
 * `manifests/` prefix (`messagePublished`) or directly to a storage `finalized` trigger; publishes
 * the completion event. Imports the Storage and Pub/Sub SDKs only (no sharp).
 */
import { cloudEvent } from '@google-cloud/functions-framework';
import { loadConfig } from '../../shared/config';
import { createLogger } from '../../shared/logger';
import { notifyCompletion, type NotifyDeps } from '../../shared/usecases/notify-completion';
import { eventHandler, parseFinalizeNotification, type IncomingCloudEvent } from './cloud-events';
import { loadGcpSettings } from './gcp-settings';
import { GcsObjectStore } from './gcs-object-store';
import { PubSubEventPublisher } from './pubsub-event-publisher';
import { createPubSub } from './pubsub-client';
import { createStorage } from './storage-client';

/** Validates the event, publishes the completion event; rethrows only retryable errors. */
export function createNotifyHandler(deps: NotifyDeps): (event: IncomingCloudEvent) => Promise<void> {
  return eventHandler(deps.logger, 'notify', parseFinalizeNotification, (ref) => notifyCompletion(deps, ref));
}

const config = loadConfig(process.env);
const gcp = loadGcpSettings(process.env);
const logger = createLogger({ level: config.logLevel, fields: { fn: 'notify', ...(gcp.projectId ? { gcpProject: gcp.projectId } : {}) } });

/** The deployed handler (also exported for tests). */
export const notifyHandler = createNotifyHandler({
  store: new GcsObjectStore(createStorage(gcp)),
  publisher: new PubSubEventPublisher(createPubSub(gcp), config.topic),
  logger,
  config,
});

cloudEvent('notify', notifyHandler);
