/**
 * The dev stack's building blocks on fakes: S3 notification translation and routing, the local API
 * Gateway translation in front of the real upload handler, the async invoker, the recent-images index,
 * the embedded event channel (against the EventPublisher contract), options and log formatting.
 */
import type { IncomingMessage } from 'node:http';
import { loadConfig } from '../../shared/config';
import { ConfigError } from '../../shared/errors';
import { buildCompletionEvent, parseCompletionEvent } from '../../shared/events';
import { createLogger, silentLogger } from '../../shared/logger';
import type { Manifest } from '../../shared/manifest';
import { FakeUrlSigner, FixedClock, SequentialIds } from '../../shared/testing/fakes';
import { AnonymousAuthenticator } from '../../shared/auth/jwt-authenticator';
import { objectRef, s3EventSchema } from '../../functions/aws/s3-event';
import { createUploadHandler } from '../../functions/aws/upload-handler';
import { toApiGatewayV2Event } from '../../functions/local/api-gateway';
import { AsyncInvoker } from '../../functions/local/async-invoker';
import { formatLine } from '../../functions/local/dev-log';
import { devPixelpipeEnv, loadDevOptions } from '../../functions/local/dev-options';
import { EmbeddedEventChannel, type ChannelMessage } from '../../functions/local/event-channel';
import { encodeS3EventKey, matchRules, pipelineRules, toS3NotificationEvent } from '../../functions/local/s3-notifications';
import type { S3rverRecord } from '../../functions/local/s3rver-server';
import { eventPublisherContract } from '../contracts/event-publisher.contract';

const paths = { root: '/repo', webDir: '/repo/web' };
const devConfig = () => loadConfig(devPixelpipeEnv(loadDevOptions({}, paths), { page: 8787, s3: 8788 }));

function record(bucket: string, key: string, eventName = 'ObjectCreated:Post'): S3rverRecord {
  return {
    eventVersion: '2.0',
    eventSource: 'aws:s3',
    eventTime: '2026-01-01T00:00:00.000Z',
    eventName,
    s3: { bucket: { name: bucket }, object: { key, size: 123, eTag: '60fab8d46b03f5307a9ebec83d7335ae', sequencer: '1A2B' } },
  };
}

function manifest(id: string, status: 'processed' | 'failed', extra: Partial<Manifest> = {}): Manifest {
  return {
    schemaVersion: 1,
    id,
    owner: 'anonymous',
    status,
    ...(status === 'failed' ? { reason: { code: 'corrupt_image' as const, message: 'bad bytes' } } : {}),
    source: { bucket: 'pixelpipe-originals', key: `originals/anonymous/${id}`, generation: 'g1', bytes: 1000, filename: `${id}.jpg` },
    variants:
      status === 'processed'
        ? [{ name: 'thumb', format: 'webp', key: `variants/${id}/thumb.webp`, contentType: 'image/webp', width: 200, height: 200, bytes: 99 }]
        : [],
    placeholder: null,
    bucket: 'pixelpipe-variants',
    attempts: 1,
    createdAt: '2026-01-01T00:00:10.000Z',
    durationMs: 500,
    ...extra,
  };
}

describe('S3 notifications', () => {
  test('keys are form-URL encoded per segment and decode back to the stored key', () => {
    expect(encodeS3EventKey('originals/a b/c+d/é.jpg')).toBe('originals/a+b/c%2Bd/%C3%A9.jpg');
    const event = toS3NotificationEvent(record('pixelpipe-originals', 'originals/a b/x+y'));
    const parsed = s3EventSchema.parse(event);
    expect(objectRef(parsed.Records[0])).toMatchObject({
      bucket: 'pixelpipe-originals',
      key: 'originals/a b/x+y',
      generation: '60fab8d46b03f5307a9ebec83d7335ae',
    });
  });

  test('routes like the deployed notifications: originals/ → process (created) or cascade (removed), manifests/*.json → notify, nothing else', () => {
    const rules = pipelineRules(devConfig());
    const names = (r: S3rverRecord) => matchRules(r, rules).map((x) => x.name);
    expect(names(record('pixelpipe-originals', 'originals/anonymous/abc'))).toEqual(['process']);
    expect(names(record('pixelpipe-variants', 'manifests/abc12345.json', 'ObjectCreated:Put'))).toEqual(['notify']);
    expect(names(record('pixelpipe-variants', 'manifests/abc12345.txt', 'ObjectCreated:Put'))).toEqual([]);
    expect(names(record('pixelpipe-variants', 'variants/abc/thumb.webp', 'ObjectCreated:Put'))).toEqual([]);
    expect(names(record('pixelpipe-variants', 'state/abc/g.attempts', 'ObjectCreated:Put'))).toEqual([]);
    expect(names(record('pixelpipe-originals', 'originals/anonymous/abc', 'ObjectRemoved:Delete'))).toEqual(['cascade']);
    expect(names(record('pixelpipe-variants', 'variants/abc/thumb.webp', 'ObjectRemoved:Delete'))).toEqual([]);
    expect(names(record('other-bucket', 'originals/anonymous/abc'))).toEqual([]);
  });
});

