/**
 * The invocation context: what a handler knows about the one invocation it serves (when the platform
 * will end it, how to cancel what it started, which trace it belongs to, where to log), built once at
 * the edge and handed to the use case, which passes {@link CallOptions} on to every port call.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from './ports';

/** Options every port method that does I/O accepts. */
export interface CallOptions {
  /** Aborts the underlying request (socket closed, stream destroyed), not only the wait for it. */
  signal?: AbortSignal;
  /**
   * Epoch milliseconds after which the call must not be running: no attempt and no backoff sleep is
   * started that would end past it, and each attempt's timeout is cut to fit before it.
   */
  deadline?: number;
}

/** One invocation of a function, as the use cases see it. */
export interface Invocation {
  /** Epoch milliseconds at which the platform ends (kills or freezes) the invocation. */
  readonly deadline: number;
  /** Aborted once the deadline has passed or the platform cancelled the invocation. */
  readonly signal: AbortSignal;
  /** Correlates the log lines, manifests and events of one image across functions. */
  readonly traceId: string;
  readonly logger: Logger;
  /** Current time in epoch milliseconds, from the same clock the deadline was computed with. */
  now(): number;
}

export interface InvocationInit {
  /** Epoch milliseconds at which the platform ends the invocation. */
  deadline: number;
  traceId: string;
  logger: Logger;
  /** The platform's own cancellation (e.g. a closed HTTP request), if it has one. */
  signal?: AbortSignal;
  now?: () => number;
}

/** An {@link Invocation} plus the timer that aborts it at its deadline; `dispose()` when the invocation ends. */
export interface OwnedInvocation extends Invocation {
  dispose(): void;
}

/**
 * Builds the context for one invocation. Its signal aborts at the deadline (a timer, cleared by
 * `dispose`) or when `init.signal` aborts, whichever comes first.
 */
export function createInvocation(init: InvocationInit): OwnedInvocation {
  const now = init.now ?? Date.now;
  const controller = new AbortController();
  const onParentAbort = (): void => controller.abort(init.signal?.reason);
  if (init.signal?.aborted) onParentAbort();
  else init.signal?.addEventListener('abort', onParentAbort, { once: true });
  const ms = init.deadline - now();
  const timer =
    ms <= 0 ? undefined : setTimeout(() => controller.abort(new DOMException(`invocation deadline passed`, 'TimeoutError')), Math.min(ms, 2 ** 31 - 1));
  timer?.unref?.();
  if (ms <= 0 && !controller.signal.aborted) controller.abort(new DOMException(`invocation deadline passed`, 'TimeoutError'));
  return {
    deadline: init.deadline,
    signal: controller.signal,
    traceId: init.traceId,
    logger: init.logger,
    now,
    dispose() {
      clearTimeout(timer);
      init.signal?.removeEventListener('abort', onParentAbort);
    },
  };
}

/**
 * The options for a port call made on behalf of `inv` that must be over `reserveMs` before the
 * invocation's deadline (the time kept back for recording the outcome).
 */
export function callOptions(inv: Invocation, reserveMs = 0): CallOptions {
  return { signal: inv.signal, deadline: inv.deadline - reserveMs };
}

/** Milliseconds left before the invocation's deadline (negative once it passed). */
export function remainingMs(inv: Invocation): number {
  return inv.deadline - inv.now();
}

/** A fresh W3C-style trace id (32 lower-case hex digits) for an invocation whose trigger carried none. */
export function newTraceId(): string {
  return randomBytes(16).toString('hex');
}

/** `value` when it is a trace id as the pipeline writes them (32 hex digits, not all zero), else `undefined`. */
export function validTraceId(value: unknown): string | undefined {
  return typeof value === 'string' && /^[0-9a-f]{32}$/.test(value) && !/^0+$/.test(value) ? value : undefined;
}

/**
 * A context for one piece of work inside a longer run (one image of a backfill): it ends at
 * `timeoutMs` from now or at the parent's deadline, whichever is first, and is cancelled with the parent.
 */
export function childInvocation(parent: Invocation, init: { timeoutMs: number; traceId?: string; logger?: Logger }): OwnedInvocation {
  return createInvocation({
    deadline: Math.min(parent.deadline, parent.now() + init.timeoutMs),
    traceId: init.traceId ?? parent.traceId,
    logger: init.logger ?? parent.logger,
    signal: parent.signal,
    now: () => parent.now(),
  });
}

/**
 * Runs `fn` with a context built by `createInvocation(init)` and disposes of it (its deadline timer)
 * however `fn` ends: the edge of every handler.
 */
export async function withInvocation<T>(init: InvocationInit, fn: (inv: Invocation) => Promise<T>): Promise<T> {
  const inv = createInvocation(init);
  try {
    return await fn(inv);
  } finally {
    inv.dispose();
  }
}
