/**
 * {@link ObjectStore} on Google Cloud Storage (`@google-cloud/storage` v7).
 *
 * The injected client should have the library's own retries off (`retryOptions.autoRetry: false`, as
 * `createStorage` does): every call here goes through `resilient()` — bounded retries with jitter, a
 * per-attempt timeout and a circuit breaker — and two layers of retries would multiply the wait.
 */
import type { Storage } from '@google-cloud/storage';
import { ImageRejectedError, ObjectNotFoundError } from '../../shared/errors';
import type { ListPage, ObjectInfo, ObjectStore, PutOptions, StoredObject } from '../../shared/ports';
import { defaultPolicy, resilient, type ResiliencePolicy } from '../../shared/resilience';
import { httpStatusOf, mapStorageError } from './gcs-errors';

/** The JSON API object resource fields the GCS adapters read. */
export interface GcsMetadata {
  name?: string;
  bucket?: string;
  generation?: string | number;
  size?: string | number;
  contentType?: string;
  cacheControl?: string;
  metadata?: Record<string, unknown> | null;
  updated?: string;
}

export interface GcsObjectStoreOptions {
  /** Retry/timeout/breaker policy; one per process so concurrent calls share the breaker. */
  policy?: ResiliencePolicy;
  /** Objects up to this size are written in one request instead of a resumable session. */
  simpleUploadMaxBytes?: number;
}

/** Converts the JSON API resource to the port's {@link ObjectInfo}. */
export function toObjectInfo(bucket: string, key: string, md: GcsMetadata): ObjectInfo {
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(md.metadata ?? {})) if (v !== null && v !== undefined) metadata[k.toLowerCase()] = String(v);
  return {
    bucket: md.bucket ?? bucket,
    key: md.name ?? key,
    generation: String(md.generation ?? ''),
    size: Number(md.size ?? 0),
    ...(md.contentType ? { contentType: md.contentType } : {}),
    ...(md.cacheControl ? { cacheControl: md.cacheControl } : {}),
    metadata,
    ...(md.updated ? { updated: new Date(md.updated) } : {}),
  };
}

/** GCS adapter for the {@link ObjectStore} port. */
export class GcsObjectStore implements ObjectStore {
  private readonly policy: ResiliencePolicy;
  private readonly simpleUploadMaxBytes: number;

  constructor(
    private readonly storage: Storage,
    options: GcsObjectStoreOptions = {},
  ) {
    this.policy = options.policy ?? defaultPolicy('gcs');
    this.simpleUploadMaxBytes = options.simpleUploadMaxBytes ?? 8 * 1024 * 1024;
  }

  /** See {@link readConsistently}: metadata, then the body of exactly that generation, byte-capped. */
  async get(bucket: string, key: string, options: { maxBytes?: number } = {}): Promise<StoredObject> {
    return resilient(this.policy, `gcs get ${bucket}/${key}`, () =>
      readConsistently(
        () => this.headOrThrow(bucket, key),
        (generation) => this.download(bucket, key, generation, options.maxBytes),
        options.maxBytes,
      ),
    );
  }

  async head(bucket: string, key: string): Promise<ObjectInfo | null> {
    return resilient(this.policy, `gcs head ${bucket}/${key}`, async () => {
      try {
        return await this.headOrThrow(bucket, key);
      } catch (err) {
        if (err instanceof ObjectNotFoundError) return null;
        throw err;
      }
    });
  }

  async put(bucket: string, key: string, body: Buffer, options: PutOptions): Promise<ObjectInfo> {
    return resilient(this.policy, `gcs put ${bucket}/${key}`, async () => {
      const file = this.storage.bucket(bucket).file(key);
      try {
        await file.save(body, {
          // One request for small objects: a resumable session costs an extra round trip.
          resumable: body.length > this.simpleUploadMaxBytes,
          contentType: options.contentType,
          validation: 'crc32c',
          metadata: {
            contentType: options.contentType,
            ...(options.cacheControl ? { cacheControl: options.cacheControl } : {}),
            ...(options.metadata && Object.keys(options.metadata).length ? { metadata: options.metadata } : {}),
          },
        });
      } catch (err) {
        throw mapStorageError(err, 'gcs put', bucket);
      }
      return toObjectInfo(bucket, key, file.metadata as GcsMetadata);
    });
  }

