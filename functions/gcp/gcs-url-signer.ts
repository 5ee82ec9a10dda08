/**
 * {@link UrlSigner} on GCS V4 signed URLs.
 *
 * An upload URL pins one object key, one content type, a byte range (`x-goog-content-length-range`,
 * enforced by GCS) and the object metadata (`x-goog-meta-*`): all are signed headers, so a holder of
 * the URL cannot change any of them. The browser must send exactly `UploadTarget.headers`.
 *
 * Who signs: whatever credentials the injected `Storage` client has.
 * - With a service-account key (local development, tests) the library signs locally.
 * - Without a key (Cloud Functions / Cloud Run) the library calls IAM `signBlob` for the runtime
 *   service account, which therefore needs `roles/iam.serviceAccountTokenCreator` on itself. To sign
 *   as a different, dedicated account, set `PIXELPIPE_SIGNER_SERVICE_ACCOUNT` (see `createSigningStorage`).
 */
import type { Storage } from '@google-cloud/storage';
import { PixelpipeError, TransientError } from '../../shared/errors';
import type { Clock, SignUploadRequest, UploadTarget, UrlSigner } from '../../shared/ports';
import { defaultPolicy, resilient, type ResiliencePolicy } from '../../shared/resilience';
import { isNetworkError } from './gcs-errors';

/** Longest upload URL lifetime we hand out: a leaked URL is only useful briefly. */
export const MAX_UPLOAD_EXPIRY_SECONDS = 15 * 60;
/** V4 limit. */
const MAX_READ_EXPIRY_SECONDS = 7 * 24 * 3600;

export interface GcsUrlSignerOptions {
  clock?: Clock;
  policy?: ResiliencePolicy;
  /** Public host for URLs (e.g. `https://storage.googleapis.com` or a local server); defaults to the client's endpoint. */
  host?: string;
}

const META_KEY = /^[a-z0-9][a-z0-9_-]{0,127}$/;
// Header values must survive a browser's fetch(): printable ASCII only (request-upload URI-encodes names).
const META_VALUE = /^[\x20-\x7e]{0,2048}$/;

/** Signs GCS V4 upload (PUT) and read (GET) URLs. */
export class GcsUrlSigner implements UrlSigner {
  private readonly clock: Clock;
  private readonly policy: ResiliencePolicy;

  constructor(
    private readonly storage: Storage,
    private readonly options: GcsUrlSignerOptions = {},
  ) {
    this.clock = options.clock ?? { now: () => new Date() };
    // Signing with a key is local; with IAM signBlob it is a network call worth retrying.
    this.policy = options.policy ?? defaultPolicy('gcs-signer', { timeoutMs: 10_000 });
  }

  async signUpload(r: SignUploadRequest): Promise<UploadTarget> {
    if (!Number.isInteger(r.expiresInSeconds) || r.expiresInSeconds < 1 || r.expiresInSeconds > MAX_UPLOAD_EXPIRY_SECONDS) {
      throw new RangeError(`upload URLs expire after 1..${MAX_UPLOAD_EXPIRY_SECONDS} s, got ${r.expiresInSeconds}`);
    }
    if (!Number.isInteger(r.minBytes) || !Number.isInteger(r.maxBytes) || r.minBytes < 0 || r.maxBytes < r.minBytes) {
      throw new RangeError(`invalid byte range ${r.minBytes},${r.maxBytes}`);
    }
    const headers: Record<string, string> = {
      'content-type': r.contentType,
      'x-goog-content-length-range': `${r.minBytes},${r.maxBytes}`,
    };
    for (const [k, v] of Object.entries(r.metadata)) {
      const key = k.toLowerCase();
      if (!META_KEY.test(key)) throw new RangeError(`metadata key "${k}" is not a valid header name part`);
      if (!META_VALUE.test(v)) throw new RangeError(`metadata value of "${k}" must be printable ASCII (URI-encode it)`);
      headers[`x-goog-meta-${key}`] = v;
    }
    const { 'content-type': contentType, ...extensionHeaders } = headers;
    const now = this.clock.now();
    const url = await this.sign(r.bucket, r.key, 'write', now, r.expiresInSeconds, { contentType, extensionHeaders });
    return { method: 'PUT', url, headers };
  }

  async signRead(bucket: string, key: string, expiresInSeconds: number): Promise<string> {
    if (!Number.isInteger(expiresInSeconds) || expiresInSeconds < 1 || expiresInSeconds > MAX_READ_EXPIRY_SECONDS) {
      throw new RangeError(`read URLs expire after 1..${MAX_READ_EXPIRY_SECONDS} s, got ${expiresInSeconds}`);
    }
    return this.sign(bucket, key, 'read', this.clock.now(), expiresInSeconds, {});
  }

  private sign(
    bucket: string,
    key: string,
    action: 'read' | 'write',
    now: Date,
    seconds: number,
    extra: { contentType?: string; extensionHeaders?: Record<string, string> },
  ): Promise<string> {
    return resilient(this.policy, `sign ${action} ${bucket}/${key}`, async () => {
      try {
        const [url] = await this.storage
          .bucket(bucket)
          .file(key)
          .getSignedUrl({
            version: 'v4',
            action,
            accessibleAt: now,
            expires: now.getTime() + seconds * 1000,
            ...(this.options.host ? { host: this.options.host } : {}),
            ...extra,
          });
        return url;
      } catch (err) {
        throw mapSigningError(err);
      }
    });
  }
}

/**
 * The library wraps signing failures in a `SigningError` that keeps only the message, so the class of
 * failure is read from it: IAM unreachable or 5xx → transient; missing permission or no credentials →
 * permanent (a deployment problem that retries cannot fix).
 */
function mapSigningError(err: unknown): PixelpipeError {
  if (err instanceof PixelpipeError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (isNetworkError(err) || /ECONN|ETIMEDOUT|EAI_AGAIN|socket hang up|timed? ?out|\b(429|500|502|503|504)\b|unavailable/i.test(message)) {
    return new TransientError('storage_unavailable', `signing failed: ${message}`, err);
  }
  return new PixelpipeError('internal', `signing failed: ${message}`, { retryable: false, cause: err });
}
