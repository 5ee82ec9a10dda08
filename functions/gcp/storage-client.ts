/**
 * Builds the `@google-cloud/storage` client of the process function. Kept apart from the other
 * clients so each function bundle pulls in only the SDKs its own path needs (upload signs URLs
 * without this SDK: see `gcs-url-signer.ts`).
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
