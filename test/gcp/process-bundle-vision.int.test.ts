/**
 * Cloud Vision end to end inside the GCP process function as deployed: the esbuild bundle
 * `dist/gcp/process` (build it with `npm run build`) loaded by the real functions-framework CLI in a
 * child process (`--target=process --signature-type=cloudevent`, as the Dockerfile and Cloud Functions
 * start it; `test/support/loopback-listen.cjs` only keeps it on 127.0.0.1). `PIXELPIPE_ANALYZER=vision`
 * is pointed at the Vision fake through `PIXELPIPE_VISION_ENDPOINT`; storage is the GCS fake; the
 * events are real storage-finalized CloudEvents. Credentials come from Application Default Credentials:
 * the metadata server (a local Google fake: what the function's service account uses on Cloud
 * Functions), and in the last block a service-account key file whose token grant goes to the same fake.
 *
 * It checks the manifest's analysis, the crops placed on the faces, the attributes of the completion
 * event that the notify bundle (`dist/gcp/notify`, same CLI) publishes for that manifest to the Pub/Sub
 * emulator (skipped loudly where the emulator cannot run, required under CI), `block`, throttling
 * retried within the invocation, an outage with analysis optional, and what Vision was sent.
 */
import { createVerify } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PubSub, type Message, type Subscription } from '@google-cloud/pubsub';
import { Storage } from '@google-cloud/storage';
import sharp from 'sharp';
import { parseManifest, type Manifest } from '../../shared/manifest';
import { startGcsFake, type GcsFake } from '../servers/gcs-fake';
import { startPubsubEmulator, type PubsubEmulator } from '../servers/pubsub-emulator';
import { QUOTA_EXCEEDED, UNAVAILABLE, VisionFake } from '../servers/vision-fake';
import {
  expectCentreSquare,
  expectFaceCrops,
  expectProcessedWithoutAnalysis,
  expectSceneFaces,
  expectUprightRung,
  rotatedUpload,
  RUNG,
  SCENE_FACES,
  VARIANTS,
} from '../support/analysis-e2e';
import { assertBuilt, startBundleChild, type BundleChild } from '../support/bundle-child';
import { startGoogleFake, type GoogleFake } from '../support/google-fake';
import { applyEnv, gcsNotificationData, makeServiceAccount, sendCloudEvent, waitFor } from './gcp-test-kit';

jest.setTimeout(120_000);

const ROOT = join(__dirname, '..', '..');
const BUNDLE = join(ROOT, 'dist', 'gcp', 'process');
const NOTIFY_BUNDLE = join(ROOT, 'dist', 'gcp', 'notify');
const FRAMEWORK = join(ROOT, 'node_modules', '@google-cloud', 'functions-framework', 'build', 'src', 'main.js');
const ORIGINALS = 'pixelpipe-originals';
const VARIANTS_BUCKET = 'pixelpipe-variants';
const SOURCE = `//storage.googleapis.com/projects/_/buckets/${ORIGINALS}`;
const TOKEN = 'ya29.process-sa';
const METADATA_TOKEN = 'GET /computeMetadata/v1/instance/service-accounts/default/token';

let gcs: GcsFake;
let vision: VisionFake;
let visionUrl: string;
let google: GoogleFake;
let storage: Storage;
let upload: Buffer;
let home: string;
let emulator: PubsubEmulator | null = null;
let pubsub: PubSub | undefined;
let subscription: Subscription | undefined;
let notifyFn: { url: string; child: BundleChild } | undefined;
let restoreEnv: () => void = () => undefined;
const published: Message[] = [];

