/**
 * Retry with exponential backoff and full jitter, bounded by a deadline, plus a circuit breaker.
 * Adapters wrap their SDK calls with these so that a flaky downstream is retried a few times within
 * the function's own timeout, and a dead one is not hammered by every concurrent invocation.
 */
import { PixelpipeError, TransientError, isRetryable } from './errors';

export interface RetryOptions {
  /** Attempts including the first. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Absolute time (ms since epoch) after which no new attempt starts. */
  deadline?: number;
  /** Classifies an error; defaults to `isRetryable`. */
  retryable?: (err: unknown) => boolean;
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

export const defaultSleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs `fn` until it succeeds, a non-retryable error occurs, attempts run out or the deadline passes. */
export async function withRetry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const retryable = options.retryable ?? isRetryable;
  const random = options.random ?? Math.random;
  const sleep = options.sleep ?? defaultSleep;
  const now = options.now ?? Date.now;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (!retryable(err) || attempt >= options.attempts) throw err;
      // Full jitter: spreads retries of many concurrent invocations instead of synchronising them.
      const cap = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** (attempt - 1));
      const delay = Math.floor(random() * cap);
      if (options.deadline !== undefined && now() + delay >= options.deadline) throw err;
      options.onRetry?.(err, attempt, delay);
      await sleep(delay);
    }
  }
}

/** Rejects with a `TransientError('storage_timeout')` when `promise` does not settle within `ms`. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new TransientError('storage_timeout', `${what} timed out after ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

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
  retry: Omit<RetryOptions, 'deadline'>;
  breaker: CircuitBreaker;
  timeoutMs: number;
}

/** Builds the default policy for one downstream. */
export function defaultPolicy(name: string, overrides: Partial<Omit<RetryOptions, 'deadline'>> & { timeoutMs?: number } = {}): ResiliencePolicy {
  const { timeoutMs, ...retry } = overrides;
  return {
    retry: { attempts: 4, baseDelayMs: 100, maxDelayMs: 2000, ...retry },
    breaker: new CircuitBreaker(name, { failureThreshold: 5, openMs: 10_000 }),
    timeoutMs: timeoutMs ?? 20_000,
  };
}

/** Runs `fn` through breaker, per-attempt timeout and retry. */
export function resilient<T>(policy: ResiliencePolicy, what: string, fn: () => Promise<T>, deadline?: number): Promise<T> {
  return withRetry(() => policy.breaker.run(() => withTimeout(fn(), policy.timeoutMs, what)), { ...policy.retry, deadline });
}
