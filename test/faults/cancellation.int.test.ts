/**
 * Timeouts that cancel: every adapter, pointed at a local server through the fault proxy, is made to
 * hit a request that never answers (or a body that stops halfway). What must hold, observed at the
 * proxy rather than trusted from the client:
 * - the timed-out request's connection is closed by the client (`clientClosedAt`), and it is closed
 *   before the retry's request arrives: at most one request per method and path is ever in flight
 *   (`peakInFlight` = 1), so two writers of one key never overlap;
 * - a call that gives up leaves nothing open behind it (`idle`), and the caller's own signal (the
 *   invocation ending) cancels a request in flight the same way, with a retryable error.
 *
 * Each case forces at most two attempts of 750 ms; the backoff is fixed by an injected `random`.
 * Only 127.0.0.1 is used: the GCS fake, s3rver, the local SNS and the Google fake.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { SNSClient } from '@aws-sdk/client-sns';
import { Storage } from '@google-cloud/storage';
import { NO_AUTH } from '../../functions/gcp/google-auth';
import { GcsObjectReader } from '../../functions/gcp/gcs-object-reader';
import { GcsObjectStore } from '../../functions/gcp/gcs-object-store';
import { PubSubEventPublisher } from '../../functions/gcp/pubsub-event-publisher';
import { S3ObjectStore } from '../../functions/aws/s3-object-store';
import { SnsEventPublisher } from '../../functions/aws/sns-event-publisher';
import { PixelpipeError } from '../../shared/errors';
import { defaultPolicy, type ResiliencePolicy } from '../../shared/resilience';
import { startGcsFake, type GcsFake } from '../servers/gcs-fake';
import { startLocalS3, type LocalS3 } from '../servers/s3';
import { startLocalSns, type LocalSns } from '../servers/sns';
import { startGoogleFake, type GoogleFake } from '../support/google-fake';
import { startFaultProxy, type FaultProxy } from './fault-proxy';

jest.setTimeout(30_000);
process.env.METADATA_SERVER_DETECTION = 'none';

/** Long enough that the retry, which is answered, never times out on a loaded machine; each stall costs this much. */
const TIMEOUT_MS = 750;
const ATTRS = { type: 'pixelpipe.image.processed.v1', imageId: 'i-1', owner: 'alice', status: 'processed' };

/** Two attempts of TIMEOUT_MS with a fixed 20 ms backoff between them, and a fresh breaker. */
const policy = (name: string, attempts = 2): ResiliencePolicy =>
  defaultPolicy(name, { attempts, baseDelayMs: 40, maxDelayMs: 40, timeoutMs: TIMEOUT_MS, random: () => 0.5 });

async function failure(p: Promise<unknown>): Promise<PixelpipeError> {
  const err = await p.then(
    () => new Error('expected the call to fail'),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PixelpipeError);
  return err as PixelpipeError;
}

/**
 * The proxy's view of one stalled-then-retried call: the first request was closed by the client, and
 * it had ended before the second arrived (never two in flight at once).
 */
function expectCancelledThenRetried(proxy: FaultProxy, filter: { method: string; pathIncludes: string }): void {
  const seen = proxy.requests.filter((r) => r.method === filter.method && r.path.includes(filter.pathIncludes));
  expect(seen.map((r) => r.outcome)).toEqual(['stall', 'forwarded']);
  expect(seen[0].clientClosedAt).toBeDefined();
  expect(proxy.peakInFlight(filter)).toBe(1);
}

