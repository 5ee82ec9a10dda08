/**
 * The EventPublisher contract against the local SNS endpoint (test/servers/sns.ts), with delivery to an
 * SQS-subscribed queue, plus attribute filtering and error mapping.
 */
import { SNSClient } from '@aws-sdk/client-sns';
import { PixelpipeError, TransientError } from '../../shared/errors';
import { CircuitBreaker, type ResiliencePolicy } from '../../shared/resilience';
import { SnsEventPublisher } from '../../functions/aws/sns-event-publisher';
import { eventPublisherContract } from '../contracts/event-publisher.contract';
import { startLocalSns, type LocalSns } from '../servers/sns';

const fastPolicy = (): ResiliencePolicy => ({
  retry: { attempts: 3, baseDelayMs: 5, maxDelayMs: 10 },
  breaker: new CircuitBreaker('sns-test', { failureThreshold: 100, openMs: 1000 }),
  timeoutMs: 5000,
});

const client = (sns: LocalSns): SNSClient =>
  new SNSClient({ endpoint: sns.endpoint, region: sns.region, credentials: { accessKeyId: 'test', secretAccessKey: 'test' }, maxAttempts: 1 });

/** The body and attributes as an SQS subscriber sees them (SNS notification envelope). */
function unwrapSqs(body: string): { body: string; attributes: Record<string, string> } {
  const n = JSON.parse(body) as { Type: string; Message: string; MessageAttributes?: Record<string, { Type: string; Value: string }> };
  expect(n.Type).toBe('Notification');
  return { body: n.Message, attributes: Object.fromEntries(Object.entries(n.MessageAttributes ?? {}).map(([k, v]) => [k, v.Value])) };
}

eventPublisherContract('sns (local endpoint → SQS-shaped queue)', async () => {
  const sns = await startLocalSns();
  const topic = sns.createTopic('pixelpipe-events');
  const queue = sns.subscribeQueue(topic);
  const c = client(sns);
  return {
    publisher: new SnsEventPublisher(c, topic, { policy: fastPolicy() }),
    receive: async (count, timeoutMs) => (await queue.receive(count, timeoutMs)).map((m) => unwrapSqs(m.Body)),
    close: async () => {
      c.destroy();
      await sns.close();
    },
  };
});

describe('SnsEventPublisher specifics', () => {
  let sns: LocalSns;
  let topic: string;
  let c: SNSClient;
  beforeAll(async () => {
    sns = await startLocalSns();
    topic = sns.createTopic('pixelpipe-events');
    c = client(sns);
  });
  afterAll(async () => {
    c?.destroy();
    await sns?.close();
  });

  test('attributes are String message attributes usable by a subscription filter policy', async () => {
    const failedOnly = sns.subscribeQueue(topic, { filterPolicy: { status: ['failed'], type: [{ prefix: 'pixelpipe.image.' }] } });
    const p = new SnsEventPublisher(c, topic, { policy: fastPolicy() });
    await p.publish('{"a":1}', { type: 'pixelpipe.image.processed.v1', imageId: 'i1', owner: 'alice', status: 'processed' });
    await p.publish('{"a":2}', { type: 'pixelpipe.image.failed.v1', imageId: 'i2', owner: 'alice', status: 'failed' });
    const [only] = await failedOnly.receive(1, 2000);
    expect(unwrapSqs(only.Body)).toEqual({
      body: '{"a":2}',
      attributes: { type: 'pixelpipe.image.failed.v1', imageId: 'i2', owner: 'alice', status: 'failed' },
    });
    expect(failedOnly.messages).toHaveLength(1);
    const last = sns.published[sns.published.length - 1];
    expect(last.attributes.status).toEqual({ DataType: 'String', StringValue: 'failed' });
  });

  test('5xx and throttling are retried, then surface as TransientError(publish_failed)', async () => {
    const p = new SnsEventPublisher(c, topic, { policy: fastPolicy() });
    sns.failNext(500, 'InternalError');
    await expect(p.publish('{}', { type: 't', imageId: 'i', owner: 'o', status: 'processed' })).resolves.toMatch(/\S/);
    sns.failNext(400, 'Throttling', 3);
    const err = await p.publish('{}', { type: 't', imageId: 'i', owner: 'o', status: 'processed' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect((err as TransientError).code).toBe('publish_failed');
  });

  test('a missing topic or a denied publish is permanent (not retried)', async () => {
    const before = sns.requestCount();
    const p = new SnsEventPublisher(c, 'arn:aws:sns:us-east-1:000000000000:nope', { policy: fastPolicy() });
    const err = await p.publish('{}', { type: 't', imageId: 'i', owner: 'o', status: 'processed' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PixelpipeError);
    expect((err as PixelpipeError).retryable).toBe(false);
    expect(sns.requestCount() - before).toBe(1);
    sns.failNext(403, 'AuthorizationError');
    const denied = await new SnsEventPublisher(c, topic, { policy: fastPolicy() })
      .publish('{}', { type: 't', imageId: 'i', owner: 'o', status: 'processed' })
      .catch((e: unknown) => e);
    expect((denied as PixelpipeError).retryable).toBe(false);
  });

  test('an unreachable endpoint is transient', async () => {
    const dead = new SNSClient({
      endpoint: 'http://127.0.0.1:1',
      region: 'us-east-1',
      credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
      maxAttempts: 1,
    });
    const err = await new SnsEventPublisher(dead, topic, { policy: fastPolicy() })
      .publish('{}', { type: 't', imageId: 'i', owner: 'o', status: 'processed' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    dead.destroy();
  });

  test('the topic must be an ARN (a bare name is a configuration error at cold start)', () => {
    expect(() => new SnsEventPublisher(c, 'pixelpipe-events')).toThrow(/topic ARN/);
  });
});
