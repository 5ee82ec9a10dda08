/**
 * In-memory {@link ObjectStore}: the unit-test fake, and the store behind the CLI's `process` command.
 * It keeps the same semantics as the cloud adapters (generations change on overwrite, `maxBytes` is
 * enforced, listing is paged in key order), which the shared contract suite checks.
 */
import { ImageRejectedError, ObjectNotFoundError } from '../errors';
import type { ListPage, ObjectInfo, ObjectStore, PutOptions, StoredObject } from '../ports';

interface Entry {
  info: ObjectInfo;
  body: Buffer;
}

export class MemoryObjectStore implements ObjectStore {
  private readonly objects = new Map<string, Entry>();
  private generation = 1_000_000;
  /** Every call, in order; tests assert on reads and writes (e.g. "the original is read once"). */
  readonly calls: Array<{ op: 'get' | 'head' | 'put' | 'list' | 'delete'; bucket: string; key: string }> = [];
  /** Called after every put, like a storage notification would be. */
  onPut?: (info: ObjectInfo) => void;

  async get(bucket: string, key: string, options: { maxBytes?: number } = {}): Promise<StoredObject> {
    this.calls.push({ op: 'get', bucket, key });
    const e = this.objects.get(id(bucket, key));
    if (!e) throw new ObjectNotFoundError(bucket, key);
    if (options.maxBytes !== undefined && e.body.length > options.maxBytes) {
      throw new ImageRejectedError('too_many_bytes', `object has ${e.body.length} bytes; the limit is ${options.maxBytes}`);
    }
    return { ...clone(e.info), body: Buffer.from(e.body) };
  }

  async head(bucket: string, key: string): Promise<ObjectInfo | null> {
    this.calls.push({ op: 'head', bucket, key });
    const e = this.objects.get(id(bucket, key));
    return e ? clone(e.info) : null;
  }

  async put(bucket: string, key: string, body: Buffer, options: PutOptions): Promise<ObjectInfo> {
    this.calls.push({ op: 'put', bucket, key });
    const info: ObjectInfo = {
      bucket,
      key,
      generation: String(++this.generation),
      size: body.length,
      contentType: options.contentType,
      cacheControl: options.cacheControl,
      metadata: { ...(options.metadata ?? {}) },
      updated: new Date(),
    };
    this.objects.set(id(bucket, key), { info, body: Buffer.from(body) });
    this.onPut?.(clone(info));
    return clone(info);
  }

  async list(bucket: string, prefix: string, options: { pageToken?: string; pageSize?: number } = {}): Promise<ListPage> {
    this.calls.push({ op: 'list', bucket, key: prefix });
    const size = options.pageSize ?? 1000;
    const keys = [...this.objects.values()]
      .filter((e) => e.info.bucket === bucket && e.info.key.startsWith(prefix))
      .map((e) => e.info.key)
      .sort();
    const start = options.pageToken ? keys.findIndex((k) => k > options.pageToken!) : 0;
    const page = start < 0 ? [] : keys.slice(start, start + size);
    const items = page.map((k) => clone(this.objects.get(id(bucket, k))!.info));
    const more = start >= 0 && start + size < keys.length;
    return { items, ...(more ? { nextPageToken: page[page.length - 1] } : {}) };
  }

  async delete(bucket: string, key: string): Promise<void> {
    this.calls.push({ op: 'delete', bucket, key });
    this.objects.delete(id(bucket, key));
  }

  /** Test helper: every key in a bucket. */
  keys(bucket: string): string[] {
    return [...this.objects.values()]
      .filter((e) => e.info.bucket === bucket)
      .map((e) => e.info.key)
      .sort();
  }
}

function id(bucket: string, key: string): string {
  return `${bucket}\u0000${key}`;
}

function clone(info: ObjectInfo): ObjectInfo {
  return { ...info, metadata: { ...info.metadata } };
}
