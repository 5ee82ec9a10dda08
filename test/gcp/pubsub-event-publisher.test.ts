/**
 * PubSubEventPublisher's REST request and error mapping against a hand-rolled HTTP server: what is
 * sent (path, bearer token, base64 body, attributes), which failures are retried, which are not.
 * The emulator round trip lives in pubsub-event-publisher.int.test.ts.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError, PixelpipeError, TransientError } from '../../shared/errors';
import { defaultPolicy } from '../../shared/resilience';
import { PubSubEventPublisher, pubsubTopicPath } from '../../functions/gcp/pubsub-event-publisher';

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;

let handler: Handler;
const seen: Array<{ method: string; url: string; auth?: string; body: string }> = [];
const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    seen.push({ method: req.method ?? '', url: req.url ?? '', auth: req.headers.authorization, body });
    handler(req, body, res);
  });
});
let endpoint = '';
beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
});
beforeEach(() => (seen.length = 0));

const auth = { headers: () => Promise.resolve({ authorization: 'Bearer tok-1' }) };
const TOPIC = 'projects/pixelpipe-test/topics/pixelpipe-events';
const publisher = (attempts = 3, timeoutMs = 2000) =>
  new PubSubEventPublisher(auth, TOPIC, { endpoint, policy: defaultPolicy('pubsub-unit', { attempts, baseDelayMs: 1, maxDelayMs: 2, timeoutMs }) });
const ATTRS = { type: 'pixelpipe.image.processed.v1', imageId: 'i-1', owner: 'alice', status: 'processed' };
const json = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

describe('PubSubEventPublisher (REST)', () => {
  test('POSTs one base64 message with its attributes and the bearer token; returns the message id', async () => {
    handler = (_req, _body, res) => json(res, 200, { messageIds: ['4242'] });
    const body = JSON.stringify({ specversion: '1.0', note: 'ünïcödé' });
    await expect(publisher().publish(body, ATTRS)).resolves.toBe('4242');
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ method: 'POST', url: `/v1/${TOPIC}:publish`, auth: 'Bearer tok-1' });
    const sent = JSON.parse(seen[0].body) as { messages: Array<{ data: string; attributes: Record<string, string> }> };
    expect(sent.messages).toHaveLength(1);
    expect(Buffer.from(sent.messages[0].data, 'base64').toString('utf8')).toBe(body);
    expect(sent.messages[0].attributes).toEqual(ATTRS);
  });

  test('503 and 429 are retried until the publish succeeds', async () => {
    let n = 0;
    handler = (_req, _body, res) =>
      ++n < 3 ? json(res, n === 1 ? 503 : 429, { error: { code: 503, message: 'busy', status: 'UNAVAILABLE' } }) : json(res, 200, { messageIds: ['7'] });
    await expect(publisher().publish('{}', ATTRS)).resolves.toBe('7');
    expect(seen).toHaveLength(3);
  });

  test.each([400, 401, 403, 404])('HTTP %i is permanent: one request, not retryable, message kept', async (status) => {
    handler = (_req, _body, res) =>
      json(res, status, { error: { code: status, message: 'Resource not found (resource=pixelpipe-events).', status: 'NOT_FOUND' } });
    const err = await publisher()
      .publish('{}', ATTRS)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PixelpipeError);
    expect((err as PixelpipeError).retryable).toBe(false);
    expect(String((err as Error).message)).toMatch(/Resource not found/);
    expect(seen).toHaveLength(1);
  });

  test('exhausted 5xx, a reset connection and a stalled answer are transient publish failures', async () => {
    handler = (_req, _body, res) => json(res, 500, { error: { code: 500, message: 'internal' } });
    await expect(publisher(2).publish('{}', ATTRS)).rejects.toMatchObject({ retryable: true, code: 'publish_failed' });
    expect(seen).toHaveLength(2);

    handler = (req) => req.socket.destroy();
    const reset = await publisher(1)
      .publish('{}', ATTRS)
      .catch((e: unknown) => e);
    expect(reset).toBeInstanceOf(TransientError);

    handler = (_req, _body, res) => setTimeout(() => json(res, 200, { messageIds: ['late'] }), 600);
    await expect(publisher(1, 150).publish('{}', ATTRS)).rejects.toMatchObject({ retryable: true });
  });

  test('a 200 without a message id is not taken as published', async () => {
    handler = (_req, _body, res) => json(res, 200, {});
    await expect(publisher(1).publish('{}', ATTRS)).rejects.toMatchObject({ retryable: true });
  });
});

describe('pubsubTopicPath', () => {
  test('bare names need the project; full paths are kept', () => {
    expect(pubsubTopicPath('pixelpipe-events', 'my-project')).toBe('projects/my-project/topics/pixelpipe-events');
    expect(pubsubTopicPath('projects/p1/topics/t1', undefined)).toBe('projects/p1/topics/t1');
    expect(() => pubsubTopicPath('pixelpipe-events', undefined)).toThrow(ConfigError);
    expect(() => pubsubTopicPath('pixelpipe-events', undefined)).toThrow(/GOOGLE_CLOUD_PROJECT/);
    expect(() => pubsubTopicPath('no spaces/allowed', 'p')).toThrow(/PIXELPIPE_TOPIC/);
    expect(() => new PubSubEventPublisher(auth, 'pixelpipe-events')).toThrow(RangeError);
  });
});
