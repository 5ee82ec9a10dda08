/**
 * Lambda entry: S3 `ObjectCreated` on the originals bucket (prefix `originals/`). Dependencies are
 * built once per cold start; sharp is loaded from the function package (built for the Lambda platform).
 */
import { S3Client } from '@aws-sdk/client-s3';
import { systemClock } from '../../shared/clock';
import { loadConfig, type PixelpipeConfig } from '../../shared/config';
import { ConfigError } from '../../shared/errors';
import { SharpImageProcessor } from '../../shared/image/sharp-image-processor';
import { createLogger } from '../../shared/logger';
import type { ImageAnalyzer } from '../../shared/ports';
import { createAnalysisStage } from '../../shared/usecases/analyze-image';
import { createEmbeddedAnalyzer } from '../embedded/face-api-image-analyzer';
import { createRekognitionAnalyzer } from './analyzers';
import { createProcessHandler } from './process-handler';
import { S3ObjectStore } from './s3-object-store';

const config = loadConfig(process.env);

/** The analyzer `PIXELPIPE_ANALYZER` names, built once per cold start (its model or client loads on first use). */
function createAnalyzer(analysis: PixelpipeConfig['analysis']): ImageAnalyzer | undefined {
  switch (analysis.analyzer) {
    case 'none':
      return undefined;
    case 'embedded':
      return createEmbeddedAnalyzer(__dirname, { descriptors: analysis.faceDescriptors });
    case 'rekognition':
      return createRekognitionAnalyzer(analysis);
    case 'vision':
      throw new ConfigError('PIXELPIPE_ANALYZER', 'vision is a Google Cloud service; on AWS use rekognition or embedded');
  }
}
const analyzer = createAnalyzer(config.analysis);

/** S3 event handler. */
export const handler = createProcessHandler({
  // maxAttempts 1: the adapter retries with jitter and a breaker; SDK retries on top would multiply.
  store: new S3ObjectStore(new S3Client({ maxAttempts: 1 })),
  processor: new SharpImageProcessor(),
  clock: systemClock,
  logger: createLogger({ level: config.logLevel, fields: { fn: 'process' } }),
  config,
  ...(analyzer ? { analysis: createAnalysisStage(analyzer, config.analysis) } : {}),
});
