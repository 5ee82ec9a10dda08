/**
 * GCP entry: `cascade` CloudEvent function for `google.cloud.storage.object.v1.deleted` on the
 * originals bucket. Removes an image's variants, manifest and state, then publishes
 * `pixelpipe.image.deleted.v1`. Wiring only; the handler is `cascade-handler.ts`. Imports the Storage
 * SDK (listing and deleting) and no image library.
 */
import { cloudEvent } from '@google-cloud/functions-framework';
import { systemClock } from '../../shared/clock';
import { loadConfig } from '../../shared/config';
import { createLogger } from '../../shared/logger';
import { createCascadeHandler } from './cascade-handler';
import { loadGcpSettings } from './gcp-settings';
import { applicationDefaultCredentials, NO_AUTH } from './google-auth';
import { GcsObjectStore } from './gcs-object-store';
import { PubSubEventPublisher, pubsubTopicPath } from './pubsub-event-publisher';
import { createStorage } from './storage-client';

const config = loadConfig(process.env);
const gcp = loadGcpSettings(process.env);
const logger = createLogger({ level: config.logLevel, fields: { fn: 'cascade', ...(gcp.projectId ? { gcpProject: gcp.projectId } : {}) } });
const { PUBSUB_EMULATOR_HOST: pubsubEmulator } = process.env;

/** The deployed handler (also exported for tests). */
export const cascadeHandler = createCascadeHandler({
  store: new GcsObjectStore(createStorage(gcp)),
  publisher: new PubSubEventPublisher(
    pubsubEmulator ? NO_AUTH : applicationDefaultCredentials({ projectId: gcp.projectId }),
    pubsubTopicPath(config.topic, gcp.projectId),
    pubsubEmulator ? { endpoint: `http://${pubsubEmulator}` } : {},
  ),
  clock: systemClock,
  logger,
  config,
});

cloudEvent('cascade', cascadeHandler);
// Also exported under the entry-point name: the bundle carries its own copy of functions-framework, so
// the runtime's framework (the Dockerfile's CLI, Cloud Functions' loader) cannot see the registration
// above and finds the function as the module's `cascade` export instead.
export { cascadeHandler as cascade };