// ────────────────────────────────────────────────────────────────────────────────────────────────
describe('GCS through the fault proxy (gcs-fake upstream)', () => {
  let fake: GcsFake;
  let proxy: FaultProxy;
  const storage = () => new Storage({ apiEndpoint: proxy.url, projectId: 'pixelpipe-test', retryOptions: { autoRetry: false } });
  const writes = () => fake.requests.filter((r) => r.method === 'POST' && r.path.startsWith('/upload/')).length;

  beforeAll(async () => {
    fake = await startGcsFake({ buckets: ['b', 'w1', 'w2', 'w3'] });
    proxy = await startFaultProxy(fake.url);
  });
  afterAll(async () => {
    await proxy?.close();
    await fake?.close();
  });
  afterEach(() => proxy.clear());

  test('GcsObjectStore.put: a write whose answer never comes is cancelled on the wire before its retry is sent', async () => {
    const store = new GcsObjectStore(storage(), { policy: policy('gcs-put') });
    const upload = { method: 'POST', pathIncludes: '/upload/storage/v1/b/w1/o' };
    proxy.inject({ action: { kind: 'stall' }, times: 1, ...upload });
    const before = writes();
    const info = await store.put('w1', 'k/one', Buffer.from('payload'), { contentType: 'text/plain' });
    expect(info.size).toBe(7);
    expectCancelledThenRetried(proxy, upload);
    // The stalled request never reached the fake; the retry is the one write that did.
    expect(writes() - before).toBe(1);
    expect(fake.getObject('w1', 'k/one')?.body.toString()).toBe('payload');
  });

  test('GcsObjectStore.put (resumable session): the same holds for the session upload', async () => {
    const store = new GcsObjectStore(storage(), { policy: policy('gcs-put-resumable'), simpleUploadMaxBytes: 0 });
    const upload = { method: 'PUT', pathIncludes: '/upload/storage/v1/b/w2/o' };
    proxy.inject({ action: { kind: 'stall' }, times: 1, ...upload });
    await store.put('w2', 'k/big', Buffer.alloc(4096, 3), { contentType: 'application/octet-stream' });
    expectCancelledThenRetried(proxy, upload);
    expect(fake.getObject('w2', 'k/big')?.body.equals(Buffer.alloc(4096, 3))).toBe(true);
  });

  test('GcsObjectStore.get: a download that stops halfway is cancelled on the wire before the retry', async () => {
    const writer = new GcsObjectStore(storage(), { policy: policy('gcs-seed') });
    await writer.put('b', 'r/1', Buffer.alloc(64 * 1024, 9), { contentType: 'application/octet-stream' });
    const store = new GcsObjectStore(storage(), { policy: policy('gcs-get') });
    proxy.inject({ action: { kind: 'stall-body', bytes: 1000 }, times: 1, method: 'GET', pathIncludes: '/o/r/1', queryIncludes: 'alt=media' });
    const got = await store.get('b', 'r/1');
    expect(got.body.equals(Buffer.alloc(64 * 1024, 9))).toBe(true);
    // The stalled download (forwarded, then cut by the proxy) is the one request the client closed.
    const closed = proxy.requests.filter((r) => r.path.includes('/o/r/1') && r.clientClosedAt !== undefined);
    expect(closed).toHaveLength(1);
    expect(proxy.count({ method: 'GET', pathIncludes: '/o/r/1' })).toBe(4);
    expect(proxy.peakInFlight({ method: 'GET', pathIncludes: '/o/r/1' })).toBe(1);
  });

  test('GcsObjectStore head, list and delete: a call that gives up leaves no request open behind it', async () => {
    const store = new GcsObjectStore(storage(), { policy: policy('gcs-meta', 1) });
    const cases: Array<{ method: string; pathIncludes: string; run: () => Promise<unknown> }> = [
      { method: 'GET', pathIncludes: '/o/m/head', run: () => store.head('b', 'm/head') },
      { method: 'GET', pathIncludes: '/b/w3/o', run: () => store.list('w3', 'm/') },
      { method: 'DELETE', pathIncludes: '/o/m/delete', run: () => store.delete('b', 'm/delete') },
    ];
    for (const c of cases) {
      proxy.inject({ action: { kind: 'stall' }, times: 1, method: c.method, pathIncludes: c.pathIncludes });
      expect((await failure(c.run())).code).toBe('storage_timeout');
      // Without cancellation the SDK's request would stay open until the proxy closes.
      await proxy.idle({ method: c.method, pathIncludes: c.pathIncludes }, 3000);
      const [seen] = proxy.requests.filter((r) => r.method === c.method && r.path.includes(c.pathIncludes));
      expect([c.method, c.pathIncludes, seen.clientClosedAt !== undefined]).toEqual([c.method, c.pathIncludes, true]);
    }
  });

  test("GcsObjectStore.put: the caller's signal (the invocation ending) cancels a write in flight with a retryable error", async () => {
    const store = new GcsObjectStore(storage(), { policy: defaultPolicy('gcs-outer', { attempts: 3, timeoutMs: 10_000 }) });
    const upload = { method: 'POST', pathIncludes: '/upload/storage/v1/b/w3/o' };
    proxy.inject({ action: { kind: 'stall' }, times: 1, ...upload });
    const invocation = new AbortController();
    const call = store.put('w3', 'k/outer', Buffer.from('late'), { contentType: 'text/plain', signal: invocation.signal });
    await proxy.arrived(upload);
    invocation.abort(new DOMException('invocation deadline passed', 'TimeoutError'));
    const err = await failure(call);
    expect([err.retryable, err.code]).toEqual([true, 'deadline_exceeded']);
    await proxy.idle(upload, 3000);
    expect(proxy.count(upload)).toBe(1);
    expect(fake.getObject('w3', 'k/outer')).toBeUndefined();
  });

  test('GcsObjectReader (fetch): a stalled metadata read and a download that stops halfway are cancelled before the retry', async () => {
    const writer = new GcsObjectStore(storage(), { policy: policy('gcs-seed-2') });
    await writer.put('b', 'n/1', Buffer.from('{"ok":true}'), { contentType: 'application/json' });
    const reader = () => new GcsObjectReader(NO_AUTH, { endpoint: proxy.url, policy: policy('gcs-reader') });

    proxy.inject({ action: { kind: 'stall' }, times: 1, method: 'GET', pathIncludes: '/o/n/1' });
    expect((await reader().get('b', 'n/1')).body.toString()).toBe('{"ok":true}');
    const first = proxy.requests.filter((r) => r.path.includes('/o/n/1'));
    expect([first[0].outcome, first[0].clientClosedAt !== undefined]).toEqual(['stall', true]);

    proxy.inject({ action: { kind: 'stall-body', bytes: 3 }, times: 1, method: 'GET', pathIncludes: '/o/n/1', queryIncludes: 'alt=media' });
    expect((await reader().get('b', 'n/1')).body.toString()).toBe('{"ok":true}');
    const stalledBody = proxy.requests.filter((r) => r.path.includes('/o/n/1') && r.endedAt !== undefined && r.clientClosedAt !== undefined);
    expect(stalledBody).toHaveLength(2);
    expect(proxy.peakInFlight({ method: 'GET', pathIncludes: '/o/n/1' })).toBe(1);
  });
});

