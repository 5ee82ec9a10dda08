/**
 * The completion-event channel on a real Pub/Sub emulator: the notifier publishes through the GCP
 * adapter ({@link PubSubEventPublisher}, the production code), and a real streaming-pull subscription
 * feeds the dev server. The subscription is created per run and deleted on close, so a long-lived
 * emulator (`PUBSUB_EMULATOR_HOST`) does not collect dead subscriptions or replay old backlog.
 */
import { PubSub, type Message, type Subscription } from '@google-cloud/pubsub';
import type { Logger } from '../../shared/ports';
import { NO_AUTH } from '../gcp/google-auth';
import { PubSubEventPublisher } from '../gcp/pubsub-event-publisher';
import type { ChannelMessage, EventChannel } from './event-channel';

/** The emulator to use and the names of this run's topic and subscription. */
export interface PubSubChannelOptions {
  /** `host:port` of the emulator. */
  emulatorHost: string;
  projectId: string;
  topic: string;
  /** Name of this run's subscription. */
  subscription: string;
  logger: Logger;
  /** Extra text for the banner (e.g. "started by the dev stack"). */
  note?: string;
}

const ALREADY_EXISTS = 6;

/** Creates the topic if needed and this run's subscription; the caller must `close()` it. */
export async function openPubSubChannel(options: PubSubChannelOptions): Promise<EventChannel & { pubsub: PubSub }> {
  const pubsub = new PubSub({ projectId: options.projectId, apiEndpoint: options.emulatorHost, emulatorMode: true });
  let subscription: Subscription | undefined;
  let publisher: PubSubEventPublisher | undefined;
  try {
    await pubsub.createTopic(options.topic).catch((err: { code?: number }) => {
      if (err?.code !== ALREADY_EXISTS) throw err;
    });
    [subscription] = await pubsub.topic(options.topic).createSubscription(options.subscription, { ackDeadlineSeconds: 10 });
    publisher = new PubSubEventPublisher(NO_AUTH, `projects/${options.projectId}/topics/${options.topic}`, { endpoint: `http://${options.emulatorHost}` });
  } catch (err) {
    await pubsub.close().catch(() => undefined);
    throw new Error(`could not set up Pub/Sub topic ${options.topic} on the emulator at ${options.emulatorHost}: ${(err as Error).message}`, { cause: err });
  }
  const sub = subscription;
  const pub = publisher;
  const listeners: Array<(m: ChannelMessage) => void> = [];
  let closed = false;
  sub.on('message', (m: Message) => {
    const message: ChannelMessage = { id: m.id, data: m.data, attributes: { ...m.attributes } };
    for (const l of listeners) {
      try {
        l(message);
      } catch (err) {
        options.logger.error('event subscriber failed', { err, messageId: m.id });
      }
    }
    m.ack();
  });
  sub.on('error', (err: Error) => {
    if (!closed) options.logger.error('Pub/Sub subscription error', { err, subscription: options.subscription });
  });
  const topicPath = `projects/${options.projectId}/topics/${options.topic}`;
  return {
    kind: 'pubsub',
    description: `Pub/Sub emulator ${options.emulatorHost}${options.note ? ` (${options.note})` : ''}, topic ${topicPath}`,
    publisher: pub,
    pubsub,
    subscribe(listener) {
      listeners.push(listener);
    },
    async close() {
      if (closed) return;
      closed = true;
      listeners.length = 0;
      // Bounded: an emulator that is already gone must not hang the shutdown.
      await withDeadline(
        (async () => {
          await sub.close().catch(() => undefined);
          await sub.delete().catch(() => undefined);
          await pubsub.close().catch(() => undefined);
        })(),
        3000,
      );
    },
  };
}

async function withDeadline(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([work.catch(() => undefined), new Promise((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}
