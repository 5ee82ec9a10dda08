/**
 * The completion-event channel of the dev stack: the notifier publishes into it, and the dev server
 * subscribes to it to feed the page's Server-Sent Events. Two implementations: the real Pub/Sub
 * emulator (`pubsub-event-channel.ts`) and an in-process one ({@link EmbeddedEventChannel}).
 */
import { randomUUID } from 'node:crypto';
import type { CallOptions, EventAttributes, EventPublisher, Logger } from '../../shared/ports';
import { cancelled } from '../../shared/resilience';

/** One delivered message, shaped like a Pub/Sub pull message so `parseCompletionEvent` takes it as is. */
export interface ChannelMessage {
  id: string;
  data: Buffer;
  attributes: Record<string, string>;
}

/** A publisher plus a subscription on the same topic. */
export interface EventChannel {
  /** What the banner shows, e.g. `Pub/Sub emulator 127.0.0.1:8085, topic …`. */
  readonly description: string;
  readonly kind: 'pubsub' | 'embedded';
  readonly publisher: EventPublisher;
  /** Receives every message published from now on; messages are acknowledged after `listener` returns. */
  subscribe(listener: (message: ChannelMessage) => void): void;
  close(): Promise<void>;
}

/**
 * An in-process topic with one implicit subscription: delivery is asynchronous (after `publish`
 * resolves, as with a broker), in publish order, to every listener. Used when no Pub/Sub emulator is
 * available; it implements the same `EventPublisher` port as the cloud adapters.
 */
export class EmbeddedEventChannel implements EventChannel, EventPublisher {
  readonly kind = 'embedded' as const;
  readonly description = 'embedded in-process channel (no Pub/Sub emulator)';
  private readonly listeners: Array<(m: ChannelMessage) => void> = [];
  private closed = false;

  constructor(private readonly logger?: Logger) {}

  get publisher(): EventPublisher {
    return this;
  }

  publish(body: string, attributes: EventAttributes, options: CallOptions = {}): Promise<string> {
    // Delivery is in-process and immediate, so only a call that is already cancelled can be refused.
    if (options.signal?.aborted) return Promise.reject(cancelled(options.signal, 'embedded publish'));
    if (this.closed) return Promise.reject(new Error('event channel is closed'));
    const message: ChannelMessage = { id: randomUUID(), data: Buffer.from(body, 'utf8'), attributes: { ...attributes } };
    setImmediate(() => {
      for (const l of this.listeners) {
        // One failing subscriber must not starve the others, as with independent subscriptions.
        try {
          l(message);
        } catch (err) {
          this.logger?.error('event subscriber failed', { err, messageId: message.id });
        }
      }
    });
    return Promise.resolve(message.id);
  }

  subscribe(listener: (message: ChannelMessage) => void): void {
    this.listeners.push(listener);
  }

  close(): Promise<void> {
    this.closed = true;
    this.listeners.length = 0;
    return Promise.resolve();
  }
}