beforeAll(async () => {
  assertBuilt(join(BUNDLE, 'index.js'), join(NOTIFY_BUNDLE, 'index.js'));
  gcs = await startGcsFake({ buckets: [ORIGINALS, VARIANTS_BUCKET] });
  vision = new VisionFake();
  visionUrl = await vision.start();
  google = await startGoogleFake({ [METADATA_TOKEN]: () => ({ json: { access_token: TOKEN, expires_in: 3599, token_type: 'Bearer' } }) });
  storage = new Storage({ apiEndpoint: gcs.url, projectId: 'pixelpipe-test', retryOptions: { autoRetry: false } });
  upload = await rotatedUpload();
  // No gcloud ADC file may be found on this machine: the metadata server is the only credential source.
  home = mkdtempSync(join(tmpdir(), 'pixelpipe-adc-'));
  // The notify bundle publishes the completion event with its attributes; null (warned) without the emulator, off CI.
  emulator = await startPubsubEmulator();
  if (emulator) {
    restoreEnv = applyEnv({ PUBSUB_EMULATOR_HOST: emulator.host, METADATA_SERVER_DETECTION: 'none', GCE_METADATA_HOST: '127.0.0.1:9' });
    pubsub = new PubSub({ projectId: 'pixelpipe-test' });
    const [topic] = await pubsub.createTopic('pixelpipe-events');
    [subscription] = await topic.createSubscription('vision-e2e');
    subscription.on('message', (msg: Message) => {
      published.push(msg);
      msg.ack();
    });
    notifyFn = await startFunction(NOTIFY_BUNDLE, 'notify', { PUBSUB_EMULATOR_HOST: emulator.host });
  }
});
afterAll(async () => {
  await notifyFn?.child.stop();
  await subscription?.close();
  await pubsub?.close();
  await emulator?.stop();
  restoreEnv();
  await vision?.stop();
  await google?.close();
  await gcs?.close();
  if (home) rmSync(home, { recursive: true, force: true });
});
beforeEach(() => vision.reset());

/** The process bundle served by the functions-framework CLI, with this analysis configuration. */
function startProcess(analysis: Record<string, string>, preload: string[] = []): Promise<{ url: string; child: BundleChild }> {
  return startFunction(
    BUNDLE,
    'process',
    {
      PIXELPIPE_VARIANTS: VARIANTS,
      PIXELPIPE_ANALYZER: 'vision',
      PIXELPIPE_VISION_ENDPOINT: visionUrl,
      ...analysis,
    },
    preload,
  );
}

/** `--source=<bundle> --target=<target>` under the functions-framework CLI, on loopback. */
async function startFunction(
  bundle: string,
  target: string,
  extra: Record<string, string>,
  preload: string[] = [],
): Promise<{ url: string; child: BundleChild }> {
  const env: Record<string, string> = {
    HOME: home,
    CLOUDSDK_CONFIG: home,
    PORT: '0',
    // Application Default Credentials as on Cloud Functions: no key file, the metadata server answers.
    GCE_METADATA_HOST: google.host,
    METADATA_SERVER_DETECTION: 'assume-present',
    STORAGE_EMULATOR_HOST: gcs.url,
    GOOGLE_CLOUD_PROJECT: 'pixelpipe-test',
    PIXELPIPE_ORIGINALS_BUCKET: ORIGINALS,
    PIXELPIPE_VARIANTS_BUCKET: VARIANTS_BUCKET,
    PIXELPIPE_TOPIC: 'pixelpipe-events',
    PIXELPIPE_AUTH_MODE: 'anonymous',
    PIXELPIPE_LOG_LEVEL: 'error',
    PIXELPIPE_WEBP_EFFORT: '0',
    ...extra,
  };
  const args = [
    '-r',
    join(ROOT, 'test', 'support', 'loopback-listen.cjs'),
    ...preload.flatMap((p) => ['-r', p]),
    FRAMEWORK,
    `--source=${bundle}`,
    `--target=${target}`,
    '--signature-type=cloudevent',
  ];
  const { child, match } = await startBundleChild(args, env, /LISTENING (\d+)/, { cwd: bundle });
  return { url: `http://127.0.0.1:${match[1]}`, child };
}

