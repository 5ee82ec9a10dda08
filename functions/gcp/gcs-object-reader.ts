/**
 * {@link ObjectReader} on the Cloud Storage JSON API over `fetch`, for the notify function: it only
 * reads one small manifest per event, and `@google-cloud/storage` would cost ~150 ms of its 250 ms
 * cold-start budget. The process function and the CLI, which also write and list, keep the
 * SDK-based `GcsObjectStore`; both adapters convert resources with the same `toObjectInfo`.
 */
import { createHash } from 'node:crypto';
import { ImageRejectedError, ObjectNotFoundError, TransientError } from '../../shared/errors';
import type { CallOptions, GetOptions, ObjectInfo, ObjectReader, StoredObject } from '../../shared/ports';
import { defaultPolicy, resilient, type ResiliencePolicy } from '../../shared/resilience';
import type { RequestAuthorizer } from './google-auth';
import { googleFetch, googleJson } from './google-http';
import { crc32c } from './crc32c';
import { mapStorageError } from './gcs-errors';
import { readConsistently, tooManyBytes, toObjectInfo, type GcsMetadata } from './gcs-object-store';

/** Options for {@link GcsObjectReader}. */
export interface GcsObjectReaderOptions {
  /** JSON API base URL: `https://storage.googleapis.com`, or a local server (`STORAGE_EMULATOR_HOST`). */
  endpoint?: string;
  /** Retry/timeout/breaker policy; one per process so concurrent calls share the breaker. */
  policy?: ResiliencePolicy;
}

/** Reads objects through the GCS JSON API with the given authorization. */
export class GcsObjectReader implements ObjectReader {
  private readonly base: string;
  private readonly policy: ResiliencePolicy;

  constructor(
    private readonly auth: RequestAuthorizer,
    options: GcsObjectReaderOptions = {},
  ) {
    this.base = `${(options.endpoint ?? 'https://storage.googleapis.com').replace(/\/$/, '')}/storage/v1`;
    this.policy = options.policy ?? defaultPolicy('gcs-reader', { timeoutMs: 10_000 });
  }

  /** See `readConsistently`; the body is also checked against the stored hash. */
  async get(bucket: string, key: string, options: GetOptions = {}): Promise<StoredObject> {
    return resilient(
      this.policy,
      `gcs get ${bucket}/${key}`,
      (signal) =>
        readConsistently(
          () => this.metadata(bucket, key, signal),
          (generation) => this.download(bucket, key, generation, options.maxBytes, signal),
          options.maxBytes,
        ),
      { signal: options.signal, deadline: options.deadline },
    );
  }

  async head(bucket: string, key: string, options: CallOptions = {}): Promise<ObjectInfo | null> {
    return resilient(
      this.policy,
      `gcs head ${bucket}/${key}`,
      async (signal) => {
        try {
          return await this.metadata(bucket, key, signal);
        } catch (err) {
          if (err instanceof ObjectNotFoundError) return null;
          throw err;
        }
      },
      options,
    );
  }

  private objectUrl(bucket: string, key: string): string {
    return `${this.base}/b/${encodeURIComponent(bucket)}/o/${encodeURIComponent(key)}`;
  }

  private async metadata(bucket: string, key: string, signal: AbortSignal): Promise<ObjectInfo> {
    try {
      const md = await googleJson<GcsMetadata>(this.objectUrl(bucket, key), { headers: await this.auth.headers(), timeoutMs: this.policy.timeoutMs, signal });
      return toObjectInfo(bucket, key, md);
    } catch (err) {
      throw mapStorageError(err, 'gcs metadata', bucket, key);
    }
  }

  private async download(bucket: string, key: string, generation: string, maxBytes: number | undefined, signal: AbortSignal): Promise<Buffer> {
    const query = `alt=media${generation ? `&generation=${encodeURIComponent(generation)}` : ''}`;
    const chunks: Buffer[] = [];
    let received = 0;
    let hashes: string | null;
    try {
      const res = await googleFetch(`${this.objectUrl(bucket, key)}?${query}`, {
        // Stored bytes as they are: a gzip-encoded object must not be inflated past the byte cap.
        headers: { ...(await this.auth.headers()), 'accept-encoding': 'identity' },
        timeoutMs: this.policy.timeoutMs,
        // Also ends a body that stalls halfway: fetch aborts the stream being read below.
        signal,
      });
      hashes = res.headers.get('x-goog-hash');
      if (res.body) {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          received += chunk.length;
          // Counted while streaming: the metadata size is authoritative, but memory must not depend on it.
          if (maxBytes !== undefined && received > maxBytes) {
            await res.body.cancel().catch(() => undefined);
            throw tooManyBytes(received, maxBytes);
          }
          chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
        }
      }
    } catch (err) {
      if (err instanceof ImageRejectedError) throw err;
      throw mapStorageError(err, 'gcs download', bucket, key);
    }
    const body = Buffer.concat(chunks, received);
    verifyHash(body, hashes, `${bucket}/${key}`);
    return body;
  }
}

/**
 * Checks the body against `x-goog-hash` (`crc32c=…,md5=…`, base64): a connection cut mid-body or a
 * corrupting proxy must not hand a truncated manifest to the parser. MD5 is absent for composite
 * objects; CRC32C is always there.
 */
function verifyHash(body: Buffer, header: string | null, what: string): void {
  if (!header) return;
  const got: Record<string, string> = {};
  for (const part of header.split(',')) {
    const i = part.indexOf('=');
    if (i > 0) got[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  let expected: string | undefined;
  let actual: string | undefined;
  if (got.md5) {
    expected = got.md5;
    actual = createHash('md5').update(body).digest('base64');
  } else if (got.crc32c) {
    expected = got.crc32c;
    const b = Buffer.alloc(4);
    b.writeUInt32BE(crc32c(body));
    actual = b.toString('base64');
  }
  if (expected !== undefined && expected !== actual) {
    throw new TransientError('storage_unavailable', `download of ${what} does not match its stored hash (${expected} ≠ ${actual})`);
  }
}
