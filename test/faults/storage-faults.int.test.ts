/**
 * Storage faults seen through the object-store adapters and the process functions:
 * - GcsObjectStore against the GCS fake with its FaultRule injection;
 * - S3ObjectStore against s3rver behind the fault-injecting proxy (503/500, resets, a response that
 *   never comes, a body that trickles or stops halfway).
 *
 * What must hold: transient faults are retried with jittered exponential backoff and succeed once the
 * fault clears; a stalled call is cut at the per-attempt timeout (`storage_timeout`), retried a
 * counted number of times, and gives up by the caller's deadline; permanent errors (403, 404) cost
 * exactly one request; a circuit breaker stops a dead downstream from being hammered and lets one
 * trial through after `openMs`. Counts are taken at the server (or proxy), not from the client's point
 * of view, and nothing here depends on how fast the machine is: attempts are counted, not timed, and
 * the only time bound is the deadline the test itself gives the call (that the connections are really
 * closed is test/faults/cancellation.int.test.ts).
 *
 * Policies are injected short (5–50 ms backoff; 500 ms per attempt where a stall is under test, 5 s
 * where every fault is answered, so load cannot add a retry) so the file runs in seconds. The
 * GCP process function is the exception: it runs exactly as deployed (default policy) over HTTP.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Storage } from '@google-cloud/storage';
import sharp from 'sharp';
import { GcsObjectStore } from '../../functions/gcp/gcs-object-store';
import { createProcessHandler } from '../../functions/aws/process-handler';
import { S3ObjectStore } from '../../functions/aws/s3-object-store';
import { systemClock } from '../../shared/clock';
import { loadConfig } from '../../shared/config';
import { ObjectNotFoundError, PixelpipeError, TransientError } from '../../shared/errors';
import { SharpImageProcessor } from '../../shared/image/sharp-image-processor';
import { silentLogger } from '../../shared/logger';
import { parseManifest, type Manifest } from '../../shared/manifest';
import type { ObjectStore } from '../../shared/ports';
import { CircuitBreaker, defaultPolicy, type ResiliencePolicy } from '../../shared/resilience';
import { applyEnv, functionEnv, loadFunction, makeServiceAccount, sendCloudEvent, serve, type ServedFunction } from '../gcp/gcp-test-kit';
import { startGcsFake, type GcsFake } from '../servers/gcs-fake';
import { startLocalS3, type LocalS3 } from '../servers/s3';
import { startFaultProxy, type FaultProxy } from './fault-proxy';

jest.setTimeout(90_000);
process.env.METADATA_SERVER_DETECTION = 'none';

const ROOT = join(__dirname, '..', '..');
/** Per-attempt timeout where a stall is the fault under test: short, so stalls cost little. */
const TIMEOUT_MS = 500;
/**
 * Per-attempt timeout where every fault is answered (statuses, resets, slow bodies): generous, so a
 * loaded machine cannot turn a slow but successful attempt into an extra, uncounted retry.
 */
const ANSWERED_MS = 5000;
const ATTEMPTS = 4;
/** A deadline that leaves room for two attempts of TIMEOUT_MS but not for all four. */
const TWO_ATTEMPTS_MS = 2 * TIMEOUT_MS + 150;
/** Slack past a deadline for the aborted attempt to wind down (sockets closed): generous, never a speed claim. */
const WIND_DOWN_MS = 1000;

