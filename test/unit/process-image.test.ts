import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { loadConfig, type PixelpipeConfig } from '../../shared/config';
import { TransientError } from '../../shared/errors';
import { SharpImageProcessor } from '../../shared/image/sharp-image-processor';
import { createLogger } from '../../shared/logger';
import { FixedClock } from '../../shared/testing/fakes';
import { MemoryObjectStore } from '../../shared/testing/memory-object-store';
import { processImage, type ProcessDeps } from '../../shared/usecases/process-image';
import { testInvocation } from '../../shared/testing/invocation';

const photo = readFileSync(join(__dirname, '..', '..', 'samples', 'landscape.jpg'));
const ID = '00000000-0000-4000-8000-00000000abcd';
const KEY = `originals/alice/${ID}`;
const processor = new SharpImageProcessor();

function setup(env: Record<string, string> = {}) {
  const config: PixelpipeConfig = loadConfig({ PIXELPIPE_AUTH_MODE: 'anonymous', PIXELPIPE_WEBP_EFFORT: '2', ...env });
  const store = new MemoryObjectStore();
  const lines: Array<Record<string, unknown>> = [];
  const clock = new FixedClock();
  const deps: ProcessDeps = { store, processor, clock, config };
  const logger = createLogger({ sink: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) });
  // A fresh context per delivery, as the handler edge builds one per invocation.
  const inv = () => testInvocation({ logger });
  const upload = (body: Buffer = photo, key = KEY) =>
    store.put(config.buckets.originals, key, body, {
      contentType: 'image/jpeg',
      metadata: { 'pixelpipe-trace': '4bf92f3577b34da6a3ce929d0e0e4736', 'pixelpipe-filename': encodeURIComponent('Été 2026.jpg') },
    });
  return { config, store, deps, lines, clock, upload, inv };
}

