/**
 * Fakes that behave like the cloud adapters under a fault: every call goes through `resilient()` with
 * the adapters' default policy (4 attempts, 20 s per-attempt timeout, jittered backoff), in memory, and
 * a fault rule can make an attempt hang until its signal aborts (a stalled request) or fail. Every
 * attempt that reached the fake is logged with its start and end, so tests can check that none ran
 * past a deadline and that retries of one key never overlapped.
 */
import { TransientError } from '../../shared/errors';
import type { CallOptions } from '../../shared/invocation';
import type { EventAttributes, EventPublisher, GetOptions, ListOptions, ListPage, ObjectInfo, ObjectStore, PutOptions, StoredObject } from '../../shared/ports';
import { defaultPolicy, resilient, type ResiliencePolicy } from '../../shared/resilience';
import { MemoryObjectStore } from '../../shared/testing/memory-object-store';

export type Op = 'get' | 'head' | 'put' | 'list' | 'delete' | 'publish';
/** `hang`: the attempt never answers; only its abort signal ends it. */
export type Fault = 'hang' | Error;
export type FaultRule = (op: Op, bucket: string, key: string) => Fault | undefined;

export interface AttemptRecord {
  op: Op;
  key: string;
  startedAt: number;
  endedAt?: number;
  outcome?: 'ok' | 'error';
}

/** Runs attempts through a policy, applying the fault rule and logging each attempt. */
class FaultyCalls {
  readonly attempts: AttemptRecord[] = [];
  fault: FaultRule = () => undefined;
  constructor(readonly policy: ResiliencePolicy) {}

  run<T>(op: Op, bucket: string, key: string, call: CallOptions | undefined, fn: () => Promise<T>): Promise<T> {
    return resilient(this.policy, `${op} ${key}`, (signal) => this.attempt(op, bucket, key, signal, fn), { signal: call?.signal, deadline: call?.deadline });
  }

  /** Attempts that have not ended (there must be none once a handler returned). */
  running(): AttemptRecord[] {
    return this.attempts.filter((a) => a.endedAt === undefined);
  }

  private async attempt<T>(op: Op, bucket: string, key: string, signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
    const record: AttemptRecord = { op, key, startedAt: Date.now() };
    this.attempts.push(record);
    try {
      const fault = this.fault(op, bucket, key);
      const result =
        fault === 'hang'
          ? await new Promise<T>((_, reject) => {
              const onAbort = (): void => reject(signal.reason instanceof Error ? signal.reason : new TransientError('storage_timeout', 'aborted'));
              if (signal.aborted) onAbort();
              else signal.addEventListener('abort', onAbort, { once: true });
            })
          : fault
            ? await Promise.reject(fault)
            : await fn();
      record.outcome = 'ok';
      return result;
    } catch (err) {
      record.outcome = 'error';
      throw err;
    } finally {
      record.endedAt = Date.now();
    }
  }
}

/** An {@link ObjectStore} over {@link MemoryObjectStore} with the adapters' retry policy and fault injection. */
export class FaultyStore extends FaultyCalls implements ObjectStore {
  constructor(
    readonly inner = new MemoryObjectStore(),
    policy: ResiliencePolicy = defaultPolicy('faulty-store', { random: () => 1 }),
  ) {
    super(policy);
  }

  get(bucket: string, key: string, options?: GetOptions): Promise<StoredObject> {
    return this.run('get', bucket, key, options, () => this.inner.get(bucket, key, { maxBytes: options?.maxBytes }));
  }

  head(bucket: string, key: string, options?: CallOptions): Promise<ObjectInfo | null> {
    return this.run('head', bucket, key, options, () => this.inner.head(bucket, key));
  }

  put(bucket: string, key: string, body: Buffer, options: PutOptions): Promise<ObjectInfo> {
    const { contentType, cacheControl, metadata } = options;
    return this.run('put', bucket, key, options, () => this.inner.put(bucket, key, body, { contentType, cacheControl, metadata }));
  }

  list(bucket: string, prefix: string, options?: ListOptions): Promise<ListPage> {
    return this.run('list', bucket, prefix, options, () => this.inner.list(bucket, prefix, { pageToken: options?.pageToken, pageSize: options?.pageSize }));
  }

  delete(bucket: string, key: string, options?: CallOptions): Promise<void> {
    return this.run('delete', bucket, key, options, () => this.inner.delete(bucket, key));
  }
}

/** An {@link EventPublisher} with the adapters' retry policy and fault injection (`key` is the event type). */
export class FaultyPublisher extends FaultyCalls implements EventPublisher {
  readonly messages: Array<{ body: string; attributes: EventAttributes }> = [];
  constructor(policy: ResiliencePolicy = defaultPolicy('faulty-publisher', { random: () => 1 })) {
    super(policy);
  }

  publish(body: string, attributes: EventAttributes, options?: CallOptions): Promise<string> {
    return this.run('publish', 'topic', attributes.type, options, () => {
      this.messages.push({ body, attributes });
      return Promise.resolve(String(this.messages.length));
    });
  }
}

/** True when no two attempts on the same op and key ran at the same time. */
export function attemptsOverlap(attempts: AttemptRecord[]): boolean {
  const byKey = new Map<string, AttemptRecord[]>();
  for (const a of attempts) byKey.set(`${a.op} ${a.key}`, [...(byKey.get(`${a.op} ${a.key}`) ?? []), a]);
  for (const list of byKey.values()) {
    const sorted = [...list].sort((x, y) => x.startedAt - y.startedAt);
    for (let i = 1; i < sorted.length; i++) if ((sorted[i - 1].endedAt ?? Number.POSITIVE_INFINITY) > sorted[i].startedAt) return true;
  }
  return false;
}
