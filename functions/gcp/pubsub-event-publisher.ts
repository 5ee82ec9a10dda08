/**
 * {@link EventPublisher} on Cloud Pub/Sub (`@google-cloud/pubsub` v5).
 *
 * The topic object is created once per process (it owns the batching queue and the gRPC channel) and
 * tuned for a function: one message per batch, flushed after a few milliseconds, because an
 * invocation publishes one event and must not sit waiting for a batch to fill. The library's own
 * retries are bounded so that `resilient()` — retries with jitter, timeout, circuit breaker — stays
 * the one place that decides how long a publish may take.
 */
import type { PubSub, Topic } from '@google-cloud/pubsub';
import { PixelpipeError, TransientError } from '../../shared/errors';
import type { EventAttributes, EventPublisher } from '../../shared/ports';
import { defaultPolicy, resilient, type ResiliencePolicy } from '../../shared/resilience';

export interface PubSubEventPublisherOptions {
  policy?: ResiliencePolicy;
  /** Per-RPC timeout given to the client library, ms. */
  rpcTimeoutMs?: number;
}

// gRPC status codes that say nothing about the message itself and may succeed later.
const GRPC_PERMANENT = new Set([3 /* INVALID_ARGUMENT */, 5 /* NOT_FOUND */, 7 /* PERMISSION_DENIED */, 16 /* UNAUTHENTICATED */]);

/** Publishes completion events to one Pub/Sub topic. */
export class PubSubEventPublisher implements EventPublisher {
  readonly topic: Topic;
  private readonly policy: ResiliencePolicy;

  constructor(pubsub: PubSub, topicName: string, options: PubSubEventPublisherOptions = {}) {
    this.policy = options.policy ?? defaultPolicy('pubsub', { timeoutMs: 15_000 });
    this.topic = pubsub.topic(topicName, {
      batching: { maxMessages: 1, maxMilliseconds: 5 },
      gaxOpts: { timeout: options.rpcTimeoutMs ?? 10_000, maxRetries: 1 },
    });
  }

  async publish(body: string, attributes: EventAttributes): Promise<string> {
    return resilient(this.policy, `publish to ${this.topic.name}`, async () => {
      try {
        return await this.topic.publishMessage({ data: Buffer.from(body, 'utf8'), attributes: { ...attributes } });
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        const message = err instanceof Error ? err.message : String(err);
        // A missing topic or permission is a deployment error: retrying cannot fix it.
        if (typeof code === 'number' && GRPC_PERMANENT.has(code)) {
          throw new PixelpipeError('internal', `publish to ${this.topic.name} failed: ${message}`, { retryable: false, cause: err });
        }
        throw new TransientError('publish_failed', `publish to ${this.topic.name} failed: ${message}`, err);
      }
    });
  }

  /** Flushes pending messages and closes the channel (tests, graceful shutdown). */
  async close(): Promise<void> {
    await this.topic.flush().catch(() => undefined);
  }
}
