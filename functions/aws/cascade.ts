/**
 * Lambda entry: S3 `ObjectRemoved:*` on the originals bucket (prefix `originals/`). Removes the image's
 * variants, manifest and state and publishes `pixelpipe.image.deleted.v1` to SNS; never loads sharp.
 */
import { S3Client } from '@aws-sdk/client-s3';
import { SNSClient } from '@aws-sdk/client-sns';
import { systemClock } from '../../shared/clock';
import { loadConfig } from '../../shared/config';
import { createLogger } from '../../shared/logger';
import { createCascadeHandler } from './cascade-handler';
import { S3ObjectStore } from './s3-object-store';
import { SnsEventPublisher } from './sns-event-publisher';

const config = loadConfig(process.env);

/** S3 event handler. */
export const handler = createCascadeHandler({
  store: new S3ObjectStore(new S3Client({ maxAttempts: 1 })),
  // PIXELPIPE_TOPIC holds the topic ARN on AWS; the constructor refuses anything else at cold start.
  publisher: new SnsEventPublisher(new SNSClient({ maxAttempts: 1 }), config.topic),
  clock: systemClock,
  logger: createLogger({ level: config.logLevel, fields: { fn: 'cascade' } }),
  config,
});
