/**
 * Deadlines on both clouds' handlers, with jest's fake clock (Date.now and every timer) and in-memory
 * fakes that retry like the adapters do: a storage or publish stall that the default policy would retry
 * for about 81 s ends before the invocation's deadline, with the attempt recorded (or, on the last
 * allowed attempt, the image ended `failed`), and no request left running.
 */
import { loadConfig, type PixelpipeConfig } from '../../shared/config';
import { PixelpipeError } from '../../shared/errors';
import { createLogger } from '../../shared/logger';
import { manifestKey, attemptsKey } from '../../shared/keys';
import { parseManifest } from '../../shared/manifest';
import type { ImageProcessor, Logger } from '../../shared/ports';
import { FixedClock } from '../../shared/testing/fakes';
import { createProcessHandler as awsProcess } from '../../functions/aws/process-handler';
import { createNotifyHandler as awsNotify } from '../../functions/aws/notify-handler';
import { createProcessHandler as gcpProcess } from '../../functions/gcp/process-handler';
import { createNotifyHandler as gcpNotify } from '../../functions/gcp/notify-handler';
import { attemptsOverlap, FaultyPublisher, FaultyStore } from '../support/faulty-store';

const ID = '6f1c2a4e-8b3d-4c5e-9f70-1a2b3c4d5e6f';
const KEY = `originals/alice/${ID}`;
const T0 = new Date('2026-03-10T12:00:00Z').getTime();

/** Rendering is never reached in these tests: the original's read is what stalls. */
const processor: ImageProcessor = {
  render: () => Promise.reject(new Error('render must not be reached')),
};

function setup(env: Record<string, string> = {}) {
  const config: PixelpipeConfig = loadConfig({ PIXELPIPE_AUTH_MODE: 'anonymous', ...env });
  const lines: Array<Record<string, unknown>> = [];
  const logger: Logger = createLogger({ level: 'debug', sink: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) });
  const store = new FaultyStore();
  return { config, lines, logger, store };
}

/** Starts `run`, advances the fake clock in steps until it settles, and says when (fake ms) it did. */
async function settle<T>(run: () => Promise<T>, limitMs = 200_000): Promise<{ result?: T; error?: unknown; at: number }> {
  let done: { result?: T; error?: unknown; at: number } | undefined;
  run().then(
    (result) => (done = { result, at: Date.now() }),
    (error: unknown) => (done = { error, at: Date.now() }),
  );
  for (let t = 0; !done && t < limitMs; t += 100) await jest.advanceTimersByTimeAsync(100);
  if (!done) throw new Error(`did not settle within ${limitMs} ms of fake time`);
  return done;
}

const lambdaContext = (timeoutMs: number) => {
  const start = Date.now();
  return { getRemainingTimeInMillis: () => timeoutMs - (Date.now() - start), awsRequestId: 'req-1' };
};

const s3Event = (bucket: string, key: string, versionId: string) => ({
  Records: [
    {
      eventSource: 'aws:s3',
      eventName: 'ObjectCreated:Put',
      eventTime: new Date(T0).toISOString(),
      s3: { bucket: { name: bucket }, object: { key, size: 10, versionId } },
    },
  ],
});

const finalized = (bucket: string, name: string, generation: string) => ({
  id: 'evt-1',
  type: 'google.cloud.storage.object.v1.finalized',
  source: `//storage.googleapis.com/projects/_/buckets/${bucket}`,
  time: new Date(T0).toISOString(),
  data: { bucket, name, generation, metadata: { 'pixelpipe-trace': '4bf92f3577b34da6a3ce929d0e0e4736' } },
});

beforeEach(() => jest.useFakeTimers({ now: T0 }));
afterEach(() => jest.useRealTimers());

describe('the stall these tests inject', () => {
  test('without a deadline the default policy retries a hanging read for about 81 s', async () => {
    const { store, config } = setup();
    await store.inner.put(config.buckets.originals, KEY, Buffer.from('x'), { contentType: 'image/jpeg' });
    store.fault = (op, _b, key) => (op === 'get' && key === KEY ? 'hang' : undefined);
    const out = await settle(() => store.get(config.buckets.originals, KEY));
    expect(out.error).toMatchObject({ code: 'storage_timeout', retryable: true });
    expect(out.at - T0).toBeGreaterThanOrEqual(80_000);
    expect(out.at - T0).toBeLessThan(82_000);
    expect(store.attempts.filter((a) => a.op === 'get')).toHaveLength(4);
  });
});

