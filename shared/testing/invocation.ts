/** Invocation contexts for tests that call a use case directly, without a handler edge. */
import { createInvocation, type OwnedInvocation } from '../invocation';
import { silentLogger } from '../logger';
import type { Logger } from '../ports';

/**
 * A context with a deadline far enough away that no test reaches it (an hour), a fixed trace id and
 * the given logger. Its deadline timer is unref'd, so an undisposed context does not keep jest alive.
 */
export function testInvocation(options: { logger?: Logger; deadlineMs?: number; now?: () => number; signal?: AbortSignal } = {}): OwnedInvocation {
  const now = options.now ?? Date.now;
  return createInvocation({
    deadline: now() + (options.deadlineMs ?? 3_600_000),
    traceId: '0af7651916cd43dd8448eb211c80319c',
    logger: options.logger ?? silentLogger,
    now,
    signal: options.signal,
  });
}
