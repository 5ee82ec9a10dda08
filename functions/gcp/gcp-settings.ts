/**
 * GCP-only settings that are not part of the cloud-neutral `PixelpipeConfig`. Parsed from the same
 * environment object the entry passes to `loadConfig`, once per cold start.
 */
import { z } from 'zod';
import { ConfigError } from '../../shared/errors';

export interface GcpSettings {
  /** `GOOGLE_CLOUD_PROJECT` (set by Cloud Functions / Cloud Run); optional locally. */
  projectId?: string;
  /**
   * `PIXELPIPE_SIGNER_SERVICE_ACCOUNT`: sign upload URLs as this service account through IAM
   * `signBlob` instead of the runtime account. The runtime account needs
   * `roles/iam.serviceAccountTokenCreator` on it. Only for keyless runtimes.
   */
  signerServiceAccount?: string;
  /**
   * `PIXELPIPE_VISION_ENDPOINT`: the Cloud Vision API base URL (default `https://vision.googleapis.com`).
   * A regional endpoint (`https://eu-vision.googleapis.com`, `https://us-vision.googleapis.com`) keeps
   * the images in that region; a loopback `http://127.0.0.1:<port>` is for local fakes (tests), the way
   * `STORAGE_EMULATOR_HOST` points storage at one. Nothing else is accepted: the process function sends
   * its access token there.
   */
  visionEndpoint?: string;
}

// Google's global and regional Vision hosts, or a loopback server (a test's fake); no path, query or credentials.
const VISION_ENDPOINT = /^(?:https:\/\/(?:[a-z]{2,12}-)?vision\.googleapis\.com|https?:\/\/(?:127\.0\.0\.1|localhost|\[::1\]):\d{1,5})\/?$/;

const schema = z.object({
  GOOGLE_CLOUD_PROJECT: z
    .string()
    .regex(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/, 'a project id')
    .optional(),
  PIXELPIPE_SIGNER_SERVICE_ACCOUNT: z.email().optional(),
  PIXELPIPE_VISION_ENDPOINT: z
    .string()
    .regex(VISION_ENDPOINT, 'https://vision.googleapis.com, a regional https://<region>-vision.googleapis.com, or a loopback http://127.0.0.1:<port>')
    .transform((u) => u.replace(/\/$/, ''))
    .optional(),
});

/** Validates the GCP settings; throws a `ConfigError` naming the variable. */
export function loadGcpSettings(env: Record<string, string | undefined>): GcpSettings {
  const input = {
    GOOGLE_CLOUD_PROJECT: env.GOOGLE_CLOUD_PROJECT || env.GCLOUD_PROJECT || undefined,
    PIXELPIPE_SIGNER_SERVICE_ACCOUNT: env.PIXELPIPE_SIGNER_SERVICE_ACCOUNT || undefined,
    PIXELPIPE_VISION_ENDPOINT: env.PIXELPIPE_VISION_ENDPOINT || undefined,
  };
  const r = schema.safeParse(input);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new ConfigError(String(issue.path[0]), issue.message);
  }
  return {
    projectId: r.data.GOOGLE_CLOUD_PROJECT,
    signerServiceAccount: r.data.PIXELPIPE_SIGNER_SERVICE_ACCOUNT,
    ...(r.data.PIXELPIPE_VISION_ENDPOINT ? { visionEndpoint: r.data.PIXELPIPE_VISION_ENDPOINT } : {}),
  };
}
