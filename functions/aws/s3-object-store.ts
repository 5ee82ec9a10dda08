/**
 * {@link ObjectStore} on Amazon S3 (and S3-compatible servers such as s3rver in tests).
 */
import type { Readable } from 'node:stream';
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { ImageRejectedError, ObjectNotFoundError } from '../../shared/errors';
import type { CallOptions, GetOptions, ListOptions, ListPage, ObjectInfo, ObjectStore, PutOptions, StoredObject } from '../../shared/ports';
import { cancelled, defaultPolicy, resilient, type ResiliencePolicy } from '../../shared/resilience';
import { mapAwsError } from './sdk-errors';

/** Options for {@link S3ObjectStore}. */
export interface S3ObjectStoreOptions {
  /** Retry, timeout and breaker for every call; tests inject a fast one. */
  policy?: ResiliencePolicy;
}

/**
 * The generation of an S3 object: its version id in a versioned bucket, its ETag (without quotes)
 * otherwise. S3 event records carry the same two values, so an event and a later read agree.
 */
export function s3Generation(versionId: string | undefined, eTag: string | undefined): string {
  if (versionId && versionId !== 'null') return versionId;
  return (eTag ?? '').replace(/^W\//, '').replace(/^"|"$/g, '') || 'unknown';
}

/**
 * S3-backed object store. Takes a configured `S3Client`; give it `maxAttempts: 1` so retries happen
 * once, here, with jitter and a circuit breaker, rather than multiplied by the SDK's own retry loop.
 */
export class S3ObjectStore implements ObjectStore {
  private readonly policy: ResiliencePolicy;

  constructor(
    private readonly client: S3Client,
    options: S3ObjectStoreOptions = {},
  ) {
    this.policy = options.policy ?? defaultPolicy('s3');
  }

  async get(bucket: string, key: string, options: GetOptions = {}): Promise<StoredObject> {
    const max = options.maxBytes;
    return this.call(`s3 get ${bucket}/${key}`, { bucket, key }, options, async (abortSignal) => {
      const res = await this.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal });
      const stream = res.Body as Readable | undefined;
      // S3 always sends Content-Length: refuse before reading a byte when it is already too large.
      if (max !== undefined && res.ContentLength !== undefined && res.ContentLength > max) {
        stream?.destroy();
        throw tooLarge(res.ContentLength, max);
      }
      const body = stream ? await readCapped(stream, max) : Buffer.alloc(0);
      return {
        bucket,
        key,
        generation: s3Generation(res.VersionId, res.ETag),
        size: body.length,
        contentType: res.ContentType,
        cacheControl: res.CacheControl,
        metadata: lowerKeys(res.Metadata),
        updated: res.LastModified,
        body,
      };
    });
  }

  async head(bucket: string, key: string, options: CallOptions = {}): Promise<ObjectInfo | null> {
    try {
      return await this.call(`s3 head ${bucket}/${key}`, { bucket, key }, options, async (abortSignal) => {
        const res = await this.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }), { abortSignal });
        return {
          bucket,
          key,
          generation: s3Generation(res.VersionId, res.ETag),
          size: res.ContentLength ?? 0,
          contentType: res.ContentType,
          cacheControl: res.CacheControl,
          metadata: lowerKeys(res.Metadata),
          updated: res.LastModified,
        };
      });
    } catch (err) {
      if (err instanceof ObjectNotFoundError) return null;
      throw err;
    }
  }

  async put(bucket: string, key: string, body: Buffer, options: PutOptions): Promise<ObjectInfo> {
    const metadata = lowerKeys(options.metadata);
    // A whole-object PUT of the same bytes is idempotent, so retrying it is safe.
    return this.call(`s3 put ${bucket}/${key}`, undefined, options, async (abortSignal) => {
      const res = await this.client.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: body,
          ContentLength: body.length,
          ContentType: options.contentType,
          CacheControl: options.cacheControl,
          Metadata: metadata,
        }),
        { abortSignal },
      );
      return {
        bucket,
        key,
        generation: s3Generation(res.VersionId, res.ETag),
        size: body.length,
        contentType: options.contentType,
        cacheControl: options.cacheControl,
        metadata,
        updated: new Date(),
      };
    });
  }

  async list(bucket: string, prefix: string, options: ListOptions = {}): Promise<ListPage> {
    return this.call(`s3 list ${bucket}/${prefix}`, undefined, options, async (abortSignal) => {
      const res = await this.client.send(
        new ListObjectsV2Command({
          Bucket: bucket,
          Prefix: prefix,
          MaxKeys: options.pageSize ?? 1000,
          ContinuationToken: options.pageToken,
          ...(options.startAfter !== undefined ? { StartAfter: options.startAfter } : {}),
        }),
        { abortSignal },
      );
      const items: ObjectInfo[] = (res.Contents ?? []).map((o) => ({
        bucket,
        key: o.Key ?? '',
        generation: s3Generation(undefined, o.ETag),
        size: o.Size ?? 0,
        metadata: {},
        updated: o.LastModified,
      }));
      return { items, ...(res.IsTruncated && res.NextContinuationToken ? { nextPageToken: res.NextContinuationToken } : {}) };
    });
  }

  async delete(bucket: string, key: string, options: CallOptions = {}): Promise<void> {
    try {
      await this.call(`s3 delete ${bucket}/${key}`, { bucket, key }, options, async (abortSignal) => {
        await this.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }), { abortSignal });
      });
    } catch (err) {
      if (err instanceof ObjectNotFoundError) return;
      throw err;
    }
  }

  /**
   * One SDK call through the resilience policy. The attempt's signal (its timeout, or the caller's
   * cancellation) is the SDK's `abortSignal`: the HTTP request is destroyed, which frees the socket and
   * stops a large download, and the body stream being read is destroyed with it.
   */
  private call<T>(what: string, object: { bucket: string; key: string } | undefined, call: CallOptions, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    return resilient(
      this.policy,
      what,
      async (signal) => {
        try {
          return await fn(signal);
        } catch (err) {
          // Whatever the aborted request reports (AbortError, a reset socket, a premature stream end),
          // the cause is our own cancellation, as `resilient` describes it in the signal's reason.
          if (signal.aborted) throw cancelled(signal, what);
          throw mapAwsError(err, what, 'storage_unavailable', object);
        }
      },
      { signal: call.signal, deadline: call.deadline },
    );
  }
}

/** Reads a stream into memory, destroying it as soon as more than `max` bytes arrived. */
async function readCapped(stream: Readable, max: number | undefined): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
    total += buf.length;
    if (max !== undefined && total > max) {
      stream.destroy();
      throw tooLarge(total, max);
    }
    chunks.push(buf);
  }
  return Buffer.concat(chunks, total);
}

function tooLarge(got: number, max: number): ImageRejectedError {
  return new ImageRejectedError('too_many_bytes', `object has more than ${max} bytes (at least ${got})`);
}

function lowerKeys(m: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(m ?? {})) out[k.toLowerCase()] = v;
  return out;
}
