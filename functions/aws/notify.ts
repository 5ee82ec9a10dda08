/**
 * Lambda entry: S3 `ObjectCreated` on the variants bucket (prefix `manifests/`, suffix `.json`).
 * Publishes the completion CloudEvent to SNS; never loads sharp.
 */
import { S3Client } from '@aws-sdk/client-s3';
import { SNSClient } from '@aws-sdk/client-sns';
import { loadConfig } from '../../shared/config';
import { createLogger } from '../../shared/logger';
import { createNotifyHandler } from './notify-handler';
import { S3ObjectStore } from './s3-object-store';
import { SnsEventPublisher } from './sns-event-publisher';

const config = loadConfig(process.env);

/** S3 event handler. */
export const handler = createNotifyHandler({
  store: new S3ObjectStore(new S3Client({ maxAttempts: 1 })),
  // PIXELPIPE_TOPIC holds the topic ARN on AWS; the constructor refuses anything else at cold start.
  publisher: new SnsEventPublisher(new SNSClient({ maxAttempts: 1 }), config.topic),
  logger: createLogger({ level: config.logLevel, fields: { fn: 'notify' } }),
  config,
});