describe('processImage', () => {
  test('writes every variant with type and caching, then a complete manifest', async () => {
    const { config, store, deps, upload, inv } = setup();
    const info = await upload();
    const out = await processImage(deps, inv(), { bucket: info.bucket, key: KEY, generation: info.generation });
    expect(out.status).toBe('processed');
    if (out.status !== 'processed') return;
    const m = out.manifest;
    expect(m).toMatchObject({
      schemaVersion: 1,
      id: ID,
      owner: 'alice',
      status: 'processed',
      bucket: config.buckets.variants,
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      attempts: 1,
      source: {
        bucket: config.buckets.originals,
        key: KEY,
        generation: info.generation,
        contentType: 'image/jpeg',
        bytes: photo.length,
        width: 1600,
        height: 1065,
        format: 'jpeg',
        filename: 'Été 2026.jpg',
      },
    });
    expect(m.reason).toBeUndefined();
    expect(m.variants.map((v) => `${v.name}.${v.format}`)).toEqual([
      'thumb.jpeg',
      'thumb.webp',
      'small.jpeg',
      'small.webp',
      'medium.jpeg',
      'medium.webp',
      'large.jpeg',
      'large.webp',
      'medium-gray.jpeg',
    ]);
    for (const v of m.variants) {
      const obj = await store.get(config.buckets.variants, v.key);
      expect(v.key).toMatch(new RegExp(`^variants/${ID}/${v.name}\\.(jpg|webp)$`));
      expect(obj.contentType).toBe(v.contentType);
      expect(obj.cacheControl).toBe('public, max-age=31536000, immutable');
      expect(obj.size).toBe(v.bytes);
      const meta = await sharp(obj.body).metadata();
      expect([meta.width, meta.height]).toEqual([v.width, v.height]);
    }
    const large = m.variants.find((v) => v.name === 'large')!;
    expect([large.width, large.height]).toEqual([1600, 1065]); // never enlarged
    expect(m.variants.find((v) => v.name === 'thumb')).toMatchObject({ width: 200, height: 200 });
    expect(m.variants.find((v) => v.name === 'small')).toMatchObject({ width: 480, height: 320 });
    expect(m.placeholder?.type).toBe('thumbhash');
    expect(m.metrics!.bytesIn).toBe(photo.length);
    expect(m.metrics!.bytesOut).toBe(m.variants.reduce((n, v) => n + v.bytes, 0));
    expect(Object.keys(m.metrics!.encodeMs)).toHaveLength(9);
    const stored = await store.get(config.buckets.variants, `manifests/${ID}.json`);
    expect(JSON.parse(stored.body.toString())).toEqual(m);
    expect(stored.cacheControl).toBe('no-cache');
  });

  test('reads the original exactly once, writes the manifest last and then releases its lease', async () => {
    const { config, store, deps, upload, inv } = setup();
    const info = await upload();
    store.calls.length = 0;
    await processImage(deps, inv(), { bucket: info.bucket, key: KEY, generation: info.generation });
    expect(store.calls.filter((c) => c.bucket === config.buckets.originals && c.op === 'get')).toHaveLength(1);
    const puts = store.calls.filter((c) => c.op === 'put');
    // Lease taken before anything is read, released after the last output.
    const lease = `state/${ID}/${info.generation}.lease`;
    expect(puts.map((p) => p.key)).toEqual([lease, ...puts.slice(1, 10).map((p) => p.key), `manifests/${ID}.json`, lease]);
    expect(puts.slice(1, 10).every((p) => p.key.startsWith(`variants/${ID}/`))).toBe(true);
    expect(JSON.parse((await store.get(config.buckets.variants, lease)).body.toString())).toEqual({ until: 0 });
    expect(store.calls.filter((c) => c.op === 'delete')).toEqual([]);
  });

  test.each([
    ['a variant', 'pixelpipe-variants', `variants/${ID}/thumb.jpg`],
    ['a manifest', 'pixelpipe-variants', `manifests/${ID}.json`],
    ['another prefix', 'pixelpipe-originals', 'uploads/x.jpg'],
    ['another bucket', 'someone-else', KEY],
  ])('ignores %s', async (_what, bucket, key) => {
    const { deps, store, inv } = setup();
    await expect(processImage(deps, inv(), { bucket, key, generation: '1' })).resolves.toEqual({ status: 'ignored', reason: 'outside_originals' });
    expect(store.calls).toEqual([]);
  });

  test('single-bucket mode: outputs never re-trigger processing', async () => {
    const { deps, store, upload, inv } = setup({ PIXELPIPE_ORIGINALS_BUCKET: 'one-bucket', PIXELPIPE_VARIANTS_BUCKET: 'one-bucket' });
    const outcomes: string[] = [];
    const pending: Array<Promise<unknown>> = [];
    store.onPut = (o) =>
      pending.push(processImage(deps, inv(), { bucket: o.bucket, key: o.key, generation: o.generation }).then((r) => outcomes.push(r.status)));
    await upload(photo, KEY);
    while (pending.length) await pending.shift();
    expect(outcomes.filter((s) => s === 'processed')).toHaveLength(1);
    // Nine variants, the manifest and the lease written twice.
    expect(outcomes.filter((s) => s === 'ignored')).toHaveLength(12);
  });

  test('a duplicate delivery of the same generation does no work', async () => {
    const { deps, store, upload, inv } = setup();
    const info = await upload();
    const first = await processImage(deps, inv(), { bucket: info.bucket, key: KEY, generation: info.generation });
    store.calls.length = 0;
    const second = await processImage(deps, inv(), { bucket: info.bucket, key: KEY, generation: info.generation });
    expect(second.status).toBe('duplicate');
    expect(second.status === 'duplicate' && second.manifest).toEqual(first.status === 'processed' && first.manifest);
    expect(store.calls.filter((c) => c.op === 'put')).toEqual([]);
  });

  test('a new generation of the same key is processed again; a stale event is ignored', async () => {
    const { deps, upload, inv } = setup();
    const g1 = await upload();
    await processImage(deps, inv(), { bucket: g1.bucket, key: KEY, generation: g1.generation });
    const g2 = await upload(await sharp(photo).resize(800).jpeg().toBuffer());
    await expect(processImage(deps, inv(), { bucket: g1.bucket, key: KEY, generation: g1.generation, force: true })).resolves.toEqual({
      status: 'ignored',
      reason: 'superseded',
    });
    const again = await processImage(deps, inv(), { bucket: g2.bucket, key: KEY, generation: g2.generation });
    expect(again.status).toBe('processed');
    expect(again.status === 'processed' && again.manifest.source).toMatchObject({ generation: g2.generation, width: 800 });
  });

  test('a deleted original is ignored, not retried', async () => {
    const { deps, inv } = setup();
    await expect(processImage(deps, inv(), { bucket: 'pixelpipe-originals', key: KEY, generation: '5' })).resolves.toEqual({
      status: 'ignored',
      reason: 'object_gone',
    });
  });

  test('a bad image ends in a failed manifest and returns normally, with one log line', async () => {
    const { deps, upload, store, config, lines, inv } = setup();
    const info = await upload(Buffer.from('<html><script>alert(1)</script></html>'));
    const out = await processImage(deps, inv(), { bucket: info.bucket, key: KEY, generation: info.generation });
    expect(out.status).toBe('failed');
    if (out.status !== 'failed') return;
    expect(out.manifest.reason?.code).toBe('unsupported_type');
    expect(out.manifest.variants).toEqual([]);
    expect(store.keys(config.buckets.variants)).toEqual([`manifests/${ID}.json`, `state/${ID}/${info.generation}.lease`]);
    const failures = lines.filter((l) => l.severity === 'WARNING');
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({ imageId: ID, reason: 'unsupported_type', message: 'image failed' });
  });

  test('an object over the byte limit fails with its read capped at the limit, and no byte reaches the decoder', async () => {
    const { deps, upload, inv, store, config } = setup({ PIXELPIPE_MAX_INPUT_BYTES: '1000' });
    const info = await upload();
    const reads: Array<{ key: string; maxBytes?: number }> = [];
    const realGet = store.get.bind(store);
    store.get = (bucket, key, o) => {
      reads.push({ key, maxBytes: o?.maxBytes });
      return realGet(bucket, key, o);
    };
    const render = jest.fn(processor.render.bind(processor));
    const out = await processImage({ ...deps, processor: { render } }, inv(), { bucket: info.bucket, key: KEY, generation: info.generation });
    expect(out.status === 'failed' && out.manifest.reason?.code).toBe('too_many_bytes');
    // The store was told to stop after 1000 bytes (the adapters abort the download there), not asked for the whole object.
    expect(reads.filter((r) => r.key === KEY)).toEqual([{ key: KEY, maxBytes: config.limits.maxInputBytes }]);
    expect(config.limits.maxInputBytes).toBe(1000);
    expect(render).not.toHaveBeenCalled();
    expect(out.status === 'failed' && out.manifest.source.bytes).toBe(photo.length);
  });

  test('transient storage faults are rethrown (retryable), counted, and end failed after the attempt budget', async () => {
    const { deps, upload, store, lines, inv } = setup({ PIXELPIPE_MAX_ATTEMPTS: '3' });
    const info = await upload();
    const realPut = store.put.bind(store);
    // Variant writes fail; attempt counters and manifests still go through.
    store.put = async (bucket, key, body, o) => {
      if (key.startsWith('variants/')) throw new TransientError('storage_unavailable', 'HTTP 503');
      return realPut(bucket, key, body, o);
    };
    const ev = { bucket: info.bucket, key: KEY, generation: info.generation };
    for (let attempt = 1; attempt <= 2; attempt++) {
      const err = await processImage(deps, inv(), ev).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TransientError);
      expect((err as TransientError).retryable).toBe(true);
    }
    // The third (last allowed) attempt ends the image instead of leaving it to a retry that never comes.
    const last = await processImage(deps, inv(), ev);
    expect(last.status).toBe('failed');
    expect(last.status === 'failed' && last.manifest.reason?.code).toBe('retries_exhausted');
    expect(last.status === 'failed' && last.manifest.attempts).toBe(3);
    expect(lines.filter((l) => l.severity === 'ERROR' && l.reason === 'storage_unavailable')).toHaveLength(2);
    expect(lines.filter((l) => l.severity === 'WARNING' && l.reason === 'retries_exhausted')).toHaveLength(1);
  });

  test('an event older than the retry window ends failed instead of retrying forever', async () => {
    const { deps, upload, clock, inv } = setup({ PIXELPIPE_MAX_EVENT_AGE_SECONDS: '3600' });
    const info = await upload();
    const eventTime = clock.now();
    clock.advance(3601 * 1000);
    const out = await processImage(deps, inv(), { bucket: info.bucket, key: KEY, generation: info.generation, eventTime });
    expect(out.status === 'failed' && out.manifest.reason?.code).toBe('retries_exhausted');
  });
});

