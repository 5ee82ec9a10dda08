/**
 * The GCP edge: which trace id an invocation gets from the CloudEvent it serves, and the deadline the
 * event handler gives the use case (the configured function timeout from the handler's start).
 */
import { loadConfig } from '../../shared/config';
import { createLogger } from '../../shared/logger';
import type { Invocation } from '../../shared/invocation';
import { eventHandler, parseFinalizeNotification, parseStorageFinalized, type IncomingCloudEvent } from '../../functions/gcp/cloud-events';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const finalized = (metadata?: Record<string, unknown>): IncomingCloudEvent => ({
  id: 'e1',
  type: 'google.cloud.storage.object.v1.finalized',
  data: { bucket: 'b', name: 'originals/alice/x', generation: '7', ...(metadata ? { metadata } : {}) },
});
const notification = (resource: unknown): IncomingCloudEvent => ({
  id: 'e2',
  type: 'google.cloud.pubsub.topic.v1.messagePublished',
  data: {
    message: {
      attributes: { bucketId: 'b', objectId: 'manifests/x.json', objectGeneration: '3', eventType: 'OBJECT_FINALIZE' },
      data: Buffer.from(typeof resource === 'string' ? resource : JSON.stringify(resource)).toString('base64'),
    },
  },
});

describe('trace ids from GCP events', () => {
  test("a finalized event carries the object's pixelpipe-trace metadata", () => {
    expect(parseStorageFinalized(finalized({ 'pixelpipe-trace': TRACE }))).toMatchObject({ ok: true, value: { traceId: TRACE } });
  });

  test.each([['not hex'], [42], ['0'.repeat(32)], [`${TRACE}0`]])('metadata %p is not a trace id, and does not make the event invalid', (value) => {
    const parsed = parseStorageFinalized(finalized({ 'pixelpipe-trace': value }));
    expect(parsed.ok).toBe(true);
    expect(parsed.ok && parsed.value.traceId).toBeUndefined();
  });

  test("a GCS notification's JSON payload carries the manifest's metadata; a payload that is not JSON is ignored", () => {
    expect(parseFinalizeNotification(notification({ name: 'manifests/x.json', metadata: { 'pixelpipe-trace': TRACE } }))).toMatchObject({
      ok: true,
      value: { key: 'manifests/x.json', generation: '3', traceId: TRACE },
    });
    const plain = parseFinalizeNotification(notification('}{'));
    expect(plain.ok && plain.value.traceId).toBeUndefined();
  });
});

describe('eventHandler', () => {
  const config = loadConfig({ PIXELPIPE_AUTH_MODE: 'anonymous', PIXELPIPE_FUNCTION_TIMEOUT_SECONDS: '30' });

  async function invocationFor(event: IncomingCloudEvent): Promise<{ inv: Invocation; lines: Array<Record<string, unknown>> }> {
    const lines: Array<Record<string, unknown>> = [];
    let seen: Invocation | undefined;
    let t = 1_000_000;
    const handler = eventHandler({
      what: 'test',
      config,
      logger: createLogger({ sink: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) }),
      parse: parseStorageFinalized,
      now: () => t,
      run: (_ref, inv) => {
        seen = inv;
        t += 10;
        return Promise.resolve({ status: 'done' });
      },
    });
    await handler(event);
    return { inv: seen!, lines };
  }

  test('the deadline is the configured function timeout from the handler start; the trace comes from the event', async () => {
    const { inv, lines } = await invocationFor(finalized({ 'pixelpipe-trace': TRACE }));
    expect(inv.deadline).toBe(1_000_000 + 30_000);
    expect(inv.traceId).toBe(TRACE);
    expect(inv.signal.aborted).toBe(false);
    expect(lines.find((l) => l.message === 'test outcome: done')).toMatchObject({ traceId: TRACE, eventId: 'e1' });
  });

  test("without metadata the CloudEvent's traceparent is used, else a fresh id", async () => {
    const withParent = await invocationFor({ ...finalized(), traceparent: `00-${TRACE}-00f067aa0ba902b7-01` });
    expect(withParent.inv.traceId).toBe(TRACE);
    const a = await invocationFor(finalized());
    const b = await invocationFor(finalized());
    expect(a.inv.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(a.inv.traceId).not.toBe(b.inv.traceId);
  });
});
