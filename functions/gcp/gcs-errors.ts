/**
 * Maps errors from Google client libraries (HTTP status on `code`, Node network error codes, gRPC
 * status numbers) onto the pipeline's error hierarchy, so the use cases decide retry vs. failure the
 * same way on every cloud.
 */
import { ObjectNotFoundError, PixelpipeError, TransientError, type TransientReasonCode } from '../../shared/errors';

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'EAI_AGAIN',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_SOCKET',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

/** HTTP status of a client-library error, when it carries one. */
export function httpStatusOf(err: unknown): number | undefined {
  const e = err as { code?: unknown; status?: unknown; response?: { status?: unknown } } | null;
  if (!e || typeof e !== 'object') return undefined;
  for (const v of [e.code, e.status, e.response?.status]) {
    if (typeof v === 'number' && v >= 100 && v < 600) return v;
  }
  return undefined;
}

function isTimeout(err: unknown): boolean {
  const e = err as { code?: unknown; type?: unknown; name?: unknown; message?: unknown } | null;
  return (
    !!e &&
    (e.code === 'ETIMEDOUT' ||
      e.code === 'ESOCKETTIMEDOUT' ||
      e.type === 'request-timeout' ||
      e.name === 'AbortError' ||
      /timed? ?out/i.test(typeof e.message === 'string' ? e.message : ''))
  );
}

/** True for failures of the connection itself (refused, reset, DNS, premature close). */
export function isNetworkError(err: unknown): boolean {
  const e = err as { code?: unknown; type?: unknown; cause?: unknown; errno?: unknown } | null;
  if (!e || typeof e !== 'object') return false;
  if (typeof e.code === 'string' && NETWORK_CODES.has(e.code)) return true;
  if (e.type === 'system' || e.type === 'request-timeout') return true;
  return e.cause !== undefined && e.cause !== e && isNetworkError(e.cause);
}

/**
 * Storage errors: 404 → `ObjectNotFoundError` (when `key` is given); 408/429/5xx, timeouts and network
 * failures → `TransientError`; other 4xx (permission, bad request) → non-retryable `internal`, because
 * retrying a 403 only delays the alert. Anything unrecognised counts as transient, like `isRetryable`.
 */
export function mapStorageError(err: unknown, what: string, bucket: string, key?: string): PixelpipeError {
  if (err instanceof PixelpipeError) return err;
  const status = httpStatusOf(err);
  const detail = err instanceof Error ? err.message.split('\n')[0].slice(0, 300) : String(err);
  if (status === 404 && key !== undefined) return new ObjectNotFoundError(bucket, key);
  if (status !== undefined) {
    if (status === 408 || status === 429 || status >= 500) {
      return new TransientError('storage_unavailable', `${what} failed with HTTP ${status}: ${detail}`, err);
    }
    return new PixelpipeError('internal', `${what} failed with HTTP ${status}: ${detail}`, { retryable: false, cause: err });
  }
  const code: TransientReasonCode = isTimeout(err) ? 'storage_timeout' : 'storage_unavailable';
  return new TransientError(code, `${what} failed: ${detail}`, err);
}