describe('observability', () => {
  test('one structured line per processed image with the trace id and per-image metrics', async () => {
    const { deps, upload, lines, inv } = setup();
    const info = await upload();
    await processImage(deps, inv(), { bucket: info.bucket, key: KEY, generation: info.generation });
    const done = lines.filter((l) => l.message === 'image processed');
    expect(done).toHaveLength(1);
    expect(done[0]).toMatchObject({
      severity: 'INFO',
      level: 'info',
      imageId: ID,
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      status: 'processed',
      variants: 9,
      bytesIn: photo.length,
      decodeMs: expect.any(Number) as number,
      bytesOut: expect.any(Number) as number,
      peakRssBytes: expect.any(Number) as number,
      durationMs: expect.any(Number) as number,
    });
    expect(Object.keys(done[0].encodeMs as object)).toHaveLength(9);
    expect(typeof done[0].time).toBe('string');
  });

  test('Cloud Logging trace correlation when the project is known', () => {
    const out: string[] = [];
    createLogger({ sink: (l) => out.push(l), fields: { gcpProject: 'my-proj' } }).info('x', { traceId: 'abc' });
    expect((JSON.parse(out[0]) as Record<string, unknown>)['logging.googleapis.com/trace']).toBe('projects/my-proj/traces/abc');
  });

  test('levels below the threshold are dropped; errors are flattened', () => {
    const out: string[] = [];
    const log = createLogger({ level: 'warn', sink: (l) => out.push(l) });
    log.info('hidden');
    log.error('boom', { err: new TransientError('storage_unavailable', '503') });
    expect(out).toHaveLength(1);
    expect(JSON.parse(out[0])).toMatchObject({ severity: 'ERROR', err: { name: 'TransientError', code: 'storage_unavailable', retryable: true } });
  });
});
