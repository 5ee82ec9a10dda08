/**
 * {@link ObjectStore} on Google Cloud Storage (`@google-cloud/storage` v7).
 *
 * The injected client should have the library's own retries off (`retryOptions.autoRetry: false`, as
 * `createStorage` does): every call here goes through `resilient()` — bounded retries with jitter, a
 * per-attempt timeout and a circuit breaker — and two layers of retries would multiply the wait.
 *
 * Cancellation: the SDK takes no `AbortSignal` on any of the calls used here. Uploads go through
 * `createWriteStream` in a `pipeline` that the attempt's signal destroys, downloads through
 * `createReadStream`, destroyed on abort; and every attempt runs in a {@link withRequestScope}, which
 * destroys the HTTP requests the SDK started for it (metadata, list and delete included), because the
 * SDK's transport (node-fetch 2) does not close a socket when its stream is destroyed.
 */
import type { ClientRequest } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Storage } from '@google-cloud/storage';
import { ImageRejectedError, ObjectNotFoundError } from '../../shared/errors';
import type { CallOptions, GetOptions, ListOptions, ListPage, ObjectInfo, ObjectStore, PutOptions, StoredObject } from '../../shared/ports';
import { cancelled, defaultPolicy, resilient, type ResiliencePolicy } from '../../shared/resilience';
import { httpStatusOf, mapStorageError } from './gcs-errors';
import { withRequestScope } from './request-scope';

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
  for (const [k, v] of Object.entries(md.metadata ?? {}))
    if (v !== null && v !== undefined) metadata[k.toLowerCase()] = typeof v === 'string' ? v : JSON.stringify(v);
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
  private readonly ownsRequest: (request: ClientRequest) => boolean;

  constructor(
    private readonly storage: Storage,
    options: GcsObjectStoreOptions = {},
  ) {
    this.policy = options.policy ?? defaultPolicy('gcs');
    this.simpleUploadMaxBytes = options.simpleUploadMaxBytes ?? 8 * 1024 * 1024;
    // Only requests to the Storage API itself: token refreshes are shared with other calls.
    const apiHost = new URL(storage.apiEndpoint).hostname;
    this.ownsRequest = (request) => request.host === apiHost;
  }

  /** See {@link readConsistently}: metadata, then the body of exactly that generation, byte-capped. */
  async get(bucket: string, key: string, options: GetOptions = {}): Promise<StoredObject> {
    return this.call(
      `gcs get ${bucket}/${key}`,
      (signal) =>
        readConsistently(
          () => this.headOrThrow(bucket, key),
          (generation) => this.download(bucket, key, generation, options.maxBytes, signal),
          options.maxBytes,
        ),
      options,
    );
  }

  async head(bucket: string, key: string, options: CallOptions = {}): Promise<ObjectInfo | null> {
    return this.call(
      `gcs head ${bucket}/${key}`,
      async () => {
        try {
          return await this.headOrThrow(bucket, key);
        } catch (err) {
          if (err instanceof ObjectNotFoundError) return null;
          throw err;
        }
      },
      options,
    );
  }

  async put(bucket: string, key: string, body: Buffer, options: PutOptions): Promise<ObjectInfo> {
    const call: CallOptions = { signal: options.signal, deadline: options.deadline };
    return this.call(
      `gcs put ${bucket}/${key}`,
      async (signal) => {
        const file = this.storage.bucket(bucket).file(key);
        try {
          const upload = file.createWriteStream({
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
          // The signal destroys both streams: the body stops flowing and the upload is never completed.
          await pipeline(Readable.from([body]), upload, { signal });
        } catch (err) {
          if (signal.aborted) throw cancelled(signal, `gcs put ${bucket}/${key}`);
          throw mapStorageError(err, 'gcs put', bucket);
        }
        return toObjectInfo(bucket, key, file.metadata);
      },
      call,
    );
  }

  async list(bucket: string, prefix: string, options: ListOptions = {}): Promise<ListPage> {
    return this.call(
      `gcs list ${bucket}/${prefix}`,
      async () => {
        try {
          const [files, next] = await this.storage.bucket(bucket).getFiles({
            prefix,
            autoPaginate: false,
            maxResults: options.pageSize ?? 1000,
            ...(options.pageToken ? { pageToken: options.pageToken } : {}),
            // startOffset is inclusive: start at the key's immediate successor in byte order (the key plus
            // U+0000), so a full page is never spent on the key itself. The filter below is a safeguard.
            ...(options.startAfter !== undefined ? { startOffset: `${options.startAfter}\u0000` } : {}),
          });
          const token = (next as { pageToken?: string } | null | undefined)?.pageToken;
          return {
            items: files.filter((f) => f.name !== options.startAfter).map((f) => toObjectInfo(bucket, f.name, f.metadata as GcsMetadata)),
            ...(token ? { nextPageToken: token } : {}),
          };
        } catch (err) {
          throw mapStorageError(err, 'gcs list', bucket);
        }
      },
      { signal: options.signal, deadline: options.deadline },
    );
  }

  async delete(bucket: string, key: string, options: CallOptions = {}): Promise<void> {
    await this.call(
      `gcs delete ${bucket}/${key}`,
      async () => {
        try {
          await this.storage.bucket(bucket).file(key).delete({ ignoreNotFound: true });
        } catch (err) {
          if (httpStatusOf(err) === 404) return;
          throw mapStorageError(err, 'gcs delete', bucket);
        }
      },
      options,
    );
  }

  /**
   * One attempt-wrapped SDK call: the attempt's signal destroys every HTTP request the SDK started for
   * it, and the attempt settles only once those are closed (see `withRequestScope`).
   */
  private call<T>(what: string, fn: (signal: AbortSignal) => Promise<T>, call: CallOptions): Promise<T> {
    return resilient(
      this.policy,
      what,
      (signal) =>
        withRequestScope(signal, () => fn(signal), this.ownsRequest).catch((err: unknown) => {
          throw signal.aborted ? cancelled(signal, what) : err;
        }),
      { signal: call.signal, deadline: call.deadline },
    );
  }

  private async headOrThrow(bucket: string, key: string): Promise<ObjectInfo> {
    try {
      const [md] = await this.storage.bucket(bucket).file(key).getMetadata();
      return toObjectInfo(bucket, key, md);
    } catch (err) {
      throw mapStorageError(err, 'gcs metadata', bucket, key);
    }
  }

  private async download(bucket: string, key: string, generation: string, maxBytes: number | undefined, signal: AbortSignal): Promise<Buffer> {
    const file = this.storage.bucket(bucket).file(key, generation ? { generation } : {});
    const stream = file.createReadStream({ validation: 'crc32c' });
    const onAbort = (): void => void stream.destroy(cancelled(signal, `gcs download ${bucket}/${key}`));
    signal.addEventListener('abort', onAbort, { once: true });
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
    } finally {
      signal.removeEventListener('abort', onAbort);
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
