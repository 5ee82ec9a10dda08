/**
 * Lambda entry: `POST /uploads` (API Gateway HTTP API). Dependencies are built once per cold start.
 * Loads no AWS SDK at all: signing an upload is local SigV4 over `node:crypto`, so the cold start pays
 * for config, JWT verification and the handler only (no S3 client, no SNS, no sharp).
 */
import { createAuthenticator } from '../../shared/auth/jwt-authenticator';
import { newestFirstIds, systemClock } from '../../shared/clock';
import { loadConfig } from '../../shared/config';
import { createLogger } from '../../shared/logger';
import { S3UrlSigner, s3SigningTargetFromEnv } from './s3-url-signer';
import { createUploadHandler } from './upload-handler';

const config = loadConfig(process.env);
const logger = createLogger({ level: config.logLevel, fields: { fn: 'upload' } });

/** API Gateway HTTP API v2 handler. */
export const handler = createUploadHandler({
  // Region and the execution role's credentials come from the variables Lambda sets; a missing one
  // fails the cold start with a ConfigError naming it, instead of every request failing later.
  signer: new S3UrlSigner(s3SigningTargetFromEnv(process.env), { clock: systemClock }),
  ids: newestFirstIds(systemClock),
  clock: systemClock,
  config,
  authenticator: createAuthenticator(config, logger),
  logger,
});
