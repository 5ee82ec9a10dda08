/**
 * Lambda entry: `POST /uploads` (API Gateway HTTP API). Dependencies are built once per cold start.
 * Pulls in S3 (for signing) only: no SNS, no sharp.
 */
import { S3Client } from '@aws-sdk/client-s3';
import { createAuthenticator } from '../../shared/auth/jwt-authenticator';
import { systemClock, uuidIds } from '../../shared/clock';
import { loadConfig } from '../../shared/config';
import { createLogger } from '../../shared/logger';
import { S3UrlSigner } from './s3-url-signer';
import { createUploadHandler } from './upload-handler';

const config = loadConfig(process.env);
const logger = createLogger({ level: config.logLevel, fields: { fn: 'upload' } });

/** API Gateway HTTP API v2 handler. */
export const handler = createUploadHandler({
  // Signing is local (no request to S3); the client only supplies credentials, region and endpoint.
  signer: new S3UrlSigner(new S3Client({ maxAttempts: 1 })),
  ids: uuidIds,
  clock: systemClock,
  config,
  authenticator: createAuthenticator(config, logger),
  logger,
});
