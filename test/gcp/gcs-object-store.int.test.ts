/**
 * GcsObjectStore against local GCS servers: the shared ObjectStore contract on the fake (always) and
 * on firebase-tools' storage emulator (when installed, see test/servers/firebase-storage.ts), plus
 * the adapter's own guarantees: streaming byte cap, error mapping, retries.
 */
import { Storage } from '@google-cloud/storage';
import { ImageRejectedError, ObjectNotFoundError, PixelpipeError, TransientError } from '../../shared/errors';
import { defaultPolicy } from '../../shared/resilience';
import { GcsObjectStore } from '../../functions/gcp/gcs-object-store';
import { objectStoreContract } from '../contracts/object-store.contract';
import { findFirebaseTools, startFirebaseStorage } from '../servers/firebase-storage';
import { startGcsFake, type GcsFake } from '../servers/gcs-fake';

// Never let a client library probe the metadata server (a non-loopback address).
process.env.METADATA_SERVER_DETECTION = 'none';

const fastPolicy = (name: string) => defaultPolicy(name, { attempts: 3, baseDelayMs: 1, maxDelayMs: 5, timeoutMs: 5000 });
const client = (url: string) => new Storage({ apiEndpoint: url, projectId: 'pixelpipe-test', retryOptions: { autoRetry: false } });

objectStoreContract('GCS (gcs-fake)', async () => {
  const fake = await startGcsFake({ buckets: ['contract-bucket'] });
  return { store: new GcsObjectStore(client(fake.url), { policy: fastPolicy('contract') }), bucket: 'contract-bucket', close: () => fake.close() };
});

// firebase-tools is optional (not a project dependency): its absence is reported, not failed.
if (findFirebaseTools()) {
  objectStoreContract('GCS (firebase-tools storage emulator)', async () => {
    const fb = await startFirebaseStorage();
    if (!fb) throw new Error('firebase-tools disappeared');
    return { store: new GcsObjectStore(client(fb.url), { policy: fastPolicy('firebase') }), bucket: 'contract-bucket', close: () => fb.stop() };
  });
} else {
  console.info('firebase-tools not installed: the ObjectStore contract runs against gcs-fake only (set PIXELPIPE_FIREBASE_TOOLS to add it).');
}

describe('GcsObjectStore specifics (gcs-fake)', () => {
  let fake: GcsFake;
  let store: GcsObjectStore;
  beforeAll(async () => {
    fake = await startGcsFake({ buckets: ['b'] });
    store = new GcsObjectStore(client(fake.url), { policy: fastPolicy('specifics') });
  });
  afterAll(() => fake.close());
  afterEach(() => {
    fake.clearFaults();
    // A fresh breaker per test: a test that exhausts retries opens the circuit for the next one.
    store = new GcsObjectStore(client(fake.url), { policy: fastPolicy('specifics') });
  });

  test('the byte cap holds even when the metadata size is wrong (counted while streaming)', async () => {
    await store.put('b', 'lying', Buffer.alloc(300_000, 1), { contentType: 'application/octet-stream' });
    fake.misreportSize('b', 'lying', 10);
    const err = await store.get('b', 'lying', { maxBytes: 1000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageRejectedError);
    expect((err as ImageRejectedError).code).toBe('too_many_bytes');
  });

  test('an oversized object is refused from its metadata, without downloading it', async () => {
    await store.put('b', 'big', Buffer.alloc(5000, 1), { contentType: 'application/octet-stream' });
    const before = fake.requests.length;
    await expect(store.get('b', 'big', { maxBytes: 100 })).rejects.toMatchObject({ code: 'too_many_bytes' });
    const media = fake.requests.slice(before).filter((r) => r.method === 'GET' && r.path.endsWith('/o/big'));
    expect(media).toHaveLength(1); // the metadata request only
  });

  test('get returns the body of the generation its metadata describes', async () => {
    const a = await store.put('b', 'gen', Buffer.from('first'), { contentType: 'text/plain' });
    const got = await store.get('b', 'gen');
    expect(got.generation).toBe(a.generation);
    expect(got.body.toString()).toBe('first');
  });

  test('5xx is retried and then succeeds', async () => {
    await store.put('b', 'flaky', Buffer.from('ok'), { contentType: 'text/plain' });
    fake.injectFault({ status: 503, times: 2, method: 'GET', pathIncludes: '/o/flaky' });
    await expect(store.get('b', 'flaky')).resolves.toMatchObject({ size: 2 });
  });

  test('persistent 5xx and connection resets become TransientError', async () => {
    fake.injectFault({ status: 503, times: 10, method: 'GET' });
    await expect(store.head('b', 'x')).rejects.toBeInstanceOf(TransientError);
    fake.clearFaults();
    store = new GcsObjectStore(client(fake.url), { policy: fastPolicy('specifics') });
    fake.injectFault({ status: 'reset', times: 10, method: 'GET' });
    const err = await store.head('b', 'x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect((err as TransientError).retryable).toBe(true);
  });

  test('403 is permanent (not retried), 404 is ObjectNotFoundError', async () => {
    fake.injectFault({ status: 403, times: 5, method: 'GET' });
    const before = fake.requests.length;
    const err = await store.get('b', 'x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PixelpipeError);
    expect((err as PixelpipeError).retryable).toBe(false);
    expect(fake.requests.length - before).toBe(1);
    fake.clearFaults();
    await expect(store.get('b', 'nope')).rejects.toBeInstanceOf(ObjectNotFoundError);
  });

  test('a connection refused (server gone) is transient', async () => {
    const gone = await startGcsFake({ buckets: ['b'] });
    const url = gone.url;
    await gone.close();
    const s = new GcsObjectStore(client(url), { policy: fastPolicy('gone') });
    await expect(s.put('b', 'k', Buffer.from('x'), { contentType: 'text/plain' })).rejects.toBeInstanceOf(TransientError);
  });
});
