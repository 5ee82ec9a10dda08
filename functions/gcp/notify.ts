/**
 * GCP entry: `notify` CloudEvent function. Wired either to a GCS Pub/Sub notification on the
 * `manifests/` prefix (`messagePublished`) or directly to a storage `finalized` trigger; publishes
 * the completion event. Imports the Storage and Pub/Sub SDKs only (no sharp).
 */
import { cloudEvent } from '@google-cloud/functions-framework';
import { loadConfig } from '../../shared/config';
import { isRetryable } from '../../shared/errors';
import { createLogger } from '../../shared/logger';
import { notifyCompletion, type NotifyDeps } from '../../shared/usecases/notify-completion';
import { parseFinalizeNotification, type IncomingCloudEvent } from './cloud-events';
import { loadGcpSettings } from './gcp-settings';
import { GcsObjectStore } from './gcs-object-store';
import { PubSubEventPublisher } from './pubsub-event-publisher';
import { createPubSub } from './pubsub-client';
import { createStorage } from './storage-client';

/** Validates the event, publishes the completion event; rethrows only retryable errors. */
export function createNotifyHandler(deps: NotifyDeps): (event: IncomingCloudEvent) => Promise<void> {
  return async (event) => {
    const log = deps.logger.child({ eventId: event.id, eventType: event.type });
    const parsed = parseFinalizeNotification(event);
    if (!parsed.ok) {
      (parsed.ignored ? log.info : log.error)('event not handled', { reason: parsed.reason });
      return;
    }
    try {
      const outcome = await notifyCompletion(deps, parsed.value);
      log.info(`notify outcome: ${outcome.status}`, { status: outcome.status, key: parsed.value.key, ...('reason' in outcome ? { reason: outcome.reason } : {}) });
    } catch (err) {
      if (isRetryable(err)) {
        log.warn('notification failed transiently; asking the platform to retry', { err, key: parsed.value.key });
        throw err;
      }
      log.error('notification failed permanently; event acknowledged', { err, key: parsed.value.key });
    }
  };
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