// ────────────────────────────────────────────────────────────────────────────────────────────────
describe('S3 through the fault proxy (s3rver upstream)', () => {
  let s3: LocalS3;
  let proxy: FaultProxy;
  const client = () => s3.client(proxy.url);

  beforeAll(async () => {
    s3 = await startLocalS3(['b']);
    proxy = await startFaultProxy(s3.endpoint);
  });
  afterAll(async () => {
    await proxy?.close();
    await s3?.close();
  });
  afterEach(() => proxy.clear());

  test('S3ObjectStore.put: a write whose answer never comes is cancelled on the wire before its retry is sent', async () => {
    const store = new S3ObjectStore(client(), { policy: policy('s3-put') });
    const put = { method: 'PUT', pathIncludes: '/b/w/1' };
    proxy.inject({ action: { kind: 'stall' }, times: 1, ...put });
    await store.put('b', 'w/1', Buffer.from('payload'), { contentType: 'text/plain' });
    expectCancelledThenRetried(proxy, put);
    expect((await store.get('b', 'w/1')).body.toString()).toBe('payload');
  });

  test('S3ObjectStore.get: a body that stops halfway is cancelled on the wire before the retry', async () => {
    await s3.client().send(new PutObjectCommand({ Bucket: 'b', Key: 'r/1', Body: Buffer.alloc(32 * 1024, 5) }));
    const store = new S3ObjectStore(client(), { policy: policy('s3-get') });
    const get = { method: 'GET', pathIncludes: '/b/r/1' };
    proxy.inject({ action: { kind: 'stall-body', bytes: 1000 }, times: 1, ...get });
    expect((await store.get('b', 'r/1')).body.equals(Buffer.alloc(32 * 1024, 5))).toBe(true);
    const seen = proxy.requests.filter((r) => r.method === 'GET' && r.path.includes('/b/r/1'));
    expect(seen).toHaveLength(2);
    expect(seen[0].clientClosedAt).toBeDefined();
    expect(proxy.peakInFlight(get)).toBe(1);
  });

  test("S3ObjectStore.put: the caller's signal cancels a write in flight with a retryable error", async () => {
    const store = new S3ObjectStore(client(), { policy: defaultPolicy('s3-outer', { attempts: 3, timeoutMs: 10_000 }) });
    const put = { method: 'PUT', pathIncludes: '/b/w/outer' };
    proxy.inject({ action: { kind: 'stall' }, times: 1, ...put });
    const invocation = new AbortController();
    const call = store.put('b', 'w/outer', Buffer.from('late'), { contentType: 'text/plain', signal: invocation.signal });
    await proxy.arrived(put);
    invocation.abort(new DOMException('invocation deadline passed', 'TimeoutError'));
    const err = await failure(call);
    expect([err.retryable, err.code]).toEqual([true, 'deadline_exceeded']);
    await proxy.idle(put, 3000);
    expect(proxy.count(put)).toBe(1);
    expect(await store.head('b', 'w/outer')).toBeNull();
  });
});

