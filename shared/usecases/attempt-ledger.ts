/**
 * The attempt ledger: how many times the platform has delivered one generation of an original
 * (`state/<id>/<generation>.attempts`), and the decisions that hang on it — the poison-object budget
 * and, on a transient fault, whether to give up now or record the attempt and ask for a retry.
 *
 * It also holds the lease of an attempt in progress (`state/<id>/<generation>.lease`, see
 * {@link takeLease}): the delete cascade waits while one is live, which is what lets the processor run
 * without any delete permission (delete-image.ts has the whole argument).
 *
 * Deadlines: the ledger is read with the options for normal work (`work`, which end the reserve before
 * the invocation's deadline); the attempt record and the give-up manifest are written under whatever
 * time remains, which is what the reserve is kept for.
 */
import type { PixelpipeConfig } from '../config';
import { ImageRejectedError, ObjectNotFoundError, PixelpipeError, isRetryable } from '../errors';
import { callOptions, type CallOptions, type Invocation } from '../invocation';
import { attemptsKey, isLeaseKey, leaseKey } from '../keys';
import type { Logger, ObjectStore } from '../ports';

/** What the ledger needs to know about one delivery. */
export interface LedgerContext {
  store: ObjectStore;
  config: PixelpipeConfig;
  inv: Invocation;
  log: Logger;
  /** Options for normal work: they end `config.invocation.reserveMs` before the deadline. */
  work: CallOptions;
  imageId: string;
  event: { bucket: string; key: string; generation?: string; eventTime?: Date };
}

/** This delivery's place in the budget. */
export interface Attempt {
  /** 1 for the first delivery of a generation (and always 1 when the event names no generation). */
  number: number;
  /** Set when the budget (attempts or event age) is spent: the image must end `failed` now. */
  exhausted?: ImageRejectedError;
}

/**
 * Counts this delivery: reads how many attempts were recorded for the event's generation and checks
 * the attempt budget and the event's age (measured at `nowMs`). Transient read failures are thrown.
 */
export async function beginAttempt(ctx: LedgerContext, nowMs: number): Promise<Attempt> {
  const { event, config } = ctx;
  if (event.generation === undefined) return { number: 1 };
  const number = (await readAttempts(ctx, event.generation)) + 1;
  const ageSeconds = event.eventTime ? (nowMs - event.eventTime.getTime()) / 1000 : 0;
  if (number > config.retry.maxAttempts || ageSeconds > config.retry.maxEventAgeSeconds) {
    return { number, exhausted: new ImageRejectedError('retries_exhausted', `gave up after ${number - 1} attempts over ${Math.round(ageSeconds)} s`) };
  }
  return { number };
}

/** What {@link giveUpOrRethrow} needs on top of the ledger. */
export interface GiveUpContext<T> extends LedgerContext {
  attempt: number;
  /** Ends the image with `rejected` (writes the failed manifest) under the remaining time. */
  fail: (rejected: ImageRejectedError) => Promise<T>;
}

/**
 * A transient fault: on the last allowed attempt the image ends `failed` (retries_exhausted) now, so the
 * platform's final retry leaves a manifest and a failure event behind; otherwise (or when even that
 * write fails) the attempt is recorded and the error rethrown for a platform retry.
 */
export async function giveUpOrRethrow<T>(ctx: GiveUpContext<T>, err: unknown): Promise<T> {
  if (isRetryable(err) && ctx.event.generation !== undefined && ctx.attempt >= ctx.config.retry.maxAttempts) {
    try {
      return await ctx.fail(
        new ImageRejectedError('retries_exhausted', `gave up after ${ctx.attempt} attempts: ${err instanceof Error ? err.message : String(err)}`),
      );
    } catch (failErr) {
      // Storage is still down: the next delivery finds the budget spent and writes the manifest then.
      ctx.log.warn('could not write the failed manifest on the last attempt', { err: failErr });
    }
  }
  throw await recordAttempt(ctx, ctx.attempt, err);
}

/**
 * Logs the fault and records the attempt under the time that is left (best effort), then returns
 * `err` for the caller to throw.
 */
