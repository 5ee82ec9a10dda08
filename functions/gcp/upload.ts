/**
 * GCP entry: `upload` HTTP function. Wiring only: configuration, logger, signer and authenticator are
 * built once per cold start and handed to the factory in `upload-handler.ts`. Loads no Google storage
 * client: the URL signer builds the V4 URL itself and only its signature comes from
 * `google-auth-library` (~15–30 ms of cold start; `@google-cloud/storage` would cost ~150 ms).
 */
import { http } from '@google-cloud/functions-framework';
import { createAuthenticator } from '../../shared/auth/jwt-authenticator';
import { newestFirstIds, systemClock } from '../../shared/clock';
import { loadConfig } from '../../shared/config';
import { createLogger } from '../../shared/logger';
import { installBodyGuard } from './body-guard';
import { loadGcpSettings } from './gcp-settings';
import { GcsUrlSigner } from './gcs-url-signer';
import { applicationDefaultCredentials } from './google-auth';
import { createUploadHandler } from './upload-handler';

// Before the framework serves anything: its body parsers must never see this function's bodies
// (compressed bodies inflate before the handler runs; see body-guard.ts). The framework listens on
// PORT (default 8080), as Cloud Run and the Dockerfile run it.
installBodyGuard(Number(process.env.PORT || 8080));

// Cold start: configuration and clients are built once and reused by warm invocations.
const config = loadConfig(process.env);
const gcp = loadGcpSettings(process.env);
const logger = createLogger({ level: config.logLevel, fields: { fn: 'upload', ...(gcp.projectId ? { gcpProject: gcp.projectId } : {}) } });

// Checks a key file if one is configured (a broken one fails the deployment, not a request); the
// rest of Application Default Credentials is looked up on the first signing, so loading does no network I/O.
const credentials = applicationDefaultCredentials({ projectId: gcp.projectId });
const signer = new GcsUrlSigner(credentials, {
  signerEmail: gcp.signerServiceAccount,
  // As Google's SDK does: with an emulator configured, URLs point at it (the tests' fake GCS).
  host: process.env.STORAGE_EMULATOR_HOST || undefined,
});

/** The deployed handler (also exported for tests). */
export const upload = createUploadHandler({
  signer,
  ids: newestFirstIds(systemClock),
  clock: systemClock,
  authenticator: createAuthenticator(config, logger),
  logger,
  config,
});

http('upload', upload);
