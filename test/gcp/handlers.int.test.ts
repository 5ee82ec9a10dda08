/**
 * The three GCP functions served by functions-framework on 127.0.0.1, receiving real HTTP requests and
 * real CloudEvents (structured and binary mode), backed by the fake GCS server and the Pub/Sub emulator.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { PubSub, type Message, type Subscription } from '@google-cloud/pubsub';
import { Storage } from '@google-cloud/storage';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import sharp from 'sharp';
import { parseCompletionEvent } from '../../shared/events';
import { parseManifest, type Manifest } from '../../shared/manifest';
import { startGcsFake, type GcsFake } from '../servers/gcs-fake';
import { pubsubEmulatorMissing, startPubsubEmulator, type PubsubEmulator } from '../servers/pubsub-emulator';
import {
  applyEnv,
  functionEnv,
  gcsNotificationData,
  loadFunction,
  makeServiceAccount,
  sendCloudEvent,
  serve,
  waitFor,
  type ServedFunction,
} from './gcp-test-kit';

jest.setTimeout(120_000);

const GCP = join(__dirname, '..', '..', 'functions', 'gcp');
const ORIGINALS = 'pixelpipe-originals';
const VARIANTS = 'pixelpipe-variants';
const STORAGE_SOURCE = `//storage.googleapis.com/projects/_/buckets/${ORIGINALS}`;
const sa = makeServiceAccount();
const emulatorMissing = pubsubEmulatorMissing();
const withEmulator = emulatorMissing && process.env.CI !== 'true' ? describe.skip : describe;
if (emulatorMissing && process.env.CI !== 'true') console.warn(`\n*** SKIPPING notify handler tests: ${emulatorMissing} ***\n`);

let fake: GcsFake;
let restoreEnv: () => void = () => undefined;
let storage: Storage;

beforeAll(async () => {
  fake = await startGcsFake({ buckets: [ORIGINALS, VARIANTS], signers: { [sa.email]: sa.publicKey } });
  restoreEnv = applyEnv(functionEnv({ storageUrl: fake.url, keyFile: sa.keyFile }));
  storage = new Storage({ apiEndpoint: fake.url, projectId: 'pixelpipe-test', retryOptions: { autoRetry: false } });
});
afterAll(async () => {
  await fake?.close();
  restoreEnv();
});

async function putObject(bucket: string, name: string, body: Buffer, contentType: string, metadata?: Record<string, string>) {
  await storage
    .bucket(bucket)
    .file(name)
    .save(body, { resumable: false, contentType, metadata: { contentType, ...(metadata ? { metadata } : {}) } });
  return fake.getObject(bucket, name)!.resource;
}

function readManifest(id: string): Manifest | undefined {
  const o = fake.getObject(VARIANTS, `manifests/${id}.json`);
  return o ? parseManifest(JSON.parse(o.body.toString('utf8'))) : undefined;
}

describe('upload (HTTP)', () => {
  let anon: ServedFunction;
  let jwt: ServedFunction;
  let jwks: Server;
  let signingKey: CryptoKey;
  let otherKey: CryptoKey;
  const ISSUER = 'https://issuer.pixelpipe.test';
  const AUDIENCE = 'pixelpipe-upload';

  beforeAll(async () => {
    anon = await serve(loadFunction(join(GCP, 'upload'), 'upload', true));
    const pair = await generateKeyPair('RS256');
    signingKey = pair.privateKey as CryptoKey;
    otherKey = (await generateKeyPair('RS256')).privateKey as CryptoKey;
    const jwk: JWK = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    jwks = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', () => r()));
    const jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`;
    const restore = applyEnv({ PIXELPIPE_AUTH_MODE: 'jwt', PIXELPIPE_JWKS_URL: jwksUrl, PIXELPIPE_JWT_ISSUER: ISSUER, PIXELPIPE_JWT_AUDIENCE: AUDIENCE });
    try {
      jwt = await serve(loadFunction(join(GCP, 'upload'), 'upload', true));
    } finally {
      restore();
    }
  });
  afterAll(async () => {
    await anon?.close();
    await jwt?.close();
    jwks?.closeAllConnections();
    jwks?.close();
  });

  const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });

  const token = (claims: { iss?: string; aud?: string; exp?: number; sub?: string }, key: CryptoKey = signingKey) =>
    new SignJWT({})
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setSubject(claims.sub ?? 'alice')
      .setIssuer(claims.iss ?? ISSUER)
      .setAudience(claims.aud ?? AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(claims.exp ?? Math.floor(Date.now() / 1000) + 300)
      .sign(key);

  test('anonymous config: 201 with a V4 PUT target the storage server accepts', async () => {
    const res = await post(anon.url, { contentType: 'image/jpeg', size: 1000, filename: 'My Photo.jpg' });
    expect(res.status).toBe(201);
    const body = (await res.json()) as { id: string; key: string; upload: { method: string; url: string; headers: Record<string, string> } };
    expect(body.key).toBe(`originals/anonymous/${body.id}`);
    expect(body.upload.method).toBe('PUT');
    const url = new URL(body.upload.url);
    expect(url.origin).toBe(fake.url);
    expect(url.searchParams.get('X-Goog-Algorithm')).toBe('GOOG4-RSA-SHA256');
    expect(Number(url.searchParams.get('X-Goog-Expires'))).toBeLessThanOrEqual(900);
    expect(body.upload.headers).toMatchObject({ 'content-type': 'image/jpeg', 'x-goog-content-length-range': '1,1000' });
    const put = await fetch(body.upload.url, { method: 'PUT', headers: body.upload.headers, body: Buffer.alloc(1000, 1) });
    expect(put.status).toBe(200);
    expect(fake.getObject(ORIGINALS, body.key)?.resource.metadata?.['pixelpipe-filename']).toBe(encodeURIComponent('My Photo.jpg'));
  });

  test('jwt config: a valid token gets 201 and its subject owns the key', async () => {
    const res = await post(jwt.url, { contentType: 'image/png', size: 10 }, { authorization: `Bearer ${await token({ sub: 'bob' })}` });
    expect(res.status).toBe(201);
    expect(((await res.json()) as { key: string }).key).toMatch(/^originals\/bob\//);
  });

  test('jwt config: missing, expired, wrong audience, wrong issuer, bad signature and alg=none tokens are 401', async () => {
    const unsigned = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${Buffer.from(
      JSON.stringify({ sub: 'alice', iss: ISSUER, aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 300 }),
    ).toString('base64url')}.`;
    const cases: Array<[string, string | undefined]> = [
      ['none', undefined],
      ['expired', await token({ exp: Math.floor(Date.now() / 1000) - 600 })],
      ['wrong audience', await token({ aud: 'someone-else' })],
      ['wrong issuer', await token({ iss: 'https://evil.test' })],
      ['bad signature', await token({}, otherKey)],
      ['alg none', unsigned],
      ['garbage', 'not-a-jwt'],
    ];
    for (const [name, t] of cases) {
      const res = await post(jwt.url, { contentType: 'image/jpeg', size: 10 }, t ? { authorization: `Bearer ${t}` } : {});
      expect({ name, status: res.status }).toEqual({ name, status: 401 });
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('unauthenticated');
    }
  });

  test('client mistakes get 4xx, never 500', async () => {
    const cases: Array<[string, RequestInit, number]> = [
      ['bad JSON (text/plain)', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{nope' }, 400],
      // functions-framework's own JSON parser answers this one (400) before the handler runs.
      ['bad JSON (application/json)', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{nope' }, 400],
      ['no body', { method: 'POST' }, 400],
      ['JSON array', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[]' }, 400],
      [
        'unknown field',
        { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ contentType: 'image/jpeg', size: 1, x: 1 }) },
        400,
      ],
      [
        'size not a number',
        { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ contentType: 'image/jpeg', size: '1' }) },
        400,
      ],
      [
        'type not allowed',
        { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ contentType: 'image/svg+xml', size: 1 }) },
        415,
      ],
      [
        'too large',
        { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ contentType: 'image/jpeg', size: 10 ** 12 }) },
        413,
      ],
      ['huge body', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x'.repeat(100_000) }, 413],
      ['GET', { method: 'GET' }, 405],
      ['foreign origin', { method: 'POST', headers: { origin: 'https://evil.test', 'content-type': 'application/json' }, body: '{}' }, 403],
    ];
    for (const [name, init, status] of cases) {
      const res = await fetch(anon.url, { ...init, signal: AbortSignal.timeout(30_000) });
      expect({ name, status: res.status }).toEqual({ name, status });
    }
  });
});

describe('process (storage finalized CloudEvent)', () => {
  let fn: ServedFunction;
  let jpeg: Buffer;
  beforeAll(async () => {
    fn = await serve(loadFunction(join(GCP, 'process'), 'process'));
    jpeg = await sharp(join(__dirname, '..', '..', 'samples', 'landscape.jpg')).toBuffer();
  });
  afterAll(() => fn?.close());

  test.each(['structured', 'binary'] as const)('%s mode: variants and a manifest with the right dimensions', async (mode) => {
    const id = mode === 'structured' ? 'a1b2c3d4-0000-4000-8000-000000000001' : 'a1b2c3d4-0000-4000-8000-000000000002';
    const object = await putObject(ORIGINALS, `originals/alice/${id}`, jpeg, 'image/jpeg', { 'pixelpipe-trace': '0123456789abcdef0123456789abcdef' });
    const res = await sendCloudEvent(
      fn.url,
      { type: 'google.cloud.storage.object.v1.finalized', source: STORAGE_SOURCE, subject: `objects/${object.name}`, data: object },
      mode,
    );
    expect(res.status).toBeLessThan(300);
    const m = readManifest(id)!;
    expect(m).toMatchObject({ id, owner: 'alice', status: 'processed', traceId: '0123456789abcdef0123456789abcdef' });
    expect(m.source).toMatchObject({ bucket: ORIGINALS, key: object.name, generation: object.generation, width: 1600, height: 1065 });
    const dims = (name: string, format: string) => m.variants.find((v) => v.name === name && v.format === format);
    expect(dims('thumb', 'webp')).toMatchObject({ width: 200, height: 200 });
    expect(dims('thumb', 'jpeg')).toMatchObject({ width: 200, height: 200 });
    expect(dims('small', 'webp')!.width).toBe(480);
    expect(Math.abs(dims('small', 'webp')!.height - Math.round((480 * 1065) / 1600))).toBeLessThanOrEqual(1);
    expect(dims('medium', 'jpeg')!.width).toBe(1024);
    expect(dims('large', 'jpeg')).toMatchObject({ width: 1600, height: 1065 }); // never enlarged
    // What is stored is what the manifest says.
    for (const v of m.variants) {
      const stored = fake.getObject(VARIANTS, v.key)!;
      expect(stored.resource.contentType).toBe(v.contentType);
      const meta = await sharp(stored.body).metadata();
      expect([meta.width, meta.height, meta.format]).toEqual([v.width, v.height, v.format]);
    }
  });

  test('a corrupt upload ends in a failed manifest and is acknowledged', async () => {
    const id = 'a1b2c3d4-0000-4000-8000-000000000003';
    const object = await putObject(ORIGINALS, `originals/alice/${id}`, Buffer.from('definitely not a jpeg'), 'image/jpeg');
    const res = await sendCloudEvent(fn.url, { type: 'google.cloud.storage.object.v1.finalized', source: STORAGE_SOURCE, data: object }, 'binary');
    expect(res.status).toBeLessThan(300);
    expect(readManifest(id)).toMatchObject({ status: 'failed', variants: [] });
  });

  test('malformed and foreign events are acknowledged without work', async () => {
    const before = fake.requests.length;
    for (const [type, data] of [
      ['google.cloud.storage.object.v1.finalized', { bucket: ORIGINALS }],
      ['google.cloud.storage.object.v1.finalized', { bucket: ORIGINALS, name: 'originals/a/b', generation: 'not-a-number' }],
      ['google.cloud.storage.object.v1.deleted', { bucket: ORIGINALS, name: 'originals/a/b', generation: '1' }],
    ] as const) {
      const res = await sendCloudEvent(fn.url, { type, source: STORAGE_SOURCE, data }, 'structured');
      expect(res.status).toBeLessThan(300);
    }
    expect(fake.requests.length).toBe(before);
  });

  test('outputs written by the pipeline do not trigger processing (recursion guard)', async () => {
    const object = await putObject(VARIANTS, 'manifests/whatever.json', Buffer.from('{}'), 'application/json');
    const before = fake.requests.length;
    const res = await sendCloudEvent(fn.url, { type: 'google.cloud.storage.object.v1.finalized', source: STORAGE_SOURCE, data: object }, 'structured');
    expect(res.status).toBeLessThan(300);
    expect(fake.requests.length).toBe(before);
  });

  // Last in this block: the persistent outage opens the process function's circuit breaker.
  test('a storage outage is answered with 5xx so the platform retries', async () => {
    const id = 'a1b2c3d4-0000-4000-8000-000000000004';
    const object = await putObject(ORIGINALS, `originals/alice/${id}`, jpeg, 'image/jpeg');
    fake.injectFault({ status: 503, times: 1000 });
    try {
      const res = await sendCloudEvent(fn.url, { type: 'google.cloud.storage.object.v1.finalized', source: STORAGE_SOURCE, data: object }, 'structured');
      expect(res.status).toBeGreaterThanOrEqual(500);
    } finally {
      fake.clearFaults();
    }
    expect(readManifest(id)).toBeUndefined();
  });
});

withEmulator('notify (Pub/Sub messagePublished from a GCS notification)', () => {
  let emulator: PubsubEmulator;
  let fn: ServedFunction;
  let pubsub: PubSub;
  const received: Message[] = [];
  let restore: () => void = () => undefined;
  let subscription: Subscription | undefined;

  beforeAll(async () => {
    emulator = (await startPubsubEmulator())!;
    restore = applyEnv({ PUBSUB_EMULATOR_HOST: emulator.host });
    pubsub = new PubSub({ projectId: 'pixelpipe-test' });
    const [topic] = await pubsub.createTopic('pixelpipe-events');
    const [sub] = await topic.createSubscription('events-pull');
    subscription = sub;
    sub.on('message', (m: Message) => {
      received.push(m);
      m.ack();
    });
    fn = await serve(loadFunction(join(GCP, 'notify'), 'notify'));
  }, 120_000);
  afterAll(async () => {
    await fn?.close();
    await subscription?.close();
    await pubsub?.close();
    await emulator?.stop();
    restore();
  });

  async function writeManifest(id: string, status: 'processed' | 'failed') {
    const manifest: Manifest = {
      schemaVersion: 1,
      id,
      owner: 'alice',
      status,
      ...(status === 'failed' ? { reason: { code: 'corrupt_image' as const, message: 'bad' } } : {}),
      source: { bucket: ORIGINALS, key: `originals/alice/${id}`, generation: '1700000000000001', bytes: 10 },
      variants:
        status === 'processed'
          ? [{ name: 'thumb', format: 'webp', key: `variants/${id}/thumb.webp`, contentType: 'image/webp', width: 200, height: 200, bytes: 5 }]
          : [],
      placeholder: null,
      bucket: VARIANTS,
      attempts: 1,
      createdAt: new Date().toISOString(),
      durationMs: 5,
    };
    // The notifier announces only images whose original still exists (the delete cascade reports the rest).
    await putObject(ORIGINALS, manifest.source.key, Buffer.from('jpeg'), 'image/jpeg');
    return putObject(VARIANTS, `manifests/${id}.json`, Buffer.from(JSON.stringify(manifest)), 'application/json');
  }

  const eventFor = (id: string) => waitFor(() => received.find((m) => m.attributes.imageId === id), 15_000, `event for ${id}`);

  test.each(['structured', 'binary'] as const)('%s mode: a GCS notification leads to a published completion event', async (mode) => {
    const id = mode === 'structured' ? 'b1b2c3d4-0000-4000-8000-000000000001' : 'b1b2c3d4-0000-4000-8000-000000000002';
    const object = await writeManifest(id, mode === 'structured' ? 'processed' : 'failed');
    const res = await sendCloudEvent(
      fn.url,
      {
        type: 'google.cloud.pubsub.topic.v1.messagePublished',
        source: '//pubsub.googleapis.com/projects/pixelpipe-test/topics/manifests',
        data: gcsNotificationData(object),
      },
      mode,
    );
    expect(res.status).toBeLessThan(300);
    const msg = await eventFor(id);
    const event = parseCompletionEvent(msg);
    expect(event).toMatchObject({ subject: id, type: mode === 'structured' ? 'pixelpipe.image.processed.v1' : 'pixelpipe.image.failed.v1' });
    expect(msg.attributes).toMatchObject({ imageId: id, owner: 'alice', status: mode === 'structured' ? 'processed' : 'failed' });
  });

  test('a direct storage finalized event works too', async () => {
    const id = 'b1b2c3d4-0000-4000-8000-000000000003';
    const object = await writeManifest(id, 'processed');
    const res = await sendCloudEvent(
      fn.url,
      { type: 'google.cloud.storage.object.v1.finalized', source: `//storage.googleapis.com/projects/_/buckets/${VARIANTS}`, data: object },
      'binary',
    );
    expect(res.status).toBeLessThan(300);
    expect(parseCompletionEvent(await eventFor(id)).data.id).toBe(id);
  });

  test('other notification types and non-manifest objects publish nothing', async () => {
    const id = 'b1b2c3d4-0000-4000-8000-000000000004';
    const object = await writeManifest(id, 'processed');
    const count = received.length;
    const del = await sendCloudEvent(
      fn.url,
      { type: 'google.cloud.pubsub.topic.v1.messagePublished', source: '//pubsub', data: gcsNotificationData(object, 'OBJECT_DELETE') },
      'structured',
    );
    const variant = await putObject(VARIANTS, `variants/${id}/thumb.webp`, Buffer.from('x'), 'image/webp');
    const notManifest = await sendCloudEvent(
      fn.url,
      { type: 'google.cloud.pubsub.topic.v1.messagePublished', source: '//pubsub', data: gcsNotificationData(variant) },
      'structured',
    );
    const garbage = await sendCloudEvent(
      fn.url,
      { type: 'google.cloud.pubsub.topic.v1.messagePublished', source: '//pubsub', data: { message: { attributes: { foo: 'bar' } } } },
      'structured',
    );
    expect([del.status, notManifest.status, garbage.status].every((s) => s < 300)).toBe(true);
    await new Promise((r) => setTimeout(r, 500));
    expect(received.length).toBe(count);
  });

  test('Pub/Sub unavailable: 5xx so the notification is redelivered', async () => {
    const id = 'b1b2c3d4-0000-4000-8000-000000000005';
    const object = await writeManifest(id, 'processed');
    await emulator.stop();
    try {
      const res = await sendCloudEvent(
        fn.url,
        { type: 'google.cloud.pubsub.topic.v1.messagePublished', source: '//pubsub', data: gcsNotificationData(object) },
        'structured',
      );
      expect(res.status).toBeGreaterThanOrEqual(500);
    } finally {
      await emulator.restart();
    }
  });
});
