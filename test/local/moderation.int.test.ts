/**
 * Moderation end to end on the local stack (in process: page server, s3rver, the AWS handlers, the
 * embedded event channel), with a fake cloud analyzer standing in for Vision/Rekognition, which need
 * accounts. `block`: a flagged upload gets a failed `content_blocked` event, no variant in storage, and its
 * original stays; with `PIXELPIPE_BLOCKED_PLACEHOLDER=neutral` every variant is a flat grey stand-in of the
 * real one's size and format. `flag`: it is processed, with the verdict in the event's manifest.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import sharp from 'sharp';
import { loadDevOptions } from '../../functions/local/dev-options';
import { startDevStack, type DevStack } from '../../functions/local/dev-stack';
import { quietAwsSdkNodeVersionNotice } from '../../functions/local/sdk-notices';
import { loadConfig } from '../../shared/config';
import { SharpImageProcessor } from '../../shared/image/sharp-image-processor';
import { FakeImageAnalyzer } from '../../shared/testing/fake-image-analyzer';
import { freePort, openEvents, ROOT } from './dev-process';

jest.setTimeout(60_000);
quietAwsSdkNodeVersionNotice();

const photo = readFileSync(join(ROOT, 'samples', 'landscape.jpg'));

async function start(
  moderation: 'flag' | 'block',
  analyzer: FakeImageAnalyzer,
  env: Record<string, string> = {},
): Promise<{ stack: DevStack; dataDir: string }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'pixelpipe-moderation-'));
  const options = loadDevOptions(
    {
      PIXELPIPE_DEV_EVENTS: 'embedded',
      PIXELPIPE_DEV_PORT: String(await freePort()),
      PIXELPIPE_DEV_S3_PORT: String(await freePort()),
      PIXELPIPE_DEV_DATA: dataDir,
      PIXELPIPE_ANALYZER: 'vision',
      PIXELPIPE_MODERATION: moderation,
      ...env,
    },
    { root: ROOT, webDir: join(ROOT, 'web') },
  );
  const stack = await startDevStack(options, { sink: () => {}, childEnv: process.env, analyzer });
  return { stack, dataDir };
}

/** Uploads the photo as the browser does (upload API, then the presigned POST) and returns its id. */
async function upload(stack: DevStack): Promise<string> {
  const res = await fetch(stack.urls.uploads, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ contentType: 'image/jpeg', size: photo.length, filename: 'landscape.jpg' }),
  });
  expect(res.status).toBe(201);
  const ticket = (await res.json()) as { id: string; upload: { url: string; fields: Record<string, string> } };
  const form = new FormData();
  for (const [k, v] of Object.entries(ticket.upload.fields)) form.append(k, v);
  form.append('file', new Blob([new Uint8Array(photo)], { type: 'image/jpeg' }), 'landscape.jpg');
  expect((await fetch(ticket.upload.url, { method: 'POST', body: form })).status).toBe(204);
  return ticket.id;
}

function s3(stack: DevStack): S3Client {
  return new S3Client({
    endpoint: stack.urls.storage,
    forcePathStyle: true,
    region: 'us-east-1',
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  });
}

async function keys(stack: DevStack, bucket: string, prefix: string): Promise<string[]> {
  const out = await s3(stack).send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (out.Contents ?? []).map((o) => o.Key!);
}

let running: { stack: DevStack; dataDir: string } | undefined;
afterEach(async () => {
  await running?.stack.close();
  if (running) rmSync(running.dataDir, { recursive: true, force: true });
  running = undefined;
});

const flagged = () => new FakeImageAnalyzer({ name: 'fake-vision', moderation: { verdict: 'flagged', categories: [{ name: 'violence', score: 0.92 }] } });

