/**
 * S3 bucket notifications, locally: s3rver's records become the exact `{Records: [...]}` event S3
 * delivers to Lambda, routed by the same rules the deployment configures (`ObjectCreated:*` on the
 * originals bucket with prefix `originals/` → process; `ObjectRemoved:*` there → cascade; on the
 * variants bucket with prefix `manifests/` and suffix `.json` → notify). Anything else (variant and
 * state writes, derived deletes) triggers nothing.
 */
import type { PixelpipeConfig } from '../../shared/config';
import type { S3rverRecord } from './s3rver-server';

/** One S3 → Lambda notification. */
export interface S3NotificationEvent {
  Records: Array<Record<string, unknown> & { eventName: string; s3: { bucket: { name: string }; object: { key: string } } }>;
}

/** A bucket notification configuration entry (one `LambdaFunctionConfiguration`). */
export interface NotificationRule {
  name: string;
  bucket: string;
  /** Event name prefix without `s3:`, e.g. `ObjectCreated:`. */
  events: string;
  prefix: string;
  suffix: string;
}

/** The three notifications the deployment sets up, derived from the config like the deploy does. */
export function pipelineRules(config: PixelpipeConfig): NotificationRule[] {
  return [
    { name: 'process', bucket: config.buckets.originals, events: 'ObjectCreated:', prefix: config.layout.originals, suffix: '' },
    { name: 'cascade', bucket: config.buckets.originals, events: 'ObjectRemoved:', prefix: config.layout.originals, suffix: '' },
    { name: 'notify', bucket: config.buckets.variants, events: 'ObjectCreated:', prefix: config.layout.manifests, suffix: '.json' },
  ];
}

/**
 * Encodes a key the way S3 writes it into notifications: form-URL encoding per path segment (a space
 * becomes `+`, a literal `+` becomes `%2B`); the handlers decode it with `decodeS3Key`.
 */
export function encodeS3EventKey(key: string): string {
  return key
    .split('/')
    .map((segment) => encodeURIComponent(segment).replace(/%20/g, '+'))
    .join('/');
}

/** s3rver's record as S3 would deliver it: `aws:s3` source and an encoded key. */
export function toS3NotificationEvent(record: S3rverRecord): S3NotificationEvent {
  return {
    Records: [
      {
        ...record,
        eventSource: 'aws:s3',
        s3: { ...record.s3, object: { ...record.s3.object, key: encodeS3EventKey(record.s3.object.key) } },
      },
    ],
  };
}

/** The rules a record matches, matched on the raw (decoded) key as S3 does. */
export function matchRules(record: S3rverRecord, rules: NotificationRule[]): NotificationRule[] {
  const key = record.s3.object.key;
  return rules.filter((r) => r.bucket === record.s3.bucket.name && record.eventName.startsWith(r.events) && key.startsWith(r.prefix) && key.endsWith(r.suffix));
}
