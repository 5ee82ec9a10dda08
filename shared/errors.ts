/**
 * One error hierarchy for the whole pipeline.
 *
 * Every error that crosses a port or a use case is a {@link PixelpipeError} with a machine-readable
 * `code` and a `retryable` flag. Handlers map them mechanically:
 * - `retryable: false` on the processing path → write a `failed` manifest and return normally
 *   (acknowledge), because retrying a corrupt image only burns money;
 * - `retryable: true` → rethrow so the platform (Eventarc / Lambda async / Pub/Sub) retries;
 * - {@link ClientError} on the HTTP path → 4xx JSON with `code`, never a stack trace.
 */

/** Reason codes recorded in failed manifests and `pixelpipe.image.failed.v1` events. */
export const IMAGE_REASON_CODES = [
  'empty_file',
  'too_many_bytes',
  'unsupported_type',
  'type_not_allowed',
  'corrupt_image',
  'too_many_pixels',
  'too_many_frames',
  'svg_not_allowed',
  'svg_unsafe',
  'decode_failed',
  'retries_exhausted',
  'content_blocked',
] as const;
export type ImageReasonCode = (typeof IMAGE_REASON_CODES)[number];

/** Reason codes returned to HTTP callers. */
export type ClientReasonCode =
  | 'unauthenticated'
  | 'invalid_json'
  | 'invalid_request'
  | 'content_type_not_allowed'
  | 'too_large'
  | 'method_not_allowed'
  | 'origin_not_allowed'
  | 'payload_too_large'
  | 'content_encoding_not_allowed'
  | 'request_timeout'
  | 'not_found'
  | 'unknown_profile';

export type TransientReasonCode =
  | 'storage_unavailable'
  | 'storage_timeout'
  | 'publish_failed'
  | 'circuit_open'
  | 'deadline_exceeded'
  | 'auth_unavailable'
  | 'analyzer_unavailable'
  /** The delete cascade waits for a processing attempt still holding its lease. */
  | 'image_busy'
  | 'internal';

export type ReasonCode = ImageReasonCode | ClientReasonCode | TransientReasonCode | 'invalid_config' | 'not_found_object';

/** Base class: every error the pipeline raises on purpose. */
export class PixelpipeError extends Error {
  readonly code: ReasonCode;
  readonly retryable: boolean;
  constructor(code: ReasonCode, message: string, options: { retryable: boolean; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable;
  }
}

/** The original itself is unusable: permanent, recorded as a `failed` manifest, never retried. */
export class ImageRejectedError extends PixelpipeError {
  constructor(code: ImageReasonCode, message: string, cause?: unknown) {
    super(code, message, { retryable: false, cause });
  }
}

/** A downstream (storage, publish, JWKS) failed in a way that may succeed later: rethrown for a platform retry. */
export class TransientError extends PixelpipeError {
  constructor(code: TransientReasonCode, message: string, cause?: unknown) {
    super(code, message, { retryable: true, cause });
  }
}

/** The caller sent something wrong: mapped to a 4xx JSON body. `message` must be safe to show to a client. */
export class ClientError extends PixelpipeError {
  readonly status: number;
  constructor(status: number, code: ClientReasonCode, message: string) {
    super(code, message, { retryable: false });
    this.status = status;
  }
}

/** A stored object that should exist does not (permanent for the event that referenced it). */
export class ObjectNotFoundError extends PixelpipeError {
  constructor(bucket: string, key: string) {
    super('not_found_object', `object not found: ${bucket}/${key}`, { retryable: false });
  }
}

/** Configuration is invalid; the message names the offending environment variable. */
export class ConfigError extends PixelpipeError {
  readonly variable: string;
  constructor(variable: string, message: string) {
    super('invalid_config', `${variable}: ${message}`, { retryable: false });
    this.variable = variable;
  }
}

/** True when the platform should retry the work that raised `err`. Unknown errors count as transient. */
export function isRetryable(err: unknown): boolean {
  if (err instanceof PixelpipeError) return err.retryable;
  return true;
}