  async list(bucket: string, prefix: string, options: { pageToken?: string; pageSize?: number } = {}): Promise<ListPage> {
    return resilient(this.policy, `gcs list ${bucket}/${prefix}`, async () => {
      try {
        const [files, next] = await this.storage.bucket(bucket).getFiles({
          prefix,
          autoPaginate: false,
          maxResults: options.pageSize ?? 1000,
          ...(options.pageToken ? { pageToken: options.pageToken } : {}),
        });
        const token = (next as { pageToken?: string } | null | undefined)?.pageToken;
        return {
          items: files.map((f) => toObjectInfo(bucket, f.name, f.metadata as GcsMetadata)),
          ...(token ? { nextPageToken: token } : {}),
        };
      } catch (err) {
        throw mapStorageError(err, 'gcs list', bucket);
      }
    });
  }

  async delete(bucket: string, key: string): Promise<void> {
    await resilient(this.policy, `gcs delete ${bucket}/${key}`, async () => {
      try {
        await this.storage.bucket(bucket).file(key).delete({ ignoreNotFound: true });
      } catch (err) {
        if (httpStatusOf(err) === 404) return;
        throw mapStorageError(err, 'gcs delete', bucket);
      }
    });
  }

  private async headOrThrow(bucket: string, key: string): Promise<ObjectInfo> {
    try {
      const [md] = await this.storage.bucket(bucket).file(key).getMetadata();
      return toObjectInfo(bucket, key, md as GcsMetadata);
    } catch (err) {
      throw mapStorageError(err, 'gcs metadata', bucket, key);
    }
  }

  private async download(bucket: string, key: string, generation: string, maxBytes: number | undefined): Promise<Buffer> {
    const file = this.storage.bucket(bucket).file(key, generation ? { generation } : {});
    const stream = file.createReadStream({ validation: 'crc32c' });
    const chunks: Buffer[] = [];
    let received = 0;
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        received += chunk.length;
        // Counted while streaming: the metadata size is authoritative, but memory must not depend on it.
        if (maxBytes !== undefined && received > maxBytes) {
          stream.destroy();
          throw tooManyBytes(received, maxBytes);
        }
        chunks.push(chunk);
      }
    } catch (err) {
      if (err instanceof ImageRejectedError) throw err;
      throw mapStorageError(err, 'gcs download', bucket, key);
    }
    return Buffer.concat(chunks, received);
  }
}

/**
 * One GCS read, shared by both GCS adapters: metadata first (refusing an oversized object without
 * downloading it), then the body of exactly that generation, so body and metadata always describe the
 * same write. If the key was overwritten in between (404 for that generation), it starts over once.
 */
export async function readConsistently(
  metadata: () => Promise<ObjectInfo>,
  download: (generation: string) => Promise<Buffer>,
  maxBytes: number | undefined,
): Promise<StoredObject> {
  for (let round = 0; ; round++) {
    const info = await metadata();
    if (maxBytes !== undefined && info.size > maxBytes) throw tooManyBytes(info.size, maxBytes);
    try {
      const body = await download(info.generation);
      return { ...info, size: body.length, body };
    } catch (err) {
      if (err instanceof ObjectNotFoundError && round === 0) continue;
      throw err;
    }
  }
}

/** The error for a body past the caller's byte cap (counted while streaming, or from the metadata). */
export function tooManyBytes(size: number, max: number): ImageRejectedError {
  return new ImageRejectedError('too_many_bytes', `object has at least ${size} bytes; the limit is ${max}`);
}
