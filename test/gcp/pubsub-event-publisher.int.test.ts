/**
 * PubSubEventPublisher against the real Pub/Sub emulator: the EventPublisher contract, attribute
 * filtering on a subscription, and completion events round-tripping through `parseCompletionEvent`
 * from a pull message and from a real push delivery.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PubSub, type Message, type Subscription } from '@google-cloud/pubsub';
import { NO_AUTH } from '../../functions/gcp/google-auth';
import { PubSubEventPublisher } from '../../functions/gcp/pubsub-event-publisher';
import { buildCompletionEvent, EVENT_TYPES, parseCompletionEvent } from '../../shared/events';
import type { Manifest } from '../../shared/manifest';
import { defaultPolicy } from '../../shared/resilience';
import { eventPublisherContract } from '../contracts/event-publisher.contract';
import { pubsubEmulatorMissing, startPubsubEmulator, type PubsubEmulator } from '../servers/pubsub-emulator';
import { applyEnv } from './gcp-test-kit';

process.env.METADATA_SERVER_DETECTION = 'none';
jest.setTimeout(90_000);

const missing = pubsubEmulatorMissing();
if (missing && process.env.CI !== 'true') console.warn(`\n*** SKIPPING Pub/Sub emulator tests: ${missing} ***\n`);
const describeIf = missing && process.env.CI !== 'true' ? describe.skip : describe;

let emulator: PubsubEmulator | null = null;
let restoreEnv: () => void = () => undefined;
let seq = 0;
const unique = (p: string) => `${p}-${Date.now().toString(36)}-${++seq}`;

beforeAll(async () => {
  if (describeIf === describe.skip) return;
  emulator = await startPubsubEmulator();
  restoreEnv = applyEnv({ PUBSUB_EMULATOR_HOST: emulator!.host });
}, 90_000);
afterAll(async () => {
  await emulator?.stop();
  restoreEnv();
});

const client = () => new PubSub({ projectId: emulator!.projectId });
/** The production adapter, pointed at the emulator (which takes no credentials). */
const restPublisher = (topic: string) =>
  new PubSubEventPublisher(NO_AUTH, `projects/${emulator!.projectId}/topics/${topic}`, { endpoint: `http://${emulator!.host}`, policy: fastPolicy() });
const fastPolicy = () => defaultPolicy('pubsub-test', { attempts: 3, baseDelayMs: 10, maxDelayMs: 100, timeoutMs: 10_000 });

/** Buffers everything a subscription delivers (acking it), and hands out messages in arrival order. */
function collector(sub: Subscription) {
  const got: Message[] = [];
  sub.on('message', (m: Message) => {
    got.push(m);
    m.ack();
  });
  sub.on('error', () => undefined);
  let read = 0;
  return {
    all: got,
    async next(count: number, timeoutMs: number): Promise<Message[]> {
      const deadline = Date.now() + timeoutMs;
      while (got.length - read < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
      if (got.length - read < count) throw new Error(`expected ${count} messages, got ${got.length - read} within ${timeoutMs} ms`);
      const out = got.slice(read, read + count);
      read += count;
      return out;
    },
  };
}

function manifest(status: 'processed' | 'failed', id: string): Manifest {
  return {
    schemaVersion: 1,
    id,
    owner: 'alice',
    status,
    ...(status === 'failed' ? { reason: { code: 'corrupt_image' as const, message: 'not an image' } } : {}),
    source: { bucket: 'pixelpipe-originals', key: `originals/alice/${id}`, generation: '1700000000000001', contentType: 'image/jpeg', bytes: 1234 },
    variants:
      status === 'processed'
        ? [{ name: 'thumb', format: 'webp', key: `variants/${id}/thumb.webp`, contentType: 'image/webp', width: 200, height: 200, bytes: 999 }]
        : [],
    placeholder: null,
    bucket: 'pixelpipe-variants',
    traceId: '0123456789abcdef0123456789abcdef',
    attempts: 1,
    createdAt: '2026-01-01T00:00:00.000Z',
    durationMs: 42,
  };
}

/**
 * Evaluates the subset of the Pub/Sub filter language subscribers of this pipeline use:
 * `attributes.<name> = "<value>"`, `!=`, and `hasPrefix(attributes.<name>, "<prefix>")`, joined by AND.
 */
function matchesFilter(filter: string, attributes: Record<string, string>): boolean {
  return filter.split(/\s+AND\s+/).every((clause) => {
    const eq = /^attributes\.([A-Za-z0-9_-]+)\s*(=|!=)\s*"([^"]*)"$/.exec(clause.trim());
    if (eq) return (attributes[eq[1]] === eq[3]) === (eq[2] === '=');
    const prefix = /^hasPrefix\(attributes\.([A-Za-z0-9_-]+),\s*"([^"]*)"\)$/.exec(clause.trim());
    if (prefix) return (attributes[prefix[1]] ?? '').startsWith(prefix[2]);
    throw new Error(`unsupported filter clause: ${clause}`);
  });
}