/** A controllable clock for the breakers, so "open" and "half-open" do not depend on test speed. */
class ManualClock {
  t = 1_000_000;
  now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

interface Recorded {
  policy: ResiliencePolicy;
  /** Every backoff chosen: attempt number and delay. */
  delays: Array<{ attempt: number; delay: number }>;
}

/** The brief's short policy, with an observable backoff and (optionally) a breaker on a manual clock. */
function shortPolicy(name: string, breaker?: { failureThreshold: number; openMs: number; clock: ManualClock }, timeoutMs = ANSWERED_MS): Recorded {
  const delays: Recorded['delays'] = [];
  const base = defaultPolicy(name, { baseDelayMs: 5, maxDelayMs: 50, timeoutMs, onRetry: (_e, attempt, delay) => delays.push({ attempt, delay }) });
  const policy: ResiliencePolicy = breaker
    ? { ...base, breaker: new CircuitBreaker(name, { failureThreshold: breaker.failureThreshold, openMs: breaker.openMs, now: breaker.clock.now }) }
    : base;
  return { policy, delays };
}

/** The short policy with the short attempt timeout, for the stall tests. */
const stallPolicy = (name: string): Recorded => shortPolicy(name, undefined, TIMEOUT_MS);

/** Every backoff lies in [0, min(max, base·2^(n-1))): full jitter on an exponential cap. */
function expectJitteredBackoff(delays: Recorded['delays']): void {
  expect(delays.length).toBeGreaterThan(0);
  for (const { attempt, delay } of delays) {
    expect(delay).toBeGreaterThanOrEqual(0);
    expect(delay).toBeLessThan(Math.min(50, 5 * 2 ** (attempt - 1)));
  }
}

async function failure(p: Promise<unknown>): Promise<PixelpipeError> {
  const err = await p.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PixelpipeError);
  return err as PixelpipeError;
}

async function timed<T>(p: Promise<T>): Promise<{ ms: number; value?: T; error?: unknown }> {
  const t0 = Date.now();
  try {
    const value = await p;
    return { ms: Date.now() - t0, value };
  } catch (error) {
    return { ms: Date.now() - t0, error };
  }
}

