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
}

const schema = z.object({
  GOOGLE_CLOUD_PROJECT: z
    .string()
    .regex(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/, 'a project id')
    .optional(),
  PIXELPIPE_SIGNER_SERVICE_ACCOUNT: z.email().optional(),
});

/** Validates the GCP settings; throws a `ConfigError` naming the variable. */
export function loadGcpSettings(env: Record<string, string | undefined>): GcpSettings {
  const input = {
    GOOGLE_CLOUD_PROJECT: env.GOOGLE_CLOUD_PROJECT || env.GCLOUD_PROJECT || undefined,
    PIXELPIPE_SIGNER_SERVICE_ACCOUNT: env.PIXELPIPE_SIGNER_SERVICE_ACCOUNT || undefined,
  };
  const r = schema.safeParse(input);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new ConfigError(String(issue.path[0]), issue.message);
  }
  return { projectId: r.data.GOOGLE_CLOUD_PROJECT, signerServiceAccount: r.data.PIXELPIPE_SIGNER_SERVICE_ACCOUNT };
}
