/**
 * In-memory {@link ObjectStore}: the unit-test fake, and the store behind the CLI's `process` command.
 * It keeps the same semantics as the cloud adapters (generations change on overwrite, `maxBytes` is
 * enforced, listing is paged in key order, an aborted `signal` rejects with a retryable error and
 * changes nothing), which the shared contract suite checks.
 */
import { ImageRejectedError, ObjectNotFoundError } from '../errors';
import type { CallOptions, GetOptions, ListOptions, ListPage, ObjectInfo, ObjectStore, PutOptions, StoredObject } from '../ports';
import { cancelled } from '../resilience';

type Op = 'get' | 'head' | 'put' | 'list' | 'delete';

/** One call as the store saw it. */
export interface MemoryCall {
  op: Op;
  bucket: string;
  key: string;
}

interface Entry {
  info: ObjectInfo;
  body: Buffer;
}

export class MemoryObjectStore implements ObjectStore {
  private readonly objects = new Map<string, Entry>();
  private generation = 1_000_000;
  /** Every call, in order; tests assert on reads and writes (e.g. "the original is read once"). */
  readonly calls: MemoryCall[] = [];
  /** Calls that ended because their signal aborted (before or while `hold` kept them waiting); they changed nothing. */
  readonly cancelledCalls: MemoryCall[] = [];
  /** Called after every put, like a storage notification would be. */
  onPut?: (info: ObjectInfo) => void;
  /**
   * Makes a call wait (a slow storage) before it takes effect: the call proceeds when the returned
   * promise resolves, or ends with the signal's retryable error, having changed nothing, if its
   * signal aborts first. Returning `undefined` lets the call through at once.
   */
  hold?: (call: MemoryCall) => Promise<void> | undefined;

  async get(bucket: string, key: string, options: GetOptions = {}): Promise<StoredObject> {
    await this.enter({ op: 'get', bucket, key }, options);
    const e = this.objects.get(id(bucket, key));
    if (!e) throw new ObjectNotFoundError(bucket, key);
    if (options.maxBytes !== undefined && e.body.length > options.maxBytes) {
      throw new ImageRejectedError('too_many_bytes', `object has ${e.body.length} bytes; the limit is ${options.maxBytes}`);
    }
    return { ...clone(e.info), body: Buffer.from(e.body) };
  }

  async head(bucket: string, key: string, options: CallOptions = {}): Promise<ObjectInfo | null> {
    await this.enter({ op: 'head', bucket, key }, options);
    const e = this.objects.get(id(bucket, key));
    return e ? clone(e.info) : null;
  }

  async put(bucket: string, key: string, body: Buffer, options: PutOptions): Promise<ObjectInfo> {
    await this.enter({ op: 'put', bucket, key }, options);
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

  async list(bucket: string, prefix: string, options: ListOptions = {}): Promise<ListPage> {
    await this.enter({ op: 'list', bucket, key: prefix }, options);
    const size = options.pageSize ?? 1000;
    const keys = [...this.objects.values()]
      .filter((e) => e.info.bucket === bucket && e.info.key.startsWith(prefix) && (options.startAfter === undefined || e.info.key > options.startAfter))
      .map((e) => e.info.key)
      .sort();
    const start = options.pageToken ? keys.findIndex((k) => k > options.pageToken!) : 0;
    const page = start < 0 ? [] : keys.slice(start, start + size);
    const items = page.map((k) => clone(this.objects.get(id(bucket, k))!.info));
    const more = start >= 0 && start + size < keys.length;
    return { items, ...(more ? { nextPageToken: page[page.length - 1] } : {}) };
  }

  async delete(bucket: string, key: string, options: CallOptions = {}): Promise<void> {
    await this.enter({ op: 'delete', bucket, key }, options);
    this.objects.delete(id(bucket, key));
  }

  /** Records the call, then lets it through unless its signal aborts first (see {@link hold}). */
  private async enter(call: MemoryCall, options: CallOptions): Promise<void> {
    this.calls.push(call);
    const signal = options.signal;
    const refuse = (): never => {
      this.cancelledCalls.push(call);
      throw cancelled(signal, `memory ${call.op} ${call.bucket}/${call.key}`);
    };
    if (signal?.aborted) refuse();
    const held = this.hold?.(call);
    if (!held) return;
    if (!signal) return held;
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<'aborted'>((resolve) => {
      onAbort = () => resolve('aborted');
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      if ((await Promise.race([held.then(() => 'released' as const), aborted])) === 'aborted') refuse();
    } finally {
      signal.removeEventListener('abort', onAbort!);
    }
    // Released and aborted in the same turn: the abort wins, as a cancelled request would not land.
    if (signal.aborted) refuse();
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