describe('local API Gateway in front of the production upload handler', () => {
  function fakeRequest(body: string, headers: Array<[string, string]>): IncomingMessage {
    return {
      url: '/api/uploads?x=1',
      method: 'POST',
      httpVersion: '1.1',
      rawHeaders: headers.flat(),
      socket: { remoteAddress: '127.0.0.1' },
    } as unknown as IncomingMessage;
  }

  test('a page request becomes a v2 event the handler accepts, with CORS for the page origin', async () => {
    const config = devConfig();
    const handler = createUploadHandler({
      signer: new FakeUrlSigner(),
      ids: new SequentialIds(),
      clock: new FixedClock(),
      config,
      authenticator: new AnonymousAuthenticator(),
      logger: silentLogger,
    });
    const body = JSON.stringify({ contentType: 'image/jpeg', size: 1234, filename: 'cat.jpg' });
    const event = toApiGatewayV2Event(
      fakeRequest(body, [
        ['Host', '127.0.0.1:8787'],
        ['Content-Type', 'application/json'],
        ['Origin', 'http://127.0.0.1:8787'],
        ['Cookie', 'a=1; b=2'],
        ['X-Multi', 'one'],
        ['X-Multi', 'two'],
      ]),
      Buffer.from(body),
      'POST /api/uploads',
    );
    expect(event).toMatchObject({
      version: '2.0',
      rawPath: '/api/uploads',
      rawQueryString: 'x=1',
      cookies: ['a=1', 'b=2'],
      headers: { 'content-type': 'application/json', origin: 'http://127.0.0.1:8787', 'x-multi': 'one,two' },
      isBase64Encoded: false,
      body,
      requestContext: { http: { method: 'POST', path: '/api/uploads', sourceIp: '127.0.0.1' }, stage: '$default' },
    });
    const res = await handler(event);
    expect(res.statusCode).toBe(201);
    expect(res.headers?.['access-control-allow-origin']).toBe('http://127.0.0.1:8787');
    const json = JSON.parse(res.body!) as { id: string; key: string; statusUrl: string };
    expect(json.key).toBe(`originals/anonymous/${json.id}`);
    expect(json.statusUrl).toBe(`http://127.0.0.1:8787/api/images/${json.id}`);
  });

  test('binary bodies are base64-encoded, as API Gateway does', () => {
    const event = toApiGatewayV2Event(fakeRequest('', [['Content-Type', 'application/octet-stream']]), Buffer.from([0, 1, 2]), 'POST /api/uploads');
    expect(event.isBase64Encoded).toBe(true);
    expect(event.body).toBe('AAEC');
  });
});

describe('AsyncInvoker', () => {
  test('runs at most `concurrency` at once and retries a throwing invocation', async () => {
    let running = 0;
    let peak = 0;
    const calls = new Map<number, number>();
    const invoker = new AsyncInvoker(
      'test',
      async (e) => {
        const n = e as number;
        calls.set(n, (calls.get(n) ?? 0) + 1);
        running++;
        peak = Math.max(peak, running);
        await new Promise((r) => setTimeout(r, 5));
        running--;
        if (n === 3 && calls.get(n)! < 2) throw new Error('transient');
      },
      { concurrency: 2, retryDelaysMs: [5, 5], logger: silentLogger },
    );
    for (const n of [1, 2, 3, 4, 5]) invoker.invoke(n);
    await invoker.idle();
    await new Promise((r) => setTimeout(r, 30));
    await invoker.idle();
    expect(peak).toBe(2);
    expect(calls.get(3)).toBe(2);
    expect([...calls.keys()].sort()).toEqual([1, 2, 3, 4, 5]);
  });

  test('gives up after the retries and says so; close() drops queued work', async () => {
    const lines: string[] = [];
    const logger = createLogger({ sink: (l) => lines.push(l) });
    let calls = 0;
    const invoker = new AsyncInvoker(
      'failing',
      () => {
        calls++;
        return Promise.reject(new Error('always'));
      },
      { concurrency: 1, retryDelaysMs: [1, 1], logger },
    );
    invoker.invoke('x');
    for (let i = 0; i < 50 && calls < 3; i++) await new Promise((r) => setTimeout(r, 5));
    await invoker.idle();
    expect(calls).toBe(3);
    expect(lines.some((l) => l.includes('giving up'))).toBe(true);

    let ran = 0;
    const slow = new AsyncInvoker('slow', () => new Promise((r) => setTimeout(() => r(ran++), 20)), { concurrency: 1, logger: silentLogger });
    slow.invoke(1);
    slow.invoke(2);
    await slow.close(1000);
    expect(ran).toBe(1);
  });
});

