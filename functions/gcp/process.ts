/**
 * GCP entry: `process` CloudEvent function for `google.cloud.storage.object.v1.finalized`.
 * Wiring only (environment, clients, registration); the handler is `process-handler.ts`. Imports the
 * Storage SDK and sharp only.
 */
import { cloudEvent } from '@google-cloud/functions-framework';
import { systemClock } from '../../shared/clock';
import { loadConfig, type PixelpipeConfig } from '../../shared/config';
import { ConfigError } from '../../shared/errors';
import { SharpImageProcessor } from '../../shared/image/sharp-image-processor';
import { createLogger } from '../../shared/logger';
import type { ImageAnalyzer } from '../../shared/ports';
import { createAnalysisStage } from '../../shared/usecases/analyze-image';
import { createEmbeddedAnalyzer } from '../embedded/face-api-image-analyzer';
import { createVisionAnalyzer } from './analyzers';
import { loadGcpSettings } from './gcp-settings';
import { GcsObjectStore } from './gcs-object-store';
import { createProcessHandler } from './process-handler';
import { createStorage } from './storage-client';

const config = loadConfig(process.env);
const gcp = loadGcpSettings(process.env);
const logger = createLogger({ level: config.logLevel, fields: { fn: 'process', ...(gcp.projectId ? { gcpProject: gcp.projectId } : {}) } });

/** The analyzer `PIXELPIPE_ANALYZER` names, built once per cold start (its model or client loads on first use). */
function createAnalyzer(analysis: PixelpipeConfig['analysis']): ImageAnalyzer | undefined {
  switch (analysis.analyzer) {
    case 'none':
      return undefined;
    case 'embedded':
      return createEmbeddedAnalyzer(__dirname, { descriptors: analysis.faceDescriptors });
    case 'vision':
      return createVisionAnalyzer(gcp, gcp.visionEndpoint ? { endpoint: gcp.visionEndpoint } : {});
    case 'rekognition':
      throw new ConfigError('PIXELPIPE_ANALYZER', 'rekognition is an AWS service; on GCP use vision or embedded');
  }
}
const analyzer = createAnalyzer(config.analysis);

/** The deployed handler (also exported for tests). */
export const processHandler = createProcessHandler({
  store: new GcsObjectStore(createStorage(gcp)),
  processor: new SharpImageProcessor(),
  clock: systemClock,
  logger,
  config,
  ...(analyzer ? { analysis: createAnalysisStage(analyzer, config.analysis) } : {}),
});

cloudEvent('process', processHandler);
// Also exported under the entry-point name: the bundle carries its own copy of functions-framework, so
// the runtime's framework (the Dockerfile's CLI, Cloud Functions' loader) cannot see the registration
// above and finds the function as the module's `process` export instead.
export { processHandler as process };
