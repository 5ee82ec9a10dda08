/**
 * Builds `@google-cloud/storage` clients. Kept apart from the Pub/Sub client so each function bundle
 * pulls in only the SDKs its own path needs.
 *
 * `STORAGE_EMULATOR_HOST` (read by the library itself) points the client at a local server, e.g. the
 * test fake in `test/servers/gcs-fake.ts`; requests to it carry no credentials.
 */
import { Storage } from '@google-cloud/storage';
import type { GcpSettings } from './gcp-settings';

/**
 * A client for object reads and writes. The library's automatic retries are off: the adapters retry
 * through `resilient()`, within the function's own deadline.
 */
export function createStorage(settings: GcpSettings): Storage {
  return new Storage({
    ...(settings.projectId ? { projectId: settings.projectId } : {}),
    retryOptions: { autoRetry: false },
  });
}

/**
 * A client for signing URLs. With `signerServiceAccount` set, the signing identity is pinned to that
 * account: the library then asks IAM `signBlob` to sign as it (authenticated as the runtime account)
 * instead of looking up the runtime account's own email on the metadata server. API calls made with
 * this client keep the runtime identity.
 */
export function createSigningStorage(settings: GcpSettings): Storage {
  const storage = createStorage(settings);
  const email = settings.signerServiceAccount;
  if (email) {
    // The only hook the library offers: the signer reads `client_email` from `getCredentials()`.
    const auth = storage.authClient as unknown as { getCredentials: () => Promise<{ client_email?: string }> };
    auth.getCredentials = async () => ({ client_email: email });
  }
  return storage;
}