test('block: a flagged upload ends failed with content_blocked, no variant is written, the original stays', async () => {
  const analyzer = flagged();
  running = await start('block', analyzer);
  const { stack } = running;
  const sse = await openEvents(stack.urls.events);
  try {
    const id = await upload(stack);
    const event = await sse.waitFor((e) => e.subject === id, 30_000);
    expect(event).toMatchObject({
      type: 'pixelpipe.image.failed.v1',
      data: { status: 'failed', reason: { code: 'content_blocked' }, variants: [], analysis: { analyzer: 'fake-vision', moderation: { verdict: 'blocked' } } },
    });
    expect(analyzer.calls).toHaveLength(1);
    expect(analyzer.calls[0].analyses).toEqual(['faces', 'moderation']);
    expect(await keys(stack, stack.buckets.variants, `variants/${id}/`)).toEqual([]);
    expect(await keys(stack, stack.buckets.originals, 'originals/')).toEqual([expect.stringMatching(new RegExp(`/${id}$`))]);
  } finally {
    sse.close();
  }
});

test('flag: a flagged upload is processed, with the verdict and categories in the event', async () => {
  running = await start('flag', flagged());
  const { stack } = running;
  const sse = await openEvents(stack.urls.events);
  try {
    const id = await upload(stack);
    const event = await sse.waitFor((e) => e.subject === id, 30_000);
    expect(event).toMatchObject({
      type: 'pixelpipe.image.processed.v1',
      data: { status: 'processed', analysis: { moderation: { verdict: 'flagged', categories: [{ name: 'violence', score: 0.92 }] } } },
    });
    expect((event.data.variants as unknown[]).length).toBe(9);
    expect((await keys(stack, stack.buckets.variants, `variants/${id}/`)).length).toBe(9);
  } finally {
    sse.close();
  }
});

test('block with PIXELPIPE_BLOCKED_PLACEHOLDER=neutral: every variant is a flat grey stand-in at its size and format, the event says so', async () => {
  running = await start('block', flagged(), { PIXELPIPE_BLOCKED_PLACEHOLDER: 'neutral' });
  const { stack } = running;
  const sse = await openEvents(stack.urls.events);
  try {
    const id = await upload(stack);
    const event = await sse.waitFor((e) => e.subject === id, 30_000);
    expect(event).toMatchObject({ type: 'pixelpipe.image.failed.v1', data: { status: 'failed', reason: { code: 'content_blocked' }, placeholder: null } });
    const variants = event.data.variants as Array<{ key: string; format: string; width: number; height: number; placeholder?: boolean }>;
    // The default variants, as the flag test above gets them.
    expect(variants).toHaveLength(9);
    // The sizes and formats the default config gives the real photo.
    const config = loadConfig({ PIXELPIPE_AUTH_MODE: 'anonymous' });
    const real = await new SharpImageProcessor().render(photo, config.variants, config.limits, { webpEffort: 4, avifEffort: 4, placeholder: false });
    const shape = (o: { format: string; width: number; height: number }) => `${o.format} ${o.width}x${o.height}`;
    expect(variants.map(shape).sort()).toEqual(real.outputs.map(shape).sort());
    const stored = await keys(stack, stack.buckets.variants, `variants/${id}/`);
    expect(stored.sort()).toEqual(variants.map((v) => v.key).sort());
    const original = await sharp(photo).stats();
    expect(Math.max(...original.channels.slice(0, 3).map((c) => c.stdev))).toBeGreaterThan(20);
    for (const v of variants) {
      expect(v.placeholder).toBe(true);
      const obj = await s3(stack).send(new GetObjectCommand({ Bucket: stack.buckets.variants, Key: v.key }));
      expect(obj.CacheControl).toBe('no-cache');
      const body = Buffer.from(await obj.Body!.transformToByteArray());
      const meta = await sharp(body).metadata();
      expect([meta.format === 'heif' ? 'avif' : meta.format, meta.width, meta.height]).toEqual([v.format, v.width, v.height]);
      // Flat #9e9e9e: not the photo's pixels.
      for (const c of (await sharp(body).stats()).channels.slice(0, 3)) {
        expect(Math.abs(c.mean - 0x9e)).toBeLessThan(3);
        expect(c.stdev).toBeLessThan(2);
      }
    }
    expect(await keys(stack, stack.buckets.originals, 'originals/')).toEqual([expect.stringMatching(new RegExp(`/${id}$`))]);
  } finally {
    sse.close();
  }
});
