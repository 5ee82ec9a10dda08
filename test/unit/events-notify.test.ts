import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../shared/config';
import { PixelpipeError, TransientError } from '../../shared/errors';
import { buildCompletionEvent, completionEventId, parseCompletionEvent } from '../../shared/events';
import { silentLogger } from '../../shared/logger';
import type { Manifest } from '../../shared/manifest';
import { MemoryEventPublisher } from '../../shared/testing/fakes';
import { MemoryObjectStore } from '../../shared/testing/memory-object-store';
import { notifyCompletion } from '../../shared/usecases/notify-completion';
import { completionEventJsonSchema, SCHEMA_PATH } from '../../scripts/gen-schema';
import { testInvocation } from '../../shared/testing/invocation';

const ID = '00000000-0000-4000-8000-000000000001';
const manifest = (over: Partial<Manifest> = {}): Manifest => ({
  schemaVersion: 1,
  id: ID,
  owner: 'alice',
  status: 'processed',
  source: {
    bucket: 'pixelpipe-originals',
    key: `originals/alice/${ID}`,
    generation: '17',
    bytes: 10,
    width: 4,
    height: 3,
    contentType: 'image/jpeg',
    format: 'jpeg',
  },
  variants: [{ name: 'thumb', format: 'webp', key: `variants/${ID}/thumb.webp`, contentType: 'image/webp', width: 4, height: 3, bytes: 5 }],
  placeholder: null,
  bucket: 'pixelpipe-variants',
  traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
  attempts: 1,
  createdAt: '2026-01-01T00:00:00.000Z',
  durationMs: 12,
  ...over,
});

describe('completion event', () => {
  test('is CloudEvents 1.0 with a deterministic id and filter attributes', () => {
    const { event, attributes } = buildCompletionEvent(manifest(), '//pixelpipe', new Date('2026-01-01T00:00:00Z'));
    expect(event).toMatchObject({
      specversion: '1.0',
      type: 'pixelpipe.image.processed.v1',
      subject: ID,
      source: '//pixelpipe',
      datacontenttype: 'application/json',
      traceparent: expect.stringMatching(/^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/) as string,
      durationms: 12,
    });
    expect(attributes).toEqual({ type: 'pixelpipe.image.processed.v1', imageId: ID, owner: 'alice', status: 'processed' });
    expect(event.id).toBe(buildCompletionEvent(manifest({ durationMs: 99 }), 'x', new Date()).event.id);
    expect(event.id).not.toBe(completionEventId(manifest({ source: { ...manifest().source, generation: '18' } })));
    expect(event.id).not.toBe(completionEventId(manifest({ status: 'failed' })));
    expect(buildCompletionEvent(manifest({ status: 'failed', reason: { code: 'corrupt_image', message: 'x' } }), 's', new Date()).event.type).toBe(
      'pixelpipe.image.failed.v1',
    );
  });

  const event = buildCompletionEvent(manifest(), '//pixelpipe', new Date('2026-01-01T00:00:00Z')).event;
  const json = JSON.stringify(event);
  const sns = {
    Type: 'Notification',
    MessageId: 'm1',
    TopicArn: 'arn:aws:sns:eu-west-1:1:t',
    Message: json,
    MessageAttributes: { type: { Type: 'String', Value: event.type } },
  };
  test.each([
    ['the object', event],
    ['JSON text', json],
    ['a Buffer', Buffer.from(json)],
    ['a Pub/Sub pull message', { id: '1', data: Buffer.from(json), attributes: { type: event.type } }],
    [
      'a Pub/Sub push body',
      { message: { data: Buffer.from(json).toString('base64'), attributes: {}, messageId: '1' }, subscription: 'projects/p/subscriptions/s' },
    ],
    ['an SNS notification', sns],
    ['a Lambda SNS event', { Records: [{ EventSource: 'aws:sns', Sns: { ...sns } }] }],
    ['an SQS message carrying SNS', { MessageId: 'q', Body: JSON.stringify(sns) }],
    ['a Lambda SQS event carrying SNS', { Records: [{ messageId: 'q', body: JSON.stringify(sns), eventSource: 'aws:sqs' }] }],
    ['SQS raw delivery', { Records: [{ messageId: 'q', body: json, eventSource: 'aws:sqs' }] }],
    ['one Lambda SNS record', { EventSource: 'aws:sns', Sns: { ...sns } }],
    ['one Lambda SQS record', { messageId: 'q', body: JSON.stringify(sns), eventSource: 'aws:sqs' }],
  ])('parseCompletionEvent accepts %s', (_what, input) => {
    expect(parseCompletionEvent(input)).toEqual(event);
  });

  test.each([
    ['not JSON', 'nope'],
    ['wrong type', JSON.stringify({ ...event, type: 'other' })],
    ['bad manifest', JSON.stringify({ ...event, data: { id: 1 } })],
    ['two records', { Records: [{ body: json }, { body: json }] }],
    ['null', null],
  ])('parseCompletionEvent refuses %s', (_what, input) => {
    expect(() => parseCompletionEvent(input)).toThrow();
  });

  test('the shipped JSON Schema matches the code', () => {
    expect(JSON.parse(readFileSync(SCHEMA_PATH, 'utf8'))).toEqual(completionEventJsonSchema());
    expect(SCHEMA_PATH).toBe(join(__dirname, '..', '..', 'shared', 'schema', 'completion-event.v1.schema.json'));
  });
});