describe.each([
  {
    cloud: 'AWS',
    timeoutMs: 60_000, // serverless.yml: the process function's timeout
    run: (deps: ReturnType<typeof setup>, generation: string): Promise<unknown> =>
      awsProcess({ ...deps, processor, clock: new FixedClock(T0) })(s3Event(deps.config.buckets.originals, KEY, generation), lambdaContext(60_000)),
  },
  {
    cloud: 'GCP',
    timeoutMs: 60_000, // PIXELPIPE_FUNCTION_TIMEOUT_SECONDS below, as the deploy sets it from --timeout
    run: (deps: ReturnType<typeof setup>, generation: string): Promise<unknown> =>
      gcpProcess({ ...deps, processor, clock: new FixedClock(T0) })(finalized(deps.config.buckets.originals, KEY, generation)),
  },
])('$cloud process handler under a storage stall', ({ timeoutMs, run }) => {
  const env = { PIXELPIPE_FUNCTION_TIMEOUT_SECONDS: String(timeoutMs / 1000), PIXELPIPE_MAX_ATTEMPTS: '3' };

  test('ends before the deadline with the attempt recorded and a retryable error', async () => {
    const deps = setup(env);
    const { store, config } = deps;
    const info = await store.inner.put(config.buckets.originals, KEY, Buffer.from('x'), { contentType: 'image/jpeg' });
    store.fault = (op, bucket, key) => (op === 'get' && bucket === config.buckets.originals && key === KEY ? 'hang' : undefined);

    const out = await settle(() => run(deps, info.generation));

    expect(out.error).toBeInstanceOf(PixelpipeError);
    expect((out.error as PixelpipeError).retryable).toBe(true);
    expect(out.at).toBeLessThan(T0 + timeoutMs);
    // Normal work stopped at the reserve (5 s by default) before the deadline, not at the 81 s the policy allows.
    const reads = store.attempts.filter((a) => a.op === 'get' && a.key === KEY);
    expect(Math.max(...reads.map((a) => a.endedAt!))).toBeLessThanOrEqual(T0 + timeoutMs - config.invocation.reserveMs);
    expect(reads.length).toBeLessThan(4);
    const counter = await store.inner.get(config.buckets.variants, attemptsKey(config.layout, ID, info.generation));
    expect(counter.body.toString()).toBe('1');
    expect(store.running()).toEqual([]);
    expect(attemptsOverlap(store.attempts)).toBe(false);
    await expect(store.inner.head(config.buckets.variants, manifestKey(config.layout, ID))).resolves.toBeNull();
  });

  test('the last allowed attempt still ends failed with retries_exhausted, before the deadline', async () => {
    const deps = setup(env);
    const { store, config, lines } = deps;
    const info = await store.inner.put(config.buckets.originals, KEY, Buffer.from('x'), {
      contentType: 'image/jpeg',
      metadata: { 'pixelpipe-filename': 'cat.jpg' },
    });
    // Two attempts already recorded: this delivery is the third of three.
    await store.inner.put(config.buckets.variants, attemptsKey(config.layout, ID, info.generation), Buffer.from('2'), { contentType: 'text/plain' });
    // Both the read and the metadata lookup of the original stall: the give-up path must still fit in the reserve.
    store.fault = (op, bucket, key) => ((op === 'get' || op === 'head') && bucket === config.buckets.originals && key === KEY ? 'hang' : undefined);

    const out = await settle(() => run(deps, info.generation));

    expect(out.error).toBeUndefined();
    expect(out.at).toBeLessThan(T0 + timeoutMs);
    const manifest = parseManifest(JSON.parse((await store.inner.get(config.buckets.variants, manifestKey(config.layout, ID))).body.toString()));
    expect(manifest).toMatchObject({ status: 'failed', attempts: 3, reason: { code: 'retries_exhausted' } });
    expect(store.running()).toEqual([]);
    expect(attemptsOverlap(store.attempts)).toBe(false);
    expect(lines.some((l) => l.message === 'image failed' && l.reason === 'retries_exhausted')).toBe(true);
  });
});

describe.each([
  {
    cloud: 'AWS',
    timeoutMs: 30_000, // serverless.yml: the notify function's timeout
    run: (deps: ReturnType<typeof setup>, publisher: FaultyPublisher): Promise<unknown> =>
      awsNotify({ ...deps, publisher })(s3Event(deps.config.buckets.variants, `manifests/${ID}.json`, 'v1'), lambdaContext(30_000)),
  },
  {
    cloud: 'GCP',
    timeoutMs: 30_000,
    run: (deps: ReturnType<typeof setup>, publisher: FaultyPublisher): Promise<unknown> =>
      gcpNotify({ ...deps, publisher })(finalized(deps.config.buckets.variants, `manifests/${ID}.json`, '1')),
  },
])('$cloud notify handler under a publish outage', ({ timeoutMs, run }) => {
  test('ends before the deadline with a retryable error and no publish left running', async () => {
    const deps = setup({ PIXELPIPE_FUNCTION_TIMEOUT_SECONDS: String(timeoutMs / 1000) });
    const { store, config } = deps;
    const manifest = {
      schemaVersion: 1,
      id: ID,
      owner: 'alice',
      status: 'processed',
      source: { bucket: config.buckets.originals, key: KEY, generation: '1', bytes: 10 },
      variants: [],
      placeholder: null,
      bucket: config.buckets.variants,
      attempts: 1,
      createdAt: new Date(T0).toISOString(),
      durationMs: 5,
    };
    await store.inner.put(config.buckets.variants, `manifests/${ID}.json`, Buffer.from(JSON.stringify(manifest)), { contentType: 'application/json' });
    // The notifier announces only images whose original still exists.
    await store.inner.put(config.buckets.originals, KEY, Buffer.from('jpeg'), { contentType: 'image/jpeg' });
    const publisher = new FaultyPublisher();
    publisher.fault = () => 'hang';

    const out = await settle(() => run(deps, publisher));

    expect(out.error).toBeInstanceOf(PixelpipeError);
    expect((out.error as PixelpipeError).retryable).toBe(true);
    expect(out.at).toBeLessThan(T0 + timeoutMs);
    expect(Math.max(...publisher.attempts.map((a) => a.endedAt!))).toBeLessThanOrEqual(T0 + timeoutMs - config.invocation.reserveMs);
    expect(publisher.attempts.length).toBeGreaterThanOrEqual(2);
    expect(publisher.running()).toEqual([]);
    expect(attemptsOverlap(publisher.attempts)).toBe(false);
    expect(publisher.messages).toEqual([]);
  });
});
