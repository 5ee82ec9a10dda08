/**
 * Lambda entry: S3 `ObjectCreated` on the originals bucket (prefix `originals/`). Dependencies are
 * built once per cold start; sharp is loaded from the function package (built for the Lambda platform).
 */
import { S3Client } from '@aws-sdk/client-s3';
import { systemClock } from '../../shared/clock';
import { loadConfig } from '../../shared/config';
import { SharpImageProcessor } from '../../shared/image/sharp-image-processor';
import { createLogger } from '../../shared/logger';
import { createProcessHandler } from './process-handler';
import { S3ObjectStore } from './s3-object-store';

const config = loadConfig(process.env);

/** S3 event handler. */
export const handler = createProcessHandler({
  // maxAttempts 1: the adapter retries with jitter and a breaker; SDK retries on top would multiply.
  store: new S3ObjectStore(new S3Client({ maxAttempts: 1 })),
  processor: new SharpImageProcessor(),
  clock: systemClock,
  logger: createLogger({ level: config.logLevel, fields: { fn: 'process' } }),
  config,
});
