/**
 * GcsObjectReader (the notifier's SDK-free reader) against the GCS fake: the reading half of the
 * ObjectStore contract — with objects written by the SDK-based GcsObjectStore, so the two adapters
 * must agree on keys, metadata and generations — plus byte cap, hash check, auth and error mapping.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Storage } from '@google-cloud/storage';
import { ImageRejectedError, ObjectNotFoundError, PixelpipeError, TransientError } from '../../shared/errors';
import type { ObjectStore } from '../../shared/ports';
import { defaultPolicy } from '../../shared/resilience';
import { GcsObjectReader } from '../../functions/gcp/gcs-object-reader';
import { GcsObjectStore } from '../../functions/gcp/gcs-object-store';
import type { RequestAuthorizer } from '../../functions/gcp/google-auth';
import { objectStoreContract } from '../contracts/object-store.contract';
import { startGcsFake, type GcsFake } from '../servers/gcs-fake';

process.env.METADATA_SERVER_DETECTION = 'none';

const fastPolicy = (name: string, timeoutMs = 5000) => defaultPolicy(name, { attempts: 3, baseDelayMs: 1, maxDelayMs: 5, timeoutMs });
const sdkStore = (url: string) =>
  new GcsObjectStore(new Storage({ apiEndpoint: url, projectId: 'pixelpipe-test', retryOptions: { autoRetry: false } }), { policy: fastPolicy('writer') });

/** Counts the headers it hands out, so the tests can see every request was authorized. */
function countingAuth(): RequestAuthorizer & { calls: number } {
  const a = {
    calls: 0,
    headers() {
      a.calls++;
      return Promise.resolve({ authorization: 'Bearer test-token' });
    },
  };
  return a;
}

objectStoreContract('GCS reader (gcs-fake; writes through GcsObjectStore)', async () => {
  const fake = await startGcsFake({ buckets: ['contract-bucket'] });
  const writer = sdkStore(fake.url);
  const reader = new GcsObjectReader(countingAuth(), { endpoint: fake.url, policy: fastPolicy('contract') });
  const store: ObjectStore = {
    get: (b, k, o) => reader.get(b, k, o),
    head: (b, k, o) => reader.head(b, k, o),
    put: (b, k, body, o) => writer.put(b, k, body, o),
    list: (b, p, o) => writer.list(b, p, o),
    delete: (b, k, o) => writer.delete(b, k, o),
  };
  return { store, bucket: 'contract-bucket', close: () => fake.close() };
});

describe('GcsObjectReader specifics (gcs-fake)', () => {
  let fake: GcsFake;
  let writer: GcsObjectStore;
  let auth: ReturnType<typeof countingAuth>;
  let reader: GcsObjectReader;
  beforeAll(async () => {
    fake = await startGcsFake({ buckets: ['b'] });
    writer = sdkStore(fake.url);
  });
  beforeEach(() => {
    auth = countingAuth();
    // A fresh breaker per test: a test that exhausts retries opens the circuit for the next one.
    reader = new GcsObjectReader(auth, { endpoint: fake.url, policy: fastPolicy('specifics') });
  });
  afterEach(() => fake.clearFaults());
  afterAll(() => fake.close());

  test('reads a key with spaces, slashes and non-ASCII characters, authorizing every request', async () => {
    const key = 'manifests/ä b/ü#?.json';
    await writer.put('b', key, Buffer.from('{"ok":true}'), { contentType: 'application/json', metadata: { 'pixelpipe-image': 'x' } });
    const got = await reader.get('b', key);
    expect(got.body.toString()).toBe('{"ok":true}');
    expect(got).toMatchObject({ key, contentType: 'application/json', metadata: { 'pixelpipe-image': 'x' } });
    expect(auth.calls).toBe(2); // metadata + media
  });

  test('the byte cap holds even when the metadata size is wrong (counted while streaming)', async () => {
    await writer.put('b', 'lying', Buffer.alloc(300_000, 1), { contentType: 'application/octet-stream' });
    fake.misreportSize('b', 'lying', 10);
    const err = await reader.get('b', 'lying', { maxBytes: 1000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageRejectedError);
    expect((err as ImageRejectedError).code).toBe('too_many_bytes');
  });

  test('an oversized object is refused from its metadata, without downloading it', async () => {
    await writer.put('b', 'big', Buffer.alloc(5000, 1), { contentType: 'application/octet-stream' });
    const before = fake.requests.length;
    await expect(reader.get('b', 'big', { maxBytes: 100 })).rejects.toBeInstanceOf(ImageRejectedError);
    expect(fake.requests.slice(before)).toHaveLength(1);
  });

  test('503 is retried, reset is transient, 403 is permanent and not retried, 404 is ObjectNotFoundError', async () => {
    await writer.put('b', 'x', Buffer.from('x'), { contentType: 'text/plain' });
    fake.injectFault({ status: 503, times: 1, method: 'GET' });
    await expect(reader.get('b', 'x')).resolves.toMatchObject({ size: 1 });

    fake.injectFault({ status: 'reset', times: 10, method: 'GET' });
    await expect(reader.head('b', 'x')).rejects.toBeInstanceOf(TransientError);
    fake.clearFaults();

    reader = new GcsObjectReader(auth, { endpoint: fake.url, policy: fastPolicy('specifics-2') });
    fake.injectFault({ status: 403, times: 5, method: 'GET' });
    const before = fake.requests.length;
    const err = await reader.get('b', 'x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PixelpipeError);
    expect((err as PixelpipeError).retryable).toBe(false);
    expect(fake.requests.length - before).toBe(1);
    fake.clearFaults();
    await expect(reader.get('b', 'nope')).rejects.toBeInstanceOf(ObjectNotFoundError);
    await expect(reader.head('b', 'nope')).resolves.toBeNull();
  });

  test('a stalled answer is cut by the per-attempt timeout and reported as transient', async () => {
    await writer.put('b', 'slow', Buffer.from('x'), { contentType: 'text/plain' });
    fake.injectFault({ status: 503, delayMs: 700, times: 1, method: 'GET' });
    const r = new GcsObjectReader(auth, { endpoint: fake.url, policy: defaultPolicy('stall', { attempts: 1, timeoutMs: 200 }) });
    // The fault would answer 503 after 700 ms: a timeout code proves the attempt was cut first.
    await expect(r.get('b', 'slow')).rejects.toMatchObject({ retryable: true, code: 'storage_timeout' });
  });
});

describe('GcsObjectReader hash check (hand-rolled server)', () => {
  test('a body that does not match x-goog-hash is a transient failure, not a corrupt manifest', async () => {
    const server = createServer((req, res) => {
      if (!req.url?.includes('alt=media')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ name: 'm.json', bucket: 'b', generation: '7', size: '2', contentType: 'application/json' }));
        return;
      }
      // md5 of "{}" is mZFLkyvTelC5g8XnyQrpOw==; send different bytes of the same length.
      res.writeHead(200, { 'content-type': 'application/json', 'x-goog-hash': 'crc32c=AAAAAA==,md5=mZFLkyvTelC5g8XnyQrpOw==' });
      res.end('[]');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const r = new GcsObjectReader(countingAuth(), { endpoint: url, policy: defaultPolicy('hash', { attempts: 1 }) });
      const err = await r.get('b', 'm.json').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TransientError);
      expect(String((err as Error).message)).toMatch(/stored hash/);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});
