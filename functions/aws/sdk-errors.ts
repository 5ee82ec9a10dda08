/**
 * Maps AWS SDK v3 failures onto the pipeline's error hierarchy, so the core's retry and
 * failed-manifest decisions work the same on AWS as on GCP.
 */
import { ObjectNotFoundError, PixelpipeError, TransientError, type TransientReasonCode } from '../../shared/errors';

interface AwsLikeError {
  name?: string;
  code?: string;
  message?: string;
  $retryable?: unknown;
  $metadata?: { httpStatusCode?: number };
}

const TRANSIENT_NAMES = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestThrottled',
  'RequestThrottledException',
  'TooManyRequestsException',
  'RequestTimeout',
  'RequestTimeoutException',
  'InternalError',
  'InternalFailure',
  'InternalErrorException',
  'ServiceUnavailable',
  'KMSThrottlingException',
]);
const TIMEOUT_NAMES = new Set(['TimeoutError', 'AbortError', 'RequestTimeout', 'RequestTimeoutException']);
const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'UND_ERR_SOCKET']);

/** The HTTP status an SDK error carries, if the service answered at all. */
function awsStatus(err: unknown): number | undefined {
  return (err as AwsLikeError | null)?.$metadata?.httpStatusCode;
}

/**
 * Classifies one SDK error:
 * - 404 for an object (`NoSuchKey`, `NotFound`) → {@link ObjectNotFoundError} when `object` is given;
 * - throttling, 5xx, timeouts and network failures (no HTTP answer) → {@link TransientError};
 * - every other 4xx (access denied, missing bucket or topic, bad parameter) → non-retryable
 *   `PixelpipeError('internal')`: repeating the same call cannot succeed until someone fixes the setup.
 */
export function mapAwsError(err: unknown, what: string, transientCode: TransientReasonCode, object?: { bucket: string; key: string }): PixelpipeError {
  if (err instanceof PixelpipeError) return err;
  const e = (err ?? {}) as AwsLikeError;
  const status = awsStatus(err);
  const name = e.name ?? '';
  const detail = `${what}: ${name || 'Error'}${e.message ? ` (${e.message})` : ''}`;
  if (object && (name === 'NoSuchKey' || (status === 404 && name !== 'NoSuchBucket'))) return new ObjectNotFoundError(object.bucket, object.key);
  if (TIMEOUT_NAMES.has(name) || e.code === 'ETIMEDOUT') return new TransientError('storage_timeout', detail, err);
  if (status === 429 || (status !== undefined && status >= 500) || TRANSIENT_NAMES.has(name) || e.$retryable) {
    return new TransientError(transientCode, detail, err);
  }
  // No HTTP answer at all: the request never reached the service (DNS, socket, TLS).
  if (status === undefined && (NETWORK_CODES.has(e.code ?? '') || !(err instanceof TypeError || err instanceof RangeError))) {
    return new TransientError(transientCode, detail, err);
  }
  return new PixelpipeError('internal', detail, { retryable: false, cause: err });
}
