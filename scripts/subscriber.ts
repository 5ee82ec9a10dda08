/**
 * Example subscriber: pulls completion events from a Pub/Sub subscription (the emulator that
 * `npm run dev` starts, or a real project), validates each with `parseCompletionEvent`, drops
 * duplicates by CloudEvent id (delivery is at-least-once and the id is deterministic), and prints it.
 *
 *   PUBSUB_EMULATOR_HOST=127.0.0.1:8085 npm run subscriber
 *   npm run subscriber -- --filter 'attributes.status = "failed"' --json
 *
 * Options: --topic (PIXELPIPE_TOPIC, pixelpipe-events), --subscription (pixelpipe-subscriber-example,
 * created when missing, with --filter if given), --project (PUBSUB_PROJECT_ID / GOOGLE_CLOUD_PROJECT,
 * pixelpipe-dev on the emulator), --json (one event per line), --max N (exit 0 after N distinct events).
 */
import { parseArgs } from 'node:util';
import { PubSub, type Message } from '@google-cloud/pubsub';
import { EVENT_TYPES, parseCompletionEvent, type CompletionEvent } from '../shared/events';

const NOT_FOUND = 5;
const ALREADY_EXISTS = 6;

/** The last `capacity` ids seen: enough to catch redeliveries, bounded for a long-running process. */
class RecentIds {
  private readonly ids = new Set<string>();
  constructor(private readonly capacity: number) {}
  /** True the first time `id` is seen. */
  add(id: string): boolean {
    if (this.ids.has(id)) return false;
    this.ids.add(id);
    if (this.ids.size > this.capacity) this.ids.delete(this.ids.values().next().value as string);
    return true;
  }
}

function describe(e: CompletionEvent): string {
  if (e.type === EVENT_TYPES.deleted) return `DELETED    ${e.data.id}  ${e.data.source.key}  at ${e.data.deletedAt}`;
  const m = e.data;
  const name = m.source.filename ?? m.source.key;
  if (m.status === 'failed') return `FAILED     ${m.id}  ${name}  ${m.reason?.code ?? 'unknown'}: ${m.reason?.message ?? ''}`;
  const size = m.source.width && m.source.height ? `${m.source.width}×${m.source.height}` : '';
  const variants = m.variants.map((v) => `${v.name}.${v.format} ${v.width}×${v.height} ${v.bytes} B`).join(', ');
  return `PROCESSED  ${m.id}  ${name}  ${size}  ${Math.round(m.durationMs)} ms  ${m.variants.length} variants: ${variants}`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      topic: { type: 'string' },
      subscription: { type: 'string', default: 'pixelpipe-subscriber-example' },
      project: { type: 'string' },
      filter: { type: 'string' },
      json: { type: 'boolean', default: false },
      max: { type: 'string' },
    },
  });
  const emulator = process.env.PUBSUB_EMULATOR_HOST;
  const projectId = values.project ?? process.env.PUBSUB_PROJECT_ID ?? process.env.GOOGLE_CLOUD_PROJECT ?? (emulator ? 'pixelpipe-dev' : undefined);
  if (!projectId) {
    console.error('set PUBSUB_EMULATOR_HOST (printed by `npm run dev`) or GOOGLE_CLOUD_PROJECT / --project for a real project');
    process.exit(2);
  }
  if (emulator) process.env.METADATA_SERVER_DETECTION ??= 'none';
  const topicName = values.topic ?? process.env.PIXELPIPE_TOPIC ?? 'pixelpipe-events';
  const max = values.max === undefined ? Infinity : Number(values.max);
  const pubsub = new PubSub({ projectId });

  let subscription = pubsub.subscription(values.subscription);
  const [exists] = await subscription.exists().catch((err: { code?: number }) => {
    if (err?.code === NOT_FOUND) return [false];
    throw err;
  });
  if (!exists) {
    try {
      [subscription] = await pubsub.topic(topicName).createSubscription(values.subscription, values.filter ? { filter: values.filter } : {});
    } catch (err) {
      const code = (err as { code?: number }).code;
      if (code === NOT_FOUND) throw new Error(`topic ${topicName} does not exist in ${projectId}: start \`npm run dev\` first (it creates the topic)`);
      if (code !== ALREADY_EXISTS) throw err;
    }
    console.error(`created subscription ${values.subscription} on topic ${topicName}${values.filter ? ` (filter: ${values.filter})` : ''}`);
  }
  console.error(`listening on projects/${projectId}/subscriptions/${values.subscription}${emulator ? ` (emulator ${emulator})` : ''}; Ctrl-C to stop`);

  const seen = new RecentIds(10_000);
  let printed = 0;
  let stopping = false;
  const stop = async (code: number) => {
    // A terminal Ctrl-C arrives twice (directly and forwarded by scripts/ts.mjs).
    if (stopping) return;
    stopping = true;
    await subscription.close().catch(() => undefined);
    await pubsub.close().catch(() => undefined);
    process.exit(code);
  };
  subscription.on('message', (message: Message) => {
    let event: CompletionEvent;
    try {
      event = parseCompletionEvent(message);
    } catch (err) {
      // Acknowledged anyway: redelivering a message that can never parse would loop forever.
      console.error(`ignoring message ${message.id}: not a valid completion event (${(err as Error).message.split('\n')[0]})`);
      message.ack();
      return;
    }
    message.ack();
    if (!seen.add(event.id)) {
      console.error(`duplicate event ${event.id} (message ${message.id}) dropped`);
      return;
    }
    console.log(values.json ? JSON.stringify(event) : describe(event));
    if (++printed >= max) void stop(0);
  });
  subscription.on('error', (err: Error) => {
    console.error(`subscription error: ${err.message}`);
    void stop(1);
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => void stop(0));
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
