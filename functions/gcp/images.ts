/**
 * GCP entry: `images` HTTP function (`GET /images`, `GET /images/{id}`, `DELETE /images/{id}`).
 * Wiring only: configuration, logger, store, signer and authenticator are built once per cold start
 * and handed to the factory in `images-handler.ts`. Its service account reads manifests and variants,
 * signs reads with `signBlob` on itself, lists originals and deletes only originals.
 */
import { http } from '@google-cloud/functions-framework';
import { createAuthenticator } from '../../shared/auth/jwt-authenticator';
import { loadConfig } from '../../shared/config';
import { createLogger } from '../../shared/logger';
import { installBodyGuard } from './body-guard';
import { loadGcpSettings } from './gcp-settings';
import { GcsObjectStore } from './gcs-object-store';
import { GcsUrlSigner } from './gcs-url-signer';
import { applicationDefaultCredentials } from './google-auth';
import { createImagesHandler } from './images-handler';
import { createStorage } from './storage-client';

// No route takes a body: the framework's parsers must not inflate one either (see body-guard.ts).
installBodyGuard(Number(process.env.PORT || 8080));

const config = loadConfig(process.env);
const gcp = loadGcpSettings(process.env);
const logger = createLogger({ level: config.logLevel, fields: { fn: 'images', ...(gcp.projectId ? { gcpProject: gcp.projectId } : {}) } });

/** The deployed handler (also exported for tests). */
export const images = createImagesHandler({
  store: new GcsObjectStore(createStorage(gcp)),
  signer: new GcsUrlSigner(applicationDefaultCredentials({ projectId: gcp.projectId }), {
    signerEmail: gcp.signerServiceAccount,
    host: process.env.STORAGE_EMULATOR_HOST || undefined,
  }),
  authenticator: createAuthenticator(config, logger),
  logger,
  config,
});

http('images', images);