eventPublisherContract('embedded dev channel', () => {
  const channel = new EmbeddedEventChannel();
  const got: ChannelMessage[] = [];
  channel.subscribe((m) => got.push(m));
  let read = 0;
  return Promise.resolve({
    publisher: channel.publisher,
    async receive(count: number, timeoutMs: number) {
      const deadline = Date.now() + timeoutMs;
      while (got.length - read < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      const out = got.slice(read, read + count);
      read += out.length;
      return out.map((m) => ({ body: m.data.toString('utf8'), attributes: m.attributes }));
    },
    close: () => channel.close(),
  });
});

describe('EmbeddedEventChannel', () => {
  test('delivers after publish resolves, in order, in a shape parseCompletionEvent accepts', async () => {
    const channel = new EmbeddedEventChannel();
    const got: ChannelMessage[] = [];
    channel.subscribe((m) => got.push(m));
    const { event, attributes } = buildCompletionEvent(manifest('eeeeeeee-1', 'processed'), '//pixelpipe/dev', new Date());
    const id = await channel.publish(JSON.stringify(event), attributes);
    expect(got).toHaveLength(0);
    await new Promise((r) => setImmediate(r));
    expect(got.map((m) => m.id)).toEqual([id]);
    expect(parseCompletionEvent(got[0]).id).toBe(event.id);
    await channel.close();
    await expect(channel.publish('{}', attributes)).rejects.toThrow(/closed/);
  });
});

describe('dev options', () => {
  test('defaults: loopback, 8787/8788, auto events, .dev-data under the repo', () => {
    const o = loadDevOptions({ PATH: '/usr/bin' }, paths);
    expect(o).toMatchObject({ host: '127.0.0.1', port: 8787, s3Port: 8788, events: 'auto', dataDir: '/repo/.dev-data', processConcurrency: 2 });
  });

  test('a bad variable is named', () => {
    expect(() => loadDevOptions({ PIXELPIPE_DEV_PORT: 'eighty' }, paths)).toThrow(ConfigError);
    expect(() => loadDevOptions({ PIXELPIPE_DEV_EVENTS: 'kafka' }, paths)).toThrow(/PIXELPIPE_DEV_EVENTS/);
  });

  test('the functions get anonymous auth, the page origins, local status and variant URLs; user values win except the derived URLs', () => {
    const o = loadDevOptions(
      {
        PIXELPIPE_VARIANTS_BUCKET: 'my-variants',
        PIXELPIPE_CORS_ORIGINS: 'http://localhost:3000',
        PIXELPIPE_LOG_LEVEL: 'debug',
        PIXELPIPE_STATUS_URL_BASE: 'https://x.example/s',
      },
      paths,
    );
    const config = loadConfig(devPixelpipeEnv(o, { page: 9000, s3: 9001 }));
    expect(config.auth.mode).toBe('anonymous');
    expect(config.buckets.variants).toBe('my-variants');
    expect(config.logLevel).toBe('debug');
    expect(config.upload.corsOrigins).toEqual(['http://127.0.0.1:9000', 'http://localhost:9000', 'http://localhost:3000']);
    expect(config.upload.statusUrlBase).toBe('http://127.0.0.1:9000/api/images');
    expect(config.output.publicBaseUrl).toBe('http://127.0.0.1:9001/my-variants');
  });
});

test('pretty log lines keep the message and the fields that matter', () => {
  const line = JSON.stringify({
    severity: 'INFO',
    level: 'info',
    message: 'image processed',
    time: '2026-01-01T12:34:56.000Z',
    fn: 'process',
    imageId: 'abc',
    bucket: 'b',
    durationMs: 12,
  });
  expect(formatLine(line)).toBe('12:34:56 INFO  process image processed imageId=abc durationMs=12');
  const warn = JSON.stringify({
    level: 'warn',
    message: 'x',
    time: '2026-01-01T12:34:56.000Z',
    bucket: 'b',
    err: { name: 'TransientError', code: 'storage_unavailable', message: 'down' },
  });
  expect(formatLine(warn)).toContain('bucket=b err="TransientError(storage_unavailable): down"');
  expect(formatLine('not json')).toBe('not json');
});