/** Uploads the rotated photo as `originals/alice/<id>` and delivers its finalized event; returns the HTTP status. */
async function deliver(url: string, id: string): Promise<number> {
  const name = `originals/alice/${id}`;
  await storage
    .bucket(ORIGINALS)
    .file(name)
    .save(upload, { resumable: false, contentType: 'image/jpeg', metadata: { contentType: 'image/jpeg' } });
  const object = gcs.getObject(ORIGINALS, name)!.resource;
  const res = await sendCloudEvent(
    url,
    { type: 'google.cloud.storage.object.v1.finalized', source: SOURCE, subject: `objects/${name}`, data: object },
    'structured',
  );
  return res.status;
}

function manifest(id: string): Manifest {
  const o = gcs.getObject(VARIANTS_BUCKET, `manifests/${id}.json`);
  if (!o) throw new Error(`no manifest for ${id}`);
  return parseManifest(JSON.parse(o.body.toString('utf8')));
}

/**
 * Delivers the manifest's GCS notification to the notify bundle and returns the attributes of the
 * completion event it published; undefined (the check skipped, warned at start) without the emulator.
 */
async function notified(id: string): Promise<Record<string, string> | undefined> {
  if (!notifyFn) return undefined;
  const object = gcs.getObject(VARIANTS_BUCKET, `manifests/${id}.json`)!.resource;
  const res = await sendCloudEvent(
    notifyFn.url,
    {
      type: 'google.cloud.pubsub.topic.v1.messagePublished',
      source: '//pubsub.googleapis.com/projects/pixelpipe-test/topics/manifests',
      data: gcsNotificationData(object),
    },
    'structured',
  );
  expect(res.status).toBeLessThan(300);
  const msg = await waitFor(() => published.find((m) => m.attributes.imageId === id), 15_000, `the completion event of ${id}`);
  return msg.attributes;
}

const variantKeys = (id: string) =>
  gcs
    .listObjects(VARIANTS_BUCKET)
    .map((o) => o.name)
    .filter((k) => k.startsWith(`variants/${id}/`));

const FLAGGED_SCENE = {
  faces: SCENE_FACES.map((box, i) => ({ box, confidence: 0.97 - i * 0.05 })),
  labels: [
    { description: 'Person', score: 0.93 },
    { description: 'Smile', score: 0.81 },
  ],
  safeSearch: { adult: 'UNLIKELY', violence: 'VERY_UNLIKELY', racy: 'LIKELY' },
};