describeIf('Pub/Sub emulator', () => {
  eventPublisherContract('Pub/Sub (emulator)', async () => {
    const ps = client();
    const [topic] = await ps.createTopic(unique('contract'));
    const [sub] = await topic.createSubscription(unique('contract-sub'));
    const c = collector(sub);
    const publisher = restPublisher(topic.name.split('/').pop()!);
    return {
      publisher,
      async receive(count, timeoutMs) {
        const msgs = await c.next(count, timeoutMs);
        return msgs.map((m) => ({ body: m.data.toString('utf8'), attributes: { ...m.attributes } }));
      },
      close: async () => {
        await sub.close();
        await ps.close();
      },
    };
  });

  describe('subscriptions and envelopes', () => {
    let ps: PubSub;
    let topicName: string;
    let publisher: PubSubEventPublisher;
    let pushServer: Server | undefined;
    beforeAll(async () => {
      ps = client();
      topicName = unique('events');
      await ps.createTopic(topicName);
      publisher = restPublisher(topicName);
    });
    afterAll(async () => {
      pushServer?.closeAllConnections();
      pushServer?.close();
      await ps.close();
    });

    test('a subscription filtered on attributes.status receives only failed events', async () => {
      const filter = 'attributes.status = "failed"';
      const [failedOnly] = await ps.topic(topicName).createSubscription(unique('failed-only'), { filter });
      const [everything] = await ps.topic(topicName).createSubscription(unique('all'));
      const failed = collector(failedOnly);
      const all = collector(everything);
      try {
        expect((await failedOnly.getMetadata())[0].filter).toBe(filter);
        for (const [i, status] of (['processed', 'failed', 'processed', 'failed'] as const).entries()) {
          const { event, attributes } = buildCompletionEvent(manifest(status, `00000000-0000-4000-8000-00000000000${i}`), '//pixelpipe/test', new Date());
          await publisher.publish(JSON.stringify(event), attributes);
        }
        const published = await all.next(4, 15_000);
        await failed.next(2, 15_000);
        // Give a wrongly delivered message time to show up before judging.
        await new Promise((r) => setTimeout(r, 500));
        const expected = published.filter((m) => matchesFilter(filter, m.attributes));
        expect(expected.map((m) => m.attributes.status)).toEqual(['failed', 'failed']);
        expect(expected.every((m) => m.attributes.type === EVENT_TYPES.failed)).toBe(true);
        if (failed.all.length === 2) {
          expect(failed.all.map((m) => m.attributes.imageId).sort()).toEqual(expected.map((m) => m.attributes.imageId).sort());
        } else {
          // The emulator (0.8.x) stores subscription filters but does not apply them; the attributes were
          // checked against the filter's semantics above instead. Real Pub/Sub applies it server-side.
          console.warn(
            `Pub/Sub emulator ignored the subscription filter (delivered ${failed.all.length} of 4); verified the attributes against the filter locally.`,
          );
          expect(failed.all).toHaveLength(4);
        }
      } finally {
        await failedOnly.close();
        await everything.close();
      }
    });

    test('a completion event round-trips through parseCompletionEvent from a pull message', async () => {
      const [sub] = await ps.topic(topicName).createSubscription(unique('pull'));
      const c = collector(sub);
      const m = manifest('processed', '00000000-0000-4000-8000-0000000000aa');
      const { event, attributes } = buildCompletionEvent(m, '//pixelpipe/test', new Date('2026-01-01T00:00:01Z'));
      await publisher.publish(JSON.stringify(event), attributes);
      const [msg] = await c.next(1, 15_000);
      expect(parseCompletionEvent(msg)).toEqual(event);
      expect(msg.attributes).toEqual(attributes);
      await sub.close();
    });

    test('a completion event round-trips through parseCompletionEvent from a real push delivery', async () => {
      const bodies: unknown[] = [];
      pushServer = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          bodies.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
          res.writeHead(204);
          res.end();
        });
      });
      await new Promise<void>((r) => pushServer!.listen(0, '127.0.0.1', () => r()));
      const port = (pushServer.address() as AddressInfo).port;
      await ps.topic(topicName).createSubscription(unique('push'), { pushConfig: { pushEndpoint: `http://127.0.0.1:${port}/push` } });
      const m = manifest('failed', '00000000-0000-4000-8000-0000000000bb');
      const { event, attributes } = buildCompletionEvent(m, '//pixelpipe/test', new Date('2026-01-01T00:00:02Z'));
      await publisher.publish(JSON.stringify(event), attributes);
      const deadline = Date.now() + 20_000;
      while (!bodies.some((b) => (b as { message?: { attributes?: Record<string, string> } }).message?.attributes?.imageId === m.id) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      const body = bodies.find((b) => (b as { message?: { attributes?: Record<string, string> } }).message?.attributes?.imageId === m.id) as {
        message: { data: string; attributes: Record<string, string> };
        subscription: string;
      };
      expect(body).toBeDefined();
      expect(body.subscription).toMatch(/subscriptions\/push-/);
      expect(parseCompletionEvent(body)).toEqual(event);
      expect(body.message.attributes).toEqual(attributes);
    });

    test('publishing to a topic that does not exist is a permanent error', async () => {
      const p = restPublisher(unique('no-such-topic'));
      await expect(p.publish('{}', { type: 't', imageId: 'i', owner: 'o', status: 'processed' })).rejects.toMatchObject({ retryable: false });
    });
  });
});
