/**
 * Lambda entry: the images API (`GET /images`, `GET /images/{id}`, `DELETE /images/{id}`, API Gateway
 * HTTP API). Dependencies are built once per cold start. Read URLs are signed locally (SigV4 over
 * `node:crypto`) with the execution role's credentials, so they can never read more than ImagesRole.
 */
import { S3Client } from '@aws-sdk/client-s3';
import { createAuthenticator } from '../../shared/auth/jwt-authenticator';
import { systemClock } from '../../shared/clock';
import { loadConfig } from '../../shared/config';
import { createLogger } from '../../shared/logger';
import { createImagesHandler } from './images-handler';
import { S3ObjectStore } from './s3-object-store';
import { S3UrlSigner, s3SigningTargetFromEnv } from './s3-url-signer';

const config = loadConfig(process.env);
const logger = createLogger({ level: config.logLevel, fields: { fn: 'images' } });

/** API Gateway HTTP API v2 handler. */
export const handler = createImagesHandler({
  // maxAttempts 1: the adapter retries with jitter and a breaker; SDK retries on top would multiply.
  store: new S3ObjectStore(new S3Client({ maxAttempts: 1 })),
  signer: new S3UrlSigner(s3SigningTargetFromEnv(process.env), { clock: systemClock }),
  authenticator: createAuthenticator(config, logger),
  logger,
  config,
});