describe('PIXELPIPE_MODERATION=flag, all three analyses', () => {
  let fn: { url: string; child: BundleChild };
  beforeAll(async () => {
    fn = await startProcess({ PIXELPIPE_ANALYSES: 'faces,labels,moderation', PIXELPIPE_MODERATION: 'flag' });
  });
  afterAll(() => fn?.child.stop());

  test('the manifest holds what Vision saw (boxes on the oriented original), faces crops hold the faces, attributes filter on it', async () => {
    vision.scene = FLAGGED_SCENE;
    const id = 'b1a2c3d4-0000-4000-8000-000000000001';
    expect(await deliver(fn.url, id)).toBeLessThan(300);
    const m = manifest(id);
    expect(m.status).toBe('processed');
    expect(m.source).toMatchObject({ width: 600, height: 800 });
    expect(m.analysis).toMatchObject({
      analyzer: 'google-vision',
      labels: [
        { name: 'Person', score: 0.93 },
        { name: 'Smile', score: 0.81 },
      ],
      moderation: {
        verdict: 'flagged',
        categories: [
          { name: 'adult', score: 0.25 },
          { name: 'spoof', score: 0 },
          { name: 'medical', score: 0 },
          { name: 'violence', score: 0 },
          { name: 'racy', score: 0.75 },
        ],
      },
    });
    expect(m.analysis!.error).toBeUndefined();
    expectSceneFaces(m, expect);
    expect(m.analysis!.faces!.map((f) => f.score)).toEqual([0.97, 0.92]);
    expectFaceCrops(m, expect);
    expectCentreSquare(m, 'centre', expect);
    // What is stored is what the manifest says.
    for (const v of m.variants) {
      const meta = await sharp(gcs.getObject(VARIANTS_BUCKET, v.key)!.body).metadata();
      expect([meta.width, meta.height, meta.format]).toEqual([v.width, v.height, v.format]);
    }
    // The notify function publishes the manifest with the attributes subscribers filter on.
    const attributes = await notified(id);
    if (attributes) expect(attributes).toMatchObject({ status: 'processed', moderation: 'flagged', faces: '2' });

    // What Vision was sent: one request, the three features, the rung inline as an upright JPEG, the metadata server's token.
    expect(vision.requests).toHaveLength(1);
    const [req] = vision.requests;
    expect(req.features.map((f) => f.type)).toEqual(['FACE_DETECTION', 'LABEL_DETECTION', 'SAFE_SEARCH_DETECTION']);
    expect(req.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(req.image).toMatchObject({ format: 'jpeg', ...RUNG });
    await expectUprightRung(req.image!.data, expect);
    expect(google.requests.filter((q) => q.path.endsWith('/token')).length).toBeGreaterThanOrEqual(1);
  });

  test('RESOURCE_EXHAUSTED (429) then OK: retried within the invocation, processed with the analysis', async () => {
    vision.scene = FLAGGED_SCENE;
    vision.failNext(QUOTA_EXCEEDED);
    const id = 'b1a2c3d4-0000-4000-8000-000000000002';
    expect(await deliver(fn.url, id)).toBeLessThan(300);
    expect(vision.requests).toHaveLength(2);
    const m = manifest(id);
    expect([m.status, m.attempts, m.analysis!.moderation!.verdict, m.analysis!.error]).toEqual(['processed', 1, 'flagged', undefined]);
    expectSceneFaces(m, expect);
    expectFaceCrops(m, expect);
  });

  // Last in this block: the outage counts towards the breaker of this cold start.
  test('an outage with PIXELPIPE_ANALYSIS_REQUIRED=false (default): processed with analysis.error, moderation unavailable, fallback crops', async () => {
    vision.scene = FLAGGED_SCENE;
    vision.failNext(UNAVAILABLE, 50);
    const id = 'b1a2c3d4-0000-4000-8000-000000000003';
    expect(await deliver(fn.url, id)).toBeLessThan(300);
    // The analysis stage's 3 attempts, none more.
    expect(vision.requests).toHaveLength(3);
    const m = manifest(id);
    expectProcessedWithoutAnalysis(m, 'google-vision', expect);
    const attributes = await notified(id);
    if (attributes) {
      expect(attributes).toMatchObject({ status: 'processed', moderation: 'unavailable' });
      expect(attributes).not.toHaveProperty('faces');
    }
  });
});

describe('PIXELPIPE_MODERATION=block, moderation only', () => {
  let fn: { url: string; child: BundleChild };
  beforeAll(async () => {
    // No variant crops on faces here, so only SafeSearch is asked for.
    fn = await startProcess({
      PIXELPIPE_ANALYSES: 'moderation',
      PIXELPIPE_MODERATION: 'block',
      PIXELPIPE_VARIANTS: JSON.stringify([{ name: 'thumb', width: 200, height: 200, fit: 'cover', formats: ['webp'] }]),
    });
  });
  afterAll(() => fn?.child.stop());

  test('a flagged image ends failed/content_blocked with no variant written; only SAFE_SEARCH_DETECTION was called', async () => {
    vision.scene = FLAGGED_SCENE;
    const id = 'b1a2c3d4-0000-4000-8000-000000000011';
    expect(await deliver(fn.url, id)).toBeLessThan(300);
    const m = manifest(id);
    expect(m).toMatchObject({ status: 'failed', reason: { code: 'content_blocked' }, variants: [] });
    expect(m.analysis!.moderation!.verdict).toBe('blocked');
    expect(variantKeys(id)).toEqual([]);
    // The original stays, private, for review.
    expect(gcs.getObject(ORIGINALS, `originals/alice/${id}`)?.body.length).toBe(upload.length);
    const attributes = await notified(id);
    if (attributes) expect(attributes).toMatchObject({ status: 'failed', moderation: 'blocked' });
    expect(vision.requests.map((r) => r.features)).toEqual([[{ type: 'SAFE_SEARCH_DETECTION' }]]);
    expect(vision.requests[0].image).toMatchObject({ format: 'jpeg', ...RUNG });
  });

  test('a clean image is processed, verdict ok', async () => {
    vision.scene = { safeSearch: { adult: 'VERY_UNLIKELY', violence: 'UNLIKELY', racy: 'POSSIBLE' } };
    const id = 'b1a2c3d4-0000-4000-8000-000000000012';
    expect(await deliver(fn.url, id)).toBeLessThan(300);
    const m = manifest(id);
    expect([m.status, m.analysis!.moderation!.verdict, m.variants.map((v) => v.name)]).toEqual(['processed', 'ok', ['thumb']]);
    expect(m.analysis!.faces).toBeUndefined();
    expect(variantKeys(id)).toEqual([`variants/${id}/thumb.webp`]);
  });
});

describe('credentials from a service-account key file (GOOGLE_APPLICATION_CREDENTIALS), as off Google Cloud', () => {
  const sa = makeServiceAccount('pixelpipe-process@pixelpipe-test.iam.gserviceaccount.com');
  const grants: { iss?: string; aud?: string; scope?: string; signed: boolean }[] = [];
  let fn: { url: string; child: BundleChild };
  beforeAll(async () => {
    // Google's token endpoint, as the fake: the grant is a JWT signed with the key file's private key.
    google.route('POST /oauth2.googleapis.com/token', (req) => {
      const assertion = new URLSearchParams(req.body).get('assertion') ?? '';
      const [header, payload, signature] = assertion.split('.');
      const claims = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString('utf8')) as { iss?: string; aud?: string; scope?: string };
      const signed = createVerify('RSA-SHA256')
        .update(`${header}.${payload}`)
        .verify(sa.publicKey, Buffer.from(signature ?? '', 'base64url'));
      grants.push({ iss: claims.iss, aud: claims.aud, scope: claims.scope, signed });
      return signed ? { json: { access_token: 'ya29.key-file', expires_in: 3599, token_type: 'Bearer' } } : { status: 400, json: { error: 'invalid_grant' } };
    });
    fn = await startProcess(
      {
        PIXELPIPE_ANALYSES: 'faces',
        GOOGLE_APPLICATION_CREDENTIALS: sa.keyFile,
        // No metadata server here: the key file is the only credential source.
        METADATA_SERVER_DETECTION: 'none',
        GCE_METADATA_HOST: '127.0.0.1:9',
        GOOGLEAPIS_FAKE_URL: google.url,
      },
      [join(ROOT, 'test', 'support', 'googleapis-redirect.cjs')],
    );
  });
  afterAll(() => fn?.child.stop());

  test('the bundle signs its own token grant with the key and calls Vision with that token', async () => {
    vision.scene = FLAGGED_SCENE;
    const before = google.requests.filter((r) => r.path.startsWith('/computeMetadata/')).length;
    const id = 'b1a2c3d4-0000-4000-8000-000000000021';
    expect(await deliver(fn.url, id)).toBeLessThan(300);
    const m = manifest(id);
    expect(m.status).toBe('processed');
    expect(m.analysis?.error).toBeUndefined();
    expectSceneFaces(m, expect);
    expect(grants).toEqual([
      { iss: sa.email, aud: 'https://oauth2.googleapis.com/token', scope: 'https://www.googleapis.com/auth/cloud-platform', signed: true },
    ]);
    expect(vision.requests.map((r) => [r.headers.authorization, r.features.map((f) => f.type)])).toEqual([['Bearer ya29.key-file', ['FACE_DETECTION']]]);
    expect(google.requests.filter((r) => r.path.startsWith('/computeMetadata/')).length).toBe(before);
  });
});
