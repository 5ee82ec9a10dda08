/**
 * The invocation context of one Lambda invocation: the deadline is what Lambda says is left
 * (`context.getRemainingTimeInMillis()`); without a Lambda context (the dev stack, tests that call the
 * handler directly) it is the configured function timeout.
 */
import type { PixelpipeConfig } from '../../shared/config';
import { newTraceId, type InvocationInit } from '../../shared/invocation';
import type { Logger } from '../../shared/ports';

/** The part of Lambda's context object the handlers use. */
export interface LambdaContext {
  getRemainingTimeInMillis(): number;
  awsRequestId?: string;
}

/** What a Lambda handler factory needs on top of its use case's dependencies. */
export interface LambdaEdgeDeps {
  config: PixelpipeConfig;
  /** The function's root logger; each invocation logs through a child with its trace and request id. */
  logger: Logger;
  /** Epoch milliseconds; injectable so tests control the deadline. Defaults to `Date.now`. */
  now?: () => number;
}

/**
 * The {@link InvocationInit} for one invocation. `traceId`: the caller's (HTTP requests carry one); S3
 * events carry none, so a fresh one is made.
 */
export function lambdaInvocationInit(deps: LambdaEdgeDeps, context: LambdaContext | undefined, traceId = newTraceId()): InvocationInit {
  const now = deps.now ?? Date.now;
  const remaining = context ? context.getRemainingTimeInMillis() : deps.config.invocation.timeoutSeconds * 1000;
  return {
    deadline: now() + remaining,
    traceId,
    logger: deps.logger.child({ traceId, ...(context?.awsRequestId ? { awsRequestId: context.awsRequestId } : {}) }),
    now,
  };
}
