/**
 * GCP entry: `process` CloudEvent function for `google.cloud.storage.object.v1.finalized`.
 * Wiring only (environment, clients, registration); the handler is `process-handler.ts`. Imports the
 * Storage SDK and sharp only.
 */
import { cloudEvent } from '@google-cloud/functions-framework';
import { systemClock } from '../../shared/clock';
import { loadConfig } from '../../shared/config';
import { SharpImageProcessor } from '../../shared/image/sharp-image-processor';
import { createLogger } from '../../shared/logger';
import { loadGcpSettings } from './gcp-settings';
import { GcsObjectStore } from './gcs-object-store';
import { createProcessHandler } from './process-handler';
import { createStorage } from './storage-client';

const config = loadConfig(process.env);
const gcp = loadGcpSettings(process.env);
const logger = createLogger({ level: config.logLevel, fields: { fn: 'process', ...(gcp.projectId ? { gcpProject: gcp.projectId } : {}) } });

/** The deployed handler (also exported for tests). */
export const processHandler = createProcessHandler({
  store: new GcsObjectStore(createStorage(gcp)),
  processor: new SharpImageProcessor(),
  clock: systemClock,
  logger,
  config,
});

cloudEvent('process', processHandler);
