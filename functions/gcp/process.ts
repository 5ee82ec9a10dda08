/**
 * GCP entry: `process` CloudEvent function for `google.cloud.storage.object.v1.finalized`.
 * Imports the Storage SDK and sharp only.
 */
import { cloudEvent } from '@google-cloud/functions-framework';
import { systemClock } from '../../shared/clock';
import { loadConfig } from '../../shared/config';
import { isRetryable } from '../../shared/errors';
import { SharpImageProcessor } from '../../shared/image/sharp-image-processor';
import { createLogger } from '../../shared/logger';
import { processImage, type ProcessDeps } from '../../shared/usecases/process-image';
import { parseStorageFinalized, type IncomingCloudEvent } from './cloud-events';
import { loadGcpSettings } from './gcp-settings';
import { GcsObjectStore } from './gcs-object-store';
import { createStorage } from './storage-client';

/** Validates the event, processes the object; rethrows only retryable errors (platform retry). */
export function createProcessHandler(deps: ProcessDeps): (event: IncomingCloudEvent) => Promise<void> {
  return async (event) => {
    const log = deps.logger.child({ eventId: event.id, eventType: event.type });
    const parsed = parseStorageFinalized(event);
    if (!parsed.ok) {
      // Acknowledged: redelivering a malformed or foreign event cannot make it valid.
      (parsed.ignored ? log.info : log.error)('event not processed', { reason: parsed.reason });
      return;
    }
    try {
      const outcome = await processImage(deps, parsed.value);
      log.info(`process outcome: ${outcome.status}`, { status: outcome.status, key: parsed.value.key, ...('reason' in outcome ? { reason: outcome.reason } : {}) });
    } catch (err) {
      if (isRetryable(err)) {
        log.warn('processing failed transiently; asking the platform to retry', { err, key: parsed.value.key });
        throw err;
      }
      log.error('processing failed permanently; event acknowledged', { err, key: parsed.value.key });
    }
  };
}

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
