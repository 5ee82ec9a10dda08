/**
 * GCP entry: `notify` CloudEvent function. Wired either to a GCS Pub/Sub notification on the
 * `manifests/` prefix (`messagePublished`) or directly to a storage `finalized` trigger; publishes
 * the completion event. No storage or Pub/Sub client library: the manifest read and the publish are
 * one REST request each, authorized by `google-auth-library`, which keeps the cold start inside its
 * budget (see google-http.ts). Wiring only; the handler is `notify-handler.ts`.
 */
import { cloudEvent } from '@google-cloud/functions-framework';
import { loadConfig } from '../../shared/config';
import { createLogger } from '../../shared/logger';
import { loadGcpSettings } from './gcp-settings';
import { applicationDefaultCredentials, NO_AUTH, type RequestAuthorizer } from './google-auth';
import { GcsObjectReader } from './gcs-object-reader';
import { createNotifyHandler } from './notify-handler';
import { PubSubEventPublisher, pubsubTopicPath } from './pubsub-event-publisher';

const config = loadConfig(process.env);
const gcp = loadGcpSettings(process.env);
const logger = createLogger({ level: config.logLevel, fields: { fn: 'notify', ...(gcp.projectId ? { gcpProject: gcp.projectId } : {}) } });
// Emulators take no credentials; in production tokens come from the metadata server on first use.
const { STORAGE_EMULATOR_HOST: storageEmulator, PUBSUB_EMULATOR_HOST: pubsubEmulator } = process.env;
const credentials: RequestAuthorizer = storageEmulator && pubsubEmulator ? NO_AUTH : applicationDefaultCredentials({ projectId: gcp.projectId });

/** The deployed handler (also exported for tests). */
export const notifyHandler = createNotifyHandler({
  store: new GcsObjectReader(storageEmulator ? NO_AUTH : credentials, storageEmulator ? { endpoint: storageEmulator } : {}),
  publisher: new PubSubEventPublisher(
    pubsubEmulator ? NO_AUTH : credentials,
    pubsubTopicPath(config.topic, gcp.projectId),
    pubsubEmulator ? { endpoint: `http://${pubsubEmulator}` } : {},
  ),
  logger,
  config,
});

cloudEvent('notify', notifyHandler);
// Also exported under the entry-point name: the bundle carries its own copy of functions-framework, so
// the runtime's framework (the Dockerfile's CLI, Cloud Functions' loader) cannot see the registration
// above and finds the function as the module's `notify` export instead.
export { notifyHandler as notify };
