/**
 * Retry with exponential backoff and full jitter, bounded by a deadline, plus a circuit breaker.
 * Adapters wrap their SDK calls with these so that a flaky downstream is retried a few times within
 * the function's own timeout, and a dead one is not hammered by every concurrent invocation.
 */
import { PixelpipeError, TransientError, isRetryable } from './errors';
import type { CallOptions } from './invocation';

export interface RetryOptions {
  /** Attempts including the first. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /**
   * Absolute time (ms since epoch) by which the whole call must be over: no attempt starts with less
   * than `minAttemptMs` left before it, and no backoff sleep is started that would end after
   * `deadline - minAttemptMs`. When the deadline cuts retries short the last error is rethrown.
   */
  deadline?: number;
  /** The least time worth starting an attempt with (default 50 ms). */
  minAttemptMs?: number;
  /** Aborts a backoff sleep; no attempt starts once it is aborted. */
  signal?: AbortSignal;
  /** Classifies an error; defaults to `isRetryable`. */
  retryable?: (err: unknown) => boolean;
  random?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  now?: () => number;
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as `signal` aborts. */
export const defaultSleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(cancelled(signal));
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(cancelled(signal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/** The error a call ends with when its caller's signal aborted it: retryable (the invocation ran out, not the work). */
export function cancelled(signal: AbortSignal | undefined, what = 'call'): TransientError {
  const reason: unknown = signal?.reason;
  if (reason instanceof TransientError) return reason;
  return new TransientError('deadline_exceeded', `${what} cancelled: ${reason instanceof Error ? reason.message : 'the invocation ended'}`, reason);
}

/**
 * Runs `fn` until it succeeds, a non-retryable error occurs, attempts run out, the deadline leaves no
 * room for another attempt, or the signal aborts. `fn` gets the time it may take (ms), which is what
 * is left before the deadline.
 */
export async function withRetry<T>(fn: (attempt: number, budgetMs: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const retryable = options.retryable ?? isRetryable;
  const random = options.random ?? Math.random;
  const sleep = options.sleep ?? defaultSleep;
  const now = options.now ?? Date.now;
  const minAttemptMs = options.minAttemptMs ?? 50;
  const left = (): number => (options.deadline === undefined ? Number.POSITIVE_INFINITY : options.deadline - now());
  for (let attempt = 1; ; attempt++) {
    if (options.signal?.aborted) throw cancelled(options.signal);
    if (left() < minAttemptMs) throw new TransientError('deadline_exceeded', 'no time left before the invocation deadline to start the call');
    try {
      return await fn(attempt, left());
    } catch (err) {
      if (!retryable(err) || attempt >= options.attempts || options.signal?.aborted) throw err;
      // Full jitter: spreads retries of many concurrent invocations instead of synchronising them.
      const cap = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** (attempt - 1));
      const delay = Math.floor(random() * cap);
      // A retry that could not even start before the deadline would only hide the real error.
      if (delay + minAttemptMs > left()) throw err;
      options.onRetry?.(err, attempt, delay);
      await sleep(delay, options.signal);
    }
  }
}

/**
 * Runs `fn` with a signal that aborts after `ms` or when `outer` aborts. On a timeout the request is
 * aborted (not merely abandoned) and this waits up to `settleMs` for `fn` to wind down, so a retry
 * never overlaps the attempt it replaces; then it rejects with `TransientError('storage_timeout')`.
 */
export async function withTimeout<T>(fn: (signal: AbortSignal) => Promise<T>, ms: number, what: string, outer?: AbortSignal, settleMs = 2000): Promise<T> {
  if (outer?.aborted) throw cancelled(outer, what);
  const controller = new AbortController();
  const timeoutError = new TransientError('storage_timeout', `${what} timed out after ${Math.round(ms)} ms`);
  let timer: NodeJS.Timeout | undefined;
  let onOuterAbort: (() => void) | undefined;
  const stopped = new Promise<'stopped'>((resolve) => {
    timer = setTimeout(() => {
      controller.abort(timeoutError);
      resolve('stopped');
    }, ms);
    onOuterAbort = () => {
      controller.abort(cancelled(outer, what));
      resolve('stopped');
    };
    outer?.addEventListener('abort', onOuterAbort, { once: true });
  });
  const work = fn(controller.signal);
  try {
    const first = await Promise.race([work, stopped]);
    if (first !== 'stopped' || !controller.signal.aborted) return first as T;
  } catch (err) {
    if (!controller.signal.aborted) throw err;
  } finally {
    clearTimeout(timer);
    if (onOuterAbort) outer?.removeEventListener('abort', onOuterAbort);
  }
  // Aborted: let the request wind down (sockets closed, streams destroyed) before anyone retries.
  let settleTimer: NodeJS.Timeout | undefined;
  await Promise.race([work.then(noop, noop), new Promise((r) => (settleTimer = setTimeout(r, settleMs)))]);
  clearTimeout(settleTimer);
  throw controller.signal.reason instanceof TransientError ? controller.signal.reason : timeoutError;
}

const noop = (): void => {};

export interface CircuitBreakerOptions {
  /** Consecutive retryable failures that open the circuit. */
  failureThreshold: number;
  /** How long the circuit stays open before one trial call is let through. */
  openMs: number;
  now?: () => number;
}

/**
 * Classic three-state breaker shared by all calls to one downstream within a process (warm instance).
 * Only retryable failures count: a 404 or a permission error says nothing about the downstream's health.
 */
export class CircuitBreaker {
  private failures = 0;
  private openedAt: number | null = null;
  private trialInFlight = false;
  constructor(
    readonly name: string,
    private readonly options: CircuitBreakerOptions,
  ) {}

  get state(): 'closed' | 'open' | 'half-open' {
    if (this.openedAt === null) return 'closed';
    return this.now() - this.openedAt >= this.options.openMs ? 'half-open' : 'open';
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    const state = this.state;
    if (state === 'open' || (state === 'half-open' && this.trialInFlight)) {
      throw new TransientError('circuit_open', `${this.name} is unavailable (circuit open); not calling it`);
    }
    const trial = state === 'half-open';
    if (trial) this.trialInFlight = true;
    try {
      const result = await fn();
      this.failures = 0;
      this.openedAt = null;
      return result;
    } catch (err) {
      if (isRetryable(err) && !(err instanceof PixelpipeError && err.code === 'circuit_open')) {
        this.failures++;
        if (trial || this.failures >= this.options.failureThreshold) this.openedAt = this.now();
      }
      throw err;
    } finally {
      if (trial) this.trialInFlight = false;
    }
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }
}

/** The policy adapters use by default: a few quick retries inside a breaker. */
export interface ResiliencePolicy {
  retry: Omit<RetryOptions, 'deadline' | 'signal'>;
  breaker: CircuitBreaker;
  /** Per-attempt timeout; cut to what is left before the call's deadline. */
  timeoutMs: number;
}

/** Builds the default policy for one downstream. */
export function defaultPolicy(name: string, overrides: Partial<Omit<RetryOptions, 'deadline' | 'signal'>> & { timeoutMs?: number } = {}): ResiliencePolicy {
  const { timeoutMs, ...retry } = overrides;
  return {
    retry: { attempts: 4, baseDelayMs: 100, maxDelayMs: 2000, ...retry },
    breaker: new CircuitBreaker(name, { failureThreshold: 5, openMs: 10_000 }),
    timeoutMs: timeoutMs ?? 20_000,
  };
}

/**
 * One attempt with a per-attempt timeout and a breaker that never opens: for an adapter whose caller
 * already retries and holds the breaker (the analysis stage), so that retries are not multiplied.
 */
export function singleAttempt(name: string, timeoutMs = 10_000): ResiliencePolicy {
  return {
    retry: { attempts: 1, baseDelayMs: 0, maxDelayMs: 0 },
    breaker: new CircuitBreaker(name, { failureThreshold: Number.MAX_SAFE_INTEGER, openMs: 1 }),
    timeoutMs,
  };
}

/**
 * Runs `fn` through breaker, per-attempt timeout and retry, within `call.deadline` and cancelled by
 * `call.signal`. `fn` must pass the signal it gets to the request it makes, so that a timeout or the
 * end of the invocation closes the request rather than leaving it running.
 */
export function resilient<T>(policy: ResiliencePolicy, what: string, fn: (signal: AbortSignal) => Promise<T>, call: CallOptions = {}): Promise<T> {
  const now = policy.retry.now ?? Date.now;
  return withRetry((_attempt, budgetMs) => policy.breaker.run(() => withTimeout(fn, Math.min(policy.timeoutMs, budgetMs), what, call.signal)), {
    ...policy.retry,
    deadline: call.deadline,
    signal: call.signal,
    now,
  });
}