export async function recordAttempt(ctx: LedgerContext, attempt: number, err: unknown): Promise<unknown> {
  const { log, event, config } = ctx;
  log.error('transient failure; the platform will retry', {
    err,
    attempt,
    reason: err instanceof PixelpipeError ? err.code : 'internal',
    retryable: isRetryable(err),
  });
  if (event.generation !== undefined) {
    try {
      await ctx.store.put(config.buckets.variants, attemptsKey(config.layout, ctx.imageId, event.generation), Buffer.from(String(attempt)), {
        contentType: 'text/plain',
        cacheControl: 'no-store',
        ...callOptions(ctx.inv),
      });
    } catch (counterErr) {
      // Counting is best effort: the event-age cap still ends a poison object if storage stays down.
      log.warn('could not record the attempt', { err: counterErr });
    }
  }
  return err;
}

async function readAttempts(ctx: LedgerContext, generation: string): Promise<number> {
  try {
    const key = attemptsKey(ctx.config.layout, ctx.imageId, generation);
    const obj = await ctx.store.get(ctx.config.buckets.variants, key, { maxBytes: 64, ...ctx.work });
    const n = Number.parseInt(obj.body.toString('utf8'), 10);
    return Number.isFinite(n) && n >= 0 ? n : 0;
  } catch (err) {
    if (err instanceof ObjectNotFoundError) return 0;
    throw err;
  }
}

/** What a lease object holds: until when (epoch ms) its attempt may still write. `0`: released. */
interface Lease {
  until: number;
}

/**
 * Announces an attempt in progress: written before the original is read, it lasts until the
 * invocation's deadline (after which the platform has ended the attempt, finished or not). A transient
 * write failure is thrown: processing without a lease could outlive a concurrent cascade.
 */
export async function takeLease(ctx: LedgerContext): Promise<void> {
  await writeLease(ctx, { until: ctx.inv.deadline }, ctx.work);
}

/**
 * Ends the lease once the attempt wrote its last object (or gave up), so a waiting cascade can run at
 * its next retry. Best effort under the remaining time: an unreleased lease only delays the cascade
 * until the deadline it names.
 */
export async function releaseLease(ctx: LedgerContext): Promise<void> {
  try {
    await writeLease(ctx, { until: 0 }, callOptions(ctx.inv));
  } catch (err) {
    ctx.log.warn('could not release the processing lease; a deletion waits until it expires', { err });
  }
}

async function writeLease(ctx: LedgerContext, lease: Lease, call: CallOptions): Promise<void> {
  const key = leaseKey(ctx.config.layout, ctx.imageId, ctx.event.generation);
  await ctx.store.put(ctx.config.buckets.variants, key, Buffer.from(JSON.stringify(lease)), {
    contentType: 'application/json',
    cacheControl: 'no-store',
    ...call,
  });
}

/**
 * The latest deadline among the image's live leases (attempts still able to write), or `null` when
 * none is live at `nowMs`. Reads the first page of `state/<id>/` (an image has a few state objects) and
 * each lease on it; a lease that cannot be parsed counts as released.
 */
export async function liveLeaseUntil(store: ObjectStore, config: PixelpipeConfig, imageId: string, nowMs: number, call: CallOptions): Promise<number | null> {
  const { items } = await store.list(config.buckets.variants, `${config.layout.state}${imageId}/`, { pageSize: 100, ...call });
  let latest: number | null = null;
  for (const o of items.filter((i) => isLeaseKey(i.key))) {
    let until = 0;
    try {
      const obj = await store.get(config.buckets.variants, o.key, { maxBytes: 256, ...call });
      const parsed = JSON.parse(obj.body.toString('utf8')) as Partial<Lease>;
      until = typeof parsed.until === 'number' && Number.isFinite(parsed.until) ? parsed.until : 0;
    } catch (err) {
      if (err instanceof PixelpipeError && err.retryable) throw err;
    }
    if (until > nowMs && (latest === null || until > latest)) latest = until;
  }
  return latest;
}