// ────────────────────────────────────────────────────────────────────────────────────────────────
describe('GcsObjectStore against the GCS fake with injected faults', () => {
  let fake: GcsFake;
  const client = () => new Storage({ apiEndpoint: fake.url, projectId: 'pixelpipe-test', retryOptions: { autoRetry: false } });
  const served = (filter: { method: string; pathIncludes: string }) =>
    fake.requests.filter((r) => r.method === filter.method && r.path.includes(filter.pathIncludes)).length;

  beforeAll(async () => {
    fake = await startGcsFake({ buckets: ['b'] });
  });
  afterAll(() => fake.close());
  afterEach(() => fake.clearFaults());

  test('a write hit by 503, 500 and 429 is retried with jittered backoff and succeeds once the fault clears', async () => {
    const { policy, delays } = shortPolicy('gcs-write');
    const store = new GcsObjectStore(client(), { policy });
    for (const status of [503, 500, 429]) fake.injectFault({ status, times: 1, method: 'POST', pathIncludes: '/upload/storage/v1/b/b/o' });
    const before = served({ method: 'POST', pathIncludes: '/upload/storage/v1/b/b/o' });
    const info = await store.put('b', 'retry/write', Buffer.from('hello'), { contentType: 'text/plain' });
    expect(info.size).toBe(5);
    expect(served({ method: 'POST', pathIncludes: '/upload/storage/v1/b/b/o' }) - before).toBe(4);
    expect(fake.getObject('b', 'retry/write')?.body.toString()).toBe('hello');
    expect(delays.map((d) => d.attempt)).toEqual([1, 2, 3]);
    expectJitteredBackoff(delays);
  });

  test('reads survive two connection resets', async () => {
    const { policy, delays } = shortPolicy('gcs-reset');
    const store = new GcsObjectStore(client(), { policy });
    await store.put('b', 'retry/reset', Buffer.from('bytes'), { contentType: 'text/plain' });
    fake.injectFault({ status: 'reset', times: 2, method: 'GET', pathIncludes: '/o/retry/reset' });
    const got = await store.get('b', 'retry/reset');
    expect(got.body.toString()).toBe('bytes');
    expect(delays).toHaveLength(2);
    expectJitteredBackoff(delays);
  });

  test('a stalled read is cut at the per-attempt timeout (storage_timeout), retried a bounded number of times, and gives up by its deadline', async () => {
    await new GcsObjectStore(client(), { policy: shortPolicy('gcs-seed').policy }).put('b', 'retry/stall', Buffer.from('late'), { contentType: 'text/plain' });
    // The fault answers 503 only after 10 s: storage_timeout (not storage_unavailable) proves each attempt was cut first.
    const stall = (times: number) => fake.injectFault({ status: 503, delayMs: 10_000, times, method: 'GET', pathIncludes: '/o/retry/stall' });

    const single = new GcsObjectStore(client(), { policy: defaultPolicy('gcs-stall-1', { attempts: 1, timeoutMs: TIMEOUT_MS }) });
    stall(1);
    const one = await failure(single.get('b', 'retry/stall'));
    expect([one.code, one.retryable]).toEqual(['storage_timeout', true]);
    fake.clearFaults();

    // Stalled for good: every attempt times out; the call retries exactly ATTEMPTS - 1 times, then gives up.
    stall(100);
    const all = stallPolicy('gcs-stall');
    expect((await failure(new GcsObjectStore(client(), { policy: all.policy }).get('b', 'retry/stall'))).code).toBe('storage_timeout');
    expect(all.delays.map((d) => d.attempt)).toEqual([1, 2, 3]);
    fake.clearFaults();

    // Stalled for good, with a deadline that leaves room for two attempts: the deadline, not the
    // attempt count, ends the call, and it ends by that deadline.
    stall(100);
    const cut = stallPolicy('gcs-stall-deadline');
    const deadline = Date.now() + TWO_ATTEMPTS_MS;
    const late = await timed(new GcsObjectStore(client(), { policy: cut.policy }).get('b', 'retry/stall', { deadline }));
    expect((late.error as PixelpipeError).retryable).toBe(true);
    expect(cut.delays.length).toBeLessThan(ATTEMPTS - 1);
    expect(Date.now()).toBeLessThanOrEqual(deadline + WIND_DOWN_MS);
    fake.clearFaults();

    // Stalled twice, then the fault clears: the third attempt succeeds. (A fresh store: the failures
    // above count towards the default breaker, which would otherwise be open by now.)
    stall(2);
    const fresh = stallPolicy('gcs-stall-2');
    const recovered = await new GcsObjectStore(client(), { policy: fresh.policy }).get('b', 'retry/stall');
    expect(recovered.body.toString()).toBe('late');
    expect(fresh.delays.map((d) => d.attempt)).toEqual([1, 2]);
  });

  test('permanent errors are not retried: 403 and 404 cost one request each', async () => {
    const { policy, delays } = shortPolicy('gcs-permanent');
    const store = new GcsObjectStore(client(), { policy });
    await store.put('b', 'perm/denied', Buffer.from('x'), { contentType: 'text/plain' });

    fake.injectFault({ status: 403, times: 10, method: 'GET', pathIncludes: '/o/perm/denied' });
    let before = served({ method: 'GET', pathIncludes: '/o/perm/denied' });
    const denied = await failure(store.get('b', 'perm/denied'));
    expect(denied.retryable).toBe(false);
    expect(served({ method: 'GET', pathIncludes: '/o/perm/denied' }) - before).toBe(1);
    fake.clearFaults();

    fake.injectFault({ status: 403, times: 10, method: 'POST', pathIncludes: '/upload/storage/v1/b/b/o' });
    before = served({ method: 'POST', pathIncludes: '/upload/storage/v1/b/b/o' });
    expect((await failure(store.put('b', 'perm/write', Buffer.from('x'), { contentType: 'text/plain' }))).retryable).toBe(false);
    expect(served({ method: 'POST', pathIncludes: '/upload/storage/v1/b/b/o' }) - before).toBe(1);
    fake.clearFaults();

    before = served({ method: 'GET', pathIncludes: '/o/perm/missing' });
    expect(await failure(store.get('b', 'perm/missing'))).toBeInstanceOf(ObjectNotFoundError);
    expect(await store.head('b', 'perm/missing')).toBeNull();
    expect(served({ method: 'GET', pathIncludes: '/o/perm/missing' }) - before).toBe(2);
    expect(delays).toEqual([]);
  });

  test('the circuit breaker keeps an always-503 downstream from being hammered and recovers through one trial', async () => {
    const clock = new ManualClock();
    const threshold = 3;
    const store = new GcsObjectStore(client(), { policy: shortPolicy('gcs-breaker', { failureThreshold: threshold, openMs: 5000, clock }).policy });
    await store.put('b', 'cb/key', Buffer.from('ok'), { contentType: 'text/plain' });
    fake.injectFault({ status: 503, times: 10_000, method: 'GET' });
    const count = () => served({ method: 'GET', pathIncludes: '/o/cb/key' });
    const before = count();

    // 20 sequential operations, then 20 concurrent ones, all while the downstream is dead.
    const errors: PixelpipeError[] = [];
    for (let i = 0; i < 20; i++) errors.push(await failure(store.get('b', 'cb/key')));
    errors.push(...(await Promise.all(Array.from({ length: 20 }, () => failure(store.get('b', 'cb/key'))))));
    const hammer = count() - before;
    console.log(`GCS: 40 operations against an always-503 downstream sent ${hammer} request(s) (threshold ${threshold}; without a breaker: ${40 * ATTEMPTS})`);
    expect(hammer).toBe(threshold);
    // Even the first operation ends with circuit_open: its third failure opened the circuit before its last attempt.
    expect(errors.every((e) => e.retryable && e.code === 'circuit_open')).toBe(true);

    // Half-open after openMs: exactly one trial goes out; it fails and the circuit opens again.
    clock.advance(5000);
    await Promise.all(Array.from({ length: 5 }, () => failure(store.get('b', 'cb/key'))));
    expect(count() - before).toBe(threshold + 1);

    // The downstream heals; the next trial closes the circuit and traffic flows again.
    fake.clearFaults();
    clock.advance(5000);
    await expect(store.get('b', 'cb/key')).resolves.toMatchObject({ size: 2 });
    await Promise.all(Array.from({ length: 5 }, () => store.get('b', 'cb/key')));
    expect(count() - before).toBe(threshold + 1 + 2 * 6);
  });
});