describe('notifyCompletion', () => {
  const config = loadConfig({ PIXELPIPE_AUTH_MODE: 'anonymous' });
  async function setup() {
    const store = new MemoryObjectStore();
    const publisher = new MemoryEventPublisher();
    await store.put(config.buckets.variants, `manifests/${ID}.json`, Buffer.from(JSON.stringify(manifest())), { contentType: 'application/json' });
    // The notifier announces only images whose original still exists (the delete cascade reports the rest).
    await store.put(manifest().source.bucket, manifest().source.key, Buffer.from('jpeg'), { contentType: 'image/jpeg' });
    return { store, publisher, deps: { store, publisher, config, logger: silentLogger } };
  }

  test('publishes one event; a redelivery publishes an identical message', async () => {
    const { publisher, deps } = await setup();
    const a = await notifyCompletion(deps, testInvocation(), { bucket: config.buckets.variants, key: `manifests/${ID}.json` });
    const b = await notifyCompletion(deps, testInvocation(), { bucket: config.buckets.variants, key: `manifests/${ID}.json` });
    expect(a.status).toBe('published');
    expect(publisher.messages).toHaveLength(2);
    expect(publisher.messages[0].body).toBe(publisher.messages[1].body);
    expect(parseCompletionEvent(publisher.messages[0].body).data).toEqual(manifest());
    expect(publisher.messages[0].attributes).toEqual({ type: 'pixelpipe.image.processed.v1', imageId: ID, owner: 'alice', status: 'processed' });
    expect(b.status === 'published' && b.eventId).toBe(a.status === 'published' && a.eventId);
  });

  test.each([
    ['a variant', `variants/${ID}/thumb.webp`],
    ['an original', `originals/alice/${ID}`],
  ])('ignores %s', async (_w, key) => {
    const { publisher, deps } = await setup();
    await expect(notifyCompletion(deps, testInvocation(), { bucket: config.buckets.variants, key })).resolves.toEqual({
      status: 'ignored',
      reason: 'not_a_manifest',
    });
    expect(publisher.messages).toEqual([]);
  });

  test('an invalid manifest is not published and not retried', async () => {
    const { store, publisher, deps } = await setup();
    await store.put(config.buckets.variants, `manifests/${ID}.json`, Buffer.from('{"id":'), { contentType: 'application/json' });
    await expect(notifyCompletion(deps, testInvocation(), { bucket: config.buckets.variants, key: `manifests/${ID}.json` })).resolves.toMatchObject({
      reason: 'invalid_manifest',
    });
    expect(publisher.messages).toEqual([]);
  });

  test('a refused publish (missing topic, permission) is still handed back for retry and dead-lettering', async () => {
    const { publisher, deps } = await setup();
    publisher.failNext(new PixelpipeError('internal', 'NOT_FOUND: topic', { retryable: false }));
    await expect(notifyCompletion(deps, testInvocation(), { bucket: config.buckets.variants, key: `manifests/${ID}.json` })).rejects.toMatchObject({
      retryable: true,
      code: 'publish_failed',
    });
  });

  test('an unavailable broker is rethrown for a platform retry', async () => {
    const { publisher, deps } = await setup();
    publisher.failNext(new TransientError('publish_failed', 'unavailable'));
    await expect(notifyCompletion(deps, testInvocation(), { bucket: config.buckets.variants, key: `manifests/${ID}.json` })).rejects.toMatchObject({
      retryable: true,
    });
    await expect(notifyCompletion(deps, testInvocation(), { bucket: config.buckets.variants, key: `manifests/${ID}.json` })).resolves.toMatchObject({
      status: 'published',
    });
  });
});