// ────────────────────────────────────────────────────────────────────────────────────────────────
describe('event publishers through the fault proxy', () => {
  test('Pub/Sub REST publish: a publish whose answer never comes is cancelled before the retry; one message lands', async () => {
    const topic = 'projects/pixelpipe-test/topics/events';
    let accepted = 0;
    const google: GoogleFake = await startGoogleFake({
      [`POST /v1/${topic}:publish`]: () => ({ json: { messageIds: [String(++accepted)] } }),
    });
    const proxy = await startFaultProxy(google.url);
    try {
      const publish = { method: 'POST', pathIncludes: ':publish' };
      proxy.inject({ action: { kind: 'stall' }, times: 1, ...publish });
      const publisher = new PubSubEventPublisher(NO_AUTH, topic, { endpoint: proxy.url, policy: policy('pubsub') });
      await expect(publisher.publish('{}', ATTRS)).resolves.toBe('1');
      expectCancelledThenRetried(proxy, publish);
      expect(accepted).toBe(1);
    } finally {
      await proxy.close();
      await google.close();
    }
  });

  test('Pub/Sub REST publish that never gets an answer ends as publish_failed with nothing left open', async () => {
    const google = await startGoogleFake({});
    const proxy = await startFaultProxy(google.url);
    try {
      proxy.inject({ action: { kind: 'stall' }, times: 2, method: 'POST' });
      const publisher = new PubSubEventPublisher(NO_AUTH, 'projects/p/topics/t', { endpoint: proxy.url, policy: policy('pubsub-dead') });
      const err = await failure(publisher.publish('{}', ATTRS));
      expect([err.retryable, err.code]).toEqual([true, 'publish_failed']);
      await proxy.idle({ method: 'POST' }, 3000);
      expect(proxy.requests.map((r) => r.clientClosedAt !== undefined)).toEqual([true, true]);
      expect(proxy.peakInFlight({ method: 'POST' })).toBe(1);
    } finally {
      await proxy.close();
      await google.close();
    }
  });

  test('SNS publish: a publish whose answer never comes is cancelled before the retry; one message lands', async () => {
    const sns: LocalSns = await startLocalSns();
    const proxy = await startFaultProxy(sns.endpoint);
    const client = new SNSClient({ endpoint: proxy.url, region: sns.region, credentials: { accessKeyId: 'test', secretAccessKey: 'test' }, maxAttempts: 1 });
    try {
      const topic = sns.createTopic('pixelpipe-events');
      const publish = { method: 'POST', pathIncludes: '/' };
      proxy.inject({ action: { kind: 'stall' }, times: 1, ...publish });
      const publisher = new SnsEventPublisher(client, topic, { policy: policy('sns') });
      await expect(publisher.publish('{"a":1}', ATTRS)).resolves.toEqual(expect.any(String));
      expectCancelledThenRetried(proxy, publish);
      expect(sns.published.map((m) => m.message)).toEqual(['{"a":1}']);
    } finally {
      client.destroy();
      await proxy.close();
      await sns.close();
    }
  });
});