// ────────────────────────────────────────────────────────────────────────────────────────────────
describe('S3ObjectStore against s3rver behind a fault-injecting proxy', () => {
  let s3: LocalS3;
  let proxy: FaultProxy;
  const client = () => s3.client(proxy.url);
  const direct = () => s3.client();

  beforeAll(async () => {
    s3 = await startLocalS3(['b']);
    proxy = await startFaultProxy(s3.endpoint);
  });
  afterAll(async () => {
    await proxy.close();
    await s3.close();
  });
  afterEach(() => proxy.clear());

  test('writes hit by 503, 500 and a reset are retried with jittered backoff and land once the fault clears', async () => {
    const { policy, delays } = shortPolicy('s3-write');
    const store = new S3ObjectStore(client(), { policy });
    proxy.inject({ action: { kind: 'status', status: 503 }, times: 1, method: 'PUT', pathIncludes: '/b/w/1' });
    proxy.inject({ action: { kind: 'status', status: 500 }, times: 1, method: 'PUT', pathIncludes: '/b/w/1' });
    proxy.inject({ action: { kind: 'reset' }, times: 1, method: 'PUT', pathIncludes: '/b/w/1' });
    await store.put('b', 'w/1', Buffer.from('payload'), { contentType: 'text/plain' });
    expect(proxy.count({ method: 'PUT', pathIncludes: '/b/w/1' })).toBe(4);
    expect(proxy.forwarded({ method: 'PUT', pathIncludes: '/b/w/1' })).toBe(1);
    const stored = await direct().send(new GetObjectCommand({ Bucket: 'b', Key: 'w/1' }));
    expect(await stored.Body!.transformToString()).toBe('payload');
    expect(delays.map((d) => d.attempt)).toEqual([1, 2, 3]);
    expectJitteredBackoff(delays);
  });

  test('reads survive connection resets and 503s; a slow but steady body within the timeout is fine', async () => {
    const { policy } = shortPolicy('s3-read');
    const store = new S3ObjectStore(client(), { policy });
    const body = Buffer.alloc(64 * 1024, 7);
    await direct().send(new PutObjectCommand({ Bucket: 'b', Key: 'r/1', Body: body, ContentType: 'application/octet-stream' }));
    proxy.inject({ action: { kind: 'reset' }, times: 2, method: 'GET', pathIncludes: '/b/r/1' });
    proxy.inject({ action: { kind: 'status', status: 503 }, times: 1, method: 'GET', pathIncludes: '/b/r/1' });
    expect((await store.get('b', 'r/1')).body.equals(body)).toBe(true);
    expect(proxy.count({ method: 'GET', pathIncludes: '/b/r/1' })).toBe(4);

    // 8 pieces 15 ms apart: slow, but well within the 300 ms attempt, so one request suffices.
    proxy.inject({ action: { kind: 'slow-body', chunks: 8, intervalMs: 15 }, times: 1, method: 'GET', pathIncludes: '/b/r/1' });
    expect((await store.get('b', 'r/1')).body.equals(body)).toBe(true);
    expect(proxy.count({ method: 'GET', pathIncludes: '/b/r/1' })).toBe(5);
  });

  test('a response that never comes, or a body that stops halfway, is cut at the per-attempt timeout, retried a bounded number of times, and gives up by its deadline', async () => {
    await direct().send(new PutObjectCommand({ Bucket: 'b', Key: 's/1', Body: Buffer.alloc(32 * 1024, 1) }));
    const single = new S3ObjectStore(client(), { policy: defaultPolicy('s3-stall-1', { attempts: 1, timeoutMs: TIMEOUT_MS }) });
    const get = { method: 'GET', pathIncludes: '/b/s/1' };

    for (const action of [{ kind: 'stall' }, { kind: 'stall-body', bytes: 1000 }] as const) {
      // Neither fault ever completes the response: only the attempt's timeout can end the call.
      let before = proxy.count(get);
      proxy.inject({ action, times: 1, ...get });
      const one = await failure(single.get('b', 's/1'));
      expect([action.kind, one.code, proxy.count(get) - before]).toEqual([action.kind, 'storage_timeout', 1]);

      before = proxy.count(get);
      proxy.inject({ action, times: 100, ...get });
      const all = stallPolicy('s3-stall');
      expect((await failure(new S3ObjectStore(client(), { policy: all.policy }).get('b', 's/1'))).code).toBe('storage_timeout');
      expect([action.kind, proxy.count(get) - before, all.delays.length]).toEqual([action.kind, ATTEMPTS, ATTEMPTS - 1]);

      const cut = stallPolicy('s3-stall-deadline');
      const deadline = Date.now() + TWO_ATTEMPTS_MS;
      const late = await timed(new S3ObjectStore(client(), { policy: cut.policy }).get('b', 's/1', { deadline }));
      expect((late.error as PixelpipeError).retryable).toBe(true);
      expect(cut.delays.length).toBeLessThan(ATTEMPTS - 1);
      expect(Date.now()).toBeLessThanOrEqual(deadline + WIND_DOWN_MS);
      proxy.clear();

      proxy.inject({ action, times: 2, ...get });
      const twice = stallPolicy('s3-stall-2');
      expect((await new S3ObjectStore(client(), { policy: twice.policy }).get('b', 's/1')).body.length).toBe(32 * 1024);
      expect(twice.delays.map((d) => d.attempt)).toEqual([1, 2]);
      proxy.clear();
    }
  });

  test('permanent errors are not retried: 403 on read and write, 404 on a missing key, one request each', async () => {
    const { policy, delays } = shortPolicy('s3-permanent');
    const store = new S3ObjectStore(client(), { policy });
    proxy.inject({ action: { kind: 'status', status: 403 }, times: 10, method: 'GET', pathIncludes: '/b/p/denied' });
    expect((await failure(store.get('b', 'p/denied'))).retryable).toBe(false);
    expect(proxy.count({ method: 'GET', pathIncludes: '/b/p/denied' })).toBe(1);

    proxy.inject({ action: { kind: 'status', status: 403 }, times: 10, method: 'PUT', pathIncludes: '/b/p/denied' });
    expect((await failure(store.put('b', 'p/denied', Buffer.from('x'), { contentType: 'text/plain' }))).retryable).toBe(false);
    expect(proxy.count({ method: 'PUT', pathIncludes: '/b/p/denied' })).toBe(1);

    // A real 404 from s3rver itself (no injection).
    expect(await failure(store.get('b', 'p/missing'))).toBeInstanceOf(ObjectNotFoundError);
    expect(await store.head('b', 'p/missing')).toBeNull();
    expect(proxy.count({ pathIncludes: '/b/p/missing' })).toBe(2);
    expect(delays).toEqual([]);
  });

  test('the circuit breaker keeps an always-503 downstream from being hammered and recovers through one trial', async () => {
    const clock = new ManualClock();
    const threshold = 3;
    const store = new S3ObjectStore(client(), { policy: shortPolicy('s3-breaker', { failureThreshold: threshold, openMs: 5000, clock }).policy });
    await direct().send(new PutObjectCommand({ Bucket: 'b', Key: 'cb/1', Body: 'ok' }));
    proxy.inject({ action: { kind: 'status', status: 503 }, times: Infinity });
    const count = () => proxy.count({ pathIncludes: '/b/cb/1' });

    const errors: PixelpipeError[] = [];
    for (let i = 0; i < 20; i++) errors.push(await failure(store.get('b', 'cb/1')));
    errors.push(...(await Promise.all(Array.from({ length: 20 }, () => failure(store.put('b', 'cb/1', Buffer.from('x'), { contentType: 'text/plain' }))))));
    console.log(`S3: 40 operations against an always-503 downstream sent ${count()} request(s) (threshold ${threshold}; without a breaker: ${40 * ATTEMPTS})`);
    expect(count()).toBe(threshold);
    expect(errors.every((e) => e.retryable && e.code === 'circuit_open')).toBe(true);

    clock.advance(5000);
    await Promise.all(Array.from({ length: 5 }, () => failure(store.head('b', 'cb/1'))));
    expect(count()).toBe(threshold + 1);

    proxy.clear();
    clock.advance(5000);
    await expect(store.get('b', 'cb/1')).resolves.toMatchObject({ size: 2 });
    expect(count()).toBe(threshold + 2);
    expect(proxy.forwarded({ pathIncludes: '/b/cb/1' })).toBe(1);
  });
});

// ────────────────────────────────────────────────────────────────────────────────────────────────
describe('a storage 503 on variant writes, through the process functions', () => {
  let jpeg: Buffer;
  beforeAll(async () => {
    jpeg = await sharp(readFileSync(join(ROOT, 'samples', 'landscape.jpg')))
      .resize(800)
      .jpeg()
      .toBuffer();
  });

  /** Every variant the manifest lists exists with its stated type and dimensions. */
  async function expectFullManifest(m: Manifest, read: (key: string) => Promise<{ body: Buffer; contentType?: string }>, variantCount: number) {
    expect(m.status).toBe('processed');
    expect(m.variants).toHaveLength(variantCount);
    for (const v of m.variants) {
      const o = await read(v.key);
      expect(o.contentType).toBe(v.contentType);
      const meta = await sharp(o.body).metadata();
      expect([meta.width, meta.height, meta.format]).toEqual([v.width, v.height, v.format]);
    }
  }

  describe('GCP process entry as deployed, over HTTP (functions-framework, default resilience policy)', () => {
    let fake: GcsFake;
    let fn: ServedFunction;
    let restoreEnv: () => void = () => undefined;
    const ORIGINALS = 'pixelpipe-originals';
    const VARIANTS = 'pixelpipe-variants';

    beforeAll(async () => {
      const sa = makeServiceAccount();
      fake = await startGcsFake({ buckets: [ORIGINALS, VARIANTS] });
      restoreEnv = applyEnv(functionEnv({ storageUrl: fake.url, keyFile: sa.keyFile }));
      fn = await serve(loadFunction(join(ROOT, 'functions', 'gcp', 'process'), 'process'));
    });
    afterAll(async () => {
      await fn?.close();
      await fake?.close();
      restoreEnv();
    });

    test('the invocation fails with 5xx (retryable); redelivery with backoff completes with a full manifest', async () => {
      const id = 'fa017000-0000-4000-8000-000000000001';
      const storage = new Storage({ apiEndpoint: fake.url, projectId: 'pixelpipe-test', retryOptions: { autoRetry: false } });
      await storage.bucket(ORIGINALS).file(`originals/alice/${id}`).save(jpeg, { resumable: false, contentType: 'image/jpeg' });
      const object = fake.getObject(ORIGINALS, `originals/alice/${id}`)!.resource;
      const event = {
        id: 'finalize-1',
        type: 'google.cloud.storage.object.v1.finalized',
        source: `//storage.googleapis.com/projects/_/buckets/${ORIGINALS}`,
        data: object,
      };

      const crashes: string[] = [];
      const spy = jest.spyOn(console, 'error').mockImplementation((...args: unknown[]) => void crashes.push(args.map(String).join(' ')));
      try {
        // Every write to the variants bucket answers 503 (variants, manifest, attempt counter alike).
        fake.injectFault({ status: 503, times: 100_000, method: 'POST', pathIncludes: `/b/${VARIANTS}/o` });
        const first = await sendCloudEvent(fn.url, event, 'structured');
        expect(first.status).toBeGreaterThanOrEqual(500);
        expect(fake.getObject(VARIANTS, `manifests/${id}.json`)).toBeUndefined();
        fake.clearFaults();

        // The platform redelivers with backoff; the entry's breaker (10 s) may refuse the first tries.
        const tries: number[] = [];
        const start = Date.now();
        for (let i = 0, delay = 250; i < 10 && Date.now() - start < 30_000; i++, delay = Math.min(2 * delay, 4000)) {
          const res = await sendCloudEvent(fn.url, event, 'structured');
          tries.push(res.status);
          if (res.status < 300) break;
          await new Promise((r) => setTimeout(r, delay));
        }
        console.log(`GCP process: first delivery 5xx; redeliveries ${JSON.stringify(tries)} over ${Date.now() - start} ms`);
        expect(tries.at(-1)).toBeLessThan(300);
      } finally {
        spy.mockRestore();
      }
      for (const c of crashes) expect(c).toMatch(/^TransientError: /);
      const m = parseManifest(JSON.parse(fake.getObject(VARIANTS, `manifests/${id}.json`)!.body.toString('utf8')));
      expect(m.source).toMatchObject({ generation: object.generation, width: 800 });
      await expectFullManifest(
        m,
        (key) => {
          const o = fake.getObject(VARIANTS, key)!;
          return Promise.resolve({ body: o.body, contentType: o.resource.contentType });
        },
        9,
      );
    });
  });

  describe('AWS process handler with the real S3 adapter through the fault proxy', () => {
    let s3: LocalS3;
    let proxy: FaultProxy;
    let client: S3Client;
    const ORIG = 'fault-originals';
    const VAR = 'fault-variants';

    beforeAll(async () => {
      s3 = await startLocalS3([ORIG, VAR]);
      proxy = await startFaultProxy(s3.endpoint);
      client = new S3Client({
        endpoint: proxy.url,
        region: s3.region,
        forcePathStyle: true,
        credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
        maxAttempts: 1,
      });
    });
    afterAll(async () => {
      client?.destroy();
      await proxy?.close();
      await s3?.close();
    });

    test('the invocation fails (TransientError, Lambda retries); the retry completes with a full manifest', async () => {
      const config = loadConfig({
        PIXELPIPE_ORIGINALS_BUCKET: ORIG,
        PIXELPIPE_VARIANTS_BUCKET: VAR,
        PIXELPIPE_AUTH_MODE: 'anonymous',
        PIXELPIPE_WEBP_EFFORT: '0',
      });
      const clock = new ManualClock();
      const s3Store = new S3ObjectStore(client, { policy: shortPolicy('s3-process', { failureThreshold: 5, openMs: 1000, clock }).policy });
      // Records when each write starts, to show that none starts after the invocation has failed.
      const putsStartedAt: number[] = [];
      const store: ObjectStore = {
        get: (b, k, o) => s3Store.get(b, k, o),
        head: (b, k, o) => s3Store.head(b, k, o),
        list: (b, p, o) => s3Store.list(b, p, o),
        delete: (b, k, o) => s3Store.delete(b, k, o),
        put: (b, k, body, o) => {
          putsStartedAt.push(Date.now());
          return s3Store.put(b, k, body, o);
        },
      };
      const handler = createProcessHandler({ store, processor: new SharpImageProcessor(), clock: systemClock, logger: silentLogger, config });

      const key = 'originals/alice/fa017000-0000-4000-8000-000000000002';
      await s3.client().send(new PutObjectCommand({ Bucket: ORIG, Key: key, Body: jpeg, ContentType: 'image/jpeg' }));
      const created = s3.events.find((e) => e.Records[0].s3.object.key === key)!;
      const lambdaEvent = { Records: created.Records.map((r) => ({ ...r, eventSource: 'aws:s3' })) };

      proxy.inject({ action: { kind: 'status', status: 503 }, times: Infinity, method: 'PUT', pathIncludes: `/${VAR}/variants/` });
      const err = await handler(lambdaEvent).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(TransientError);
      expect((err as TransientError).retryable).toBe(true);
      const head = await s3
        .client()
        .send(new HeadObjectCommand({ Bucket: VAR, Key: 'manifests/fa017000-0000-4000-8000-000000000002.json' }))
        .catch((e: unknown) => e);
      expect((head as { name?: string }).name).toBe('NotFound');
      // The breaker capped the damage: 5 failures opened it, the rest of the 9 outputs never went out.
      const variantPuts = proxy.count({ method: 'PUT', pathIncludes: `/${VAR}/variants/` });
      console.log(`AWS process: ${variantPuts} variant PUT(s) reached the proxy during the outage (9 outputs × ${ATTEMPTS} attempts without a breaker)`);
      expect(variantPuts).toBeLessThanOrEqual(5 + 4);
      // Nothing outlives the failed invocation (a frozen Lambda would otherwise resume it later).
      const failedAt = Date.now();
      const atFailure = proxy.count();
      // No request is still open at the proxy when the invocation has failed.
      expect(proxy.inFlight()).toBe(0);
      await new Promise((r) => setTimeout(r, 300));
      expect(proxy.count()).toBe(atFailure);
      expect(putsStartedAt.filter((t) => t > failedAt)).toEqual([]);

      proxy.clear();
      clock.advance(1000);
      const result = await handler(lambdaEvent);
      expect(result.outcomes).toEqual([expect.objectContaining({ status: 'processed' })]);
      const manifestObj = await s3.client().send(new GetObjectCommand({ Bucket: VAR, Key: 'manifests/fa017000-0000-4000-8000-000000000002.json' }));
      const m = parseManifest(JSON.parse(await manifestObj.Body!.transformToString()));
      // The attempt counter (state/) was not faulted, but its write goes through the same open breaker
      // and is best effort: during a storage outage the event-age cap is what bounds retries.
      expect(m.attempts).toBeGreaterThanOrEqual(1);
      await expectFullManifest(
        m,
        async (k) => {
          const o = await s3.client().send(new GetObjectCommand({ Bucket: VAR, Key: k }));
          return { body: Buffer.from(await o.Body!.transformToByteArray()), contentType: o.ContentType };
        },
        9,
      );
    });
  });
});
