/**
 * Amazon Rekognition end to end inside the AWS process function as deployed: the esbuild bundle
 * `dist/aws/process` (build it with `npm run build`) required in a child process and invoked like the
 * Lambda Node.js runtime does (`test/support/lambda-child.cjs`: cold start once, `handler(event,
 * context)` per invocation), with `PIXELPIPE_ANALYZER=rekognition`. The bundle's SDK clients are pointed
 * at local servers with the SDK's own service-specific endpoint variables, which production never sets:
 * `AWS_ENDPOINT_URL_S3` → s3rver, `AWS_ENDPOINT_URL_REKOGNITION` → the Rekognition fake,
 * `AWS_ENDPOINT_URL_SNS` → the local SNS. Events are the AWS sample S3 `ObjectCreated:Put` notifications
 * (`fixtures/s3-put-originals.json`, `s3-put-manifest.json`) pointed at the objects. It checks the
 * manifest's analysis, the crops placed on the faces, the SNS attributes the notify bundle
 * (`dist/aws/notify`, same harness) publishes for the manifest, `block`, throttling retried within the
 * invocation, an outage with analysis optional, and what Rekognition was sent.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import sharp from 'sharp';
import { parseManifest, type Manifest } from '../../shared/manifest';
import { PROVISIONED_THROUGHPUT, RekognitionFake, THROTTLING, INTERNAL_SERVER_ERROR } from '../servers/rekognition-fake';
import { S3RVER_CREDENTIALS, startLocalS3, type LocalS3 } from '../servers/s3';
import { startLocalSns, type LocalSns } from '../servers/sns';
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

jest.setTimeout(120_000);

const ROOT = join(__dirname, '..', '..');
const BUNDLE = join(ROOT, 'dist', 'aws', 'process', 'index.js');
const NOTIFY_BUNDLE = join(ROOT, 'dist', 'aws', 'notify', 'index.js');
const ORIGINALS = 'e2e-rek-originals';
const VARIANTS_BUCKET = 'e2e-rek-variants';
type S3Notification = {
  Records: Array<{ eventTime: string; s3: { bucket: { name: string; arn: string }; object: { key: string; size: number; eTag: string } } }>;
};
const fixture = (name: string) => JSON.parse(readFileSync(join(__dirname, 'fixtures', name), 'utf8')) as S3Notification;
const SAMPLE_EVENT = fixture('s3-put-originals.json');
const SAMPLE_MANIFEST_EVENT = fixture('s3-put-manifest.json');

let s3: LocalS3;
let rekognition: RekognitionFake;
let rekognitionUrl: string;
let upload: Buffer;
let sns: LocalSns;
let topicArn: string;
let notifyFn: Lambda;

beforeAll(async () => {
  assertBuilt(BUNDLE, NOTIFY_BUNDLE);
  s3 = await startLocalS3([ORIGINALS, VARIANTS_BUCKET]);
  sns = await startLocalSns();
  topicArn = sns.createTopic('pixelpipe-rek-events');
  rekognition = new RekognitionFake();
  rekognitionUrl = await rekognition.start();
  upload = await rotatedUpload();
  notifyFn = await startLambda(NOTIFY_BUNDLE, {});
});
afterAll(async () => {
  await notifyFn?.child.stop();
  await rekognition?.stop();
  await sns?.close();
  await s3?.close();
});
beforeEach(() => rekognition.reset());

interface Lambda {
  child: BundleChild;
  invoke(
    event: unknown,
    timeoutMs?: number,
  ): Promise<{ result?: { outcomes: Array<{ status: string; key?: string }> }; error?: { name: string; message: string } }>;
}

/** The process bundle in a Lambda-like child with this analysis configuration. */
function startProcess(analysis: Record<string, string>): Promise<Lambda> {
  return startLambda(BUNDLE, { PIXELPIPE_VARIANTS: VARIANTS, PIXELPIPE_ANALYZER: 'rekognition', ...analysis });
}

/** A bundle in a Lambda-like child, its SDK clients on the local servers. */
async function startLambda(bundle: string, extra: Record<string, string>): Promise<Lambda> {
  const env: Record<string, string> = {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
    AWS_ENDPOINT_URL_S3: s3.endpoint,
    AWS_ENDPOINT_URL_REKOGNITION: rekognitionUrl,
    AWS_ENDPOINT_URL_SNS: sns.endpoint,
    PIXELPIPE_ORIGINALS_BUCKET: ORIGINALS,
    PIXELPIPE_VARIANTS_BUCKET: VARIANTS_BUCKET,
    PIXELPIPE_TOPIC: topicArn,
    PIXELPIPE_AUTH_MODE: 'anonymous',
    PIXELPIPE_LOG_LEVEL: 'error',
    PIXELPIPE_WEBP_EFFORT: '0',
    ...extra,
  };
  const { child } = await startBundleChild([join(ROOT, 'test', 'support', 'lambda-child.cjs'), bundle], env, /READY function/, { cwd: ROOT, ipc: true });
  let n = 0;
  return {
    child,
    invoke: (event, timeoutMs = 60_000) =>
      new Promise((resolve, reject) => {
        const id = `invocation-${++n}`;
        const timer = setTimeout(() => reject(new Error(`no answer to ${id}:\n${child.output()}`)), timeoutMs + 10_000);
        const onMessage = (m: { id: string }) => {
          if (m.id !== id) return;
          clearTimeout(timer);
          child.proc.off('message', onMessage);
          resolve(m as Awaited<ReturnType<Lambda['invoke']>>);
        };
        child.proc.on('message', onMessage);
        child.proc.send({ id, event, timeoutMs });
      }),
  };
}

/** Puts the rotated photo at `originals/alice/<id>` and returns the S3 notification Lambda would get for it. */
async function put(id: string): Promise<unknown> {
  const key = `originals/alice/${id}`;
  const put = await s3.client().send(new PutObjectCommand({ Bucket: ORIGINALS, Key: key, Body: upload, ContentType: 'image/jpeg' }));
  const [record] = structuredClone(SAMPLE_EVENT.Records);
  // Now: the sample's own time is older than PIXELPIPE_MAX_EVENT_AGE_SECONDS, which ends it as retries_exhausted.
  record.eventTime = new Date().toISOString();
  record.s3.bucket = { ...record.s3.bucket, name: ORIGINALS, arn: `arn:aws:s3:::${ORIGINALS}` };
  record.s3.object = { ...record.s3.object, key, size: upload.length, eTag: (put.ETag ?? '').replace(/"/g, '') };
  return { Records: [record] };
}

/** Runs the notify bundle on the manifest's S3 notification; returns the SNS message attributes it published. */
async function notified(id: string): Promise<Record<string, string>> {
  const [record] = structuredClone(SAMPLE_MANIFEST_EVENT.Records);
  record.eventTime = new Date().toISOString();
  record.s3.bucket = { ...record.s3.bucket, name: VARIANTS_BUCKET, arn: `arn:aws:s3:::${VARIANTS_BUCKET}` };
  record.s3.object = { ...record.s3.object, key: `manifests/${id}.json` };
  const answer = await notifyFn.invoke({ Records: [record] });
  expect(answer.error).toBeUndefined();
  const message = sns.published.find((p) => p.attributes.imageId?.StringValue === id);
  if (!message) throw new Error(`nothing published for ${id}: ${JSON.stringify(answer.result)}\n${notifyFn.child.output()}`);
  return Object.fromEntries(Object.entries(message.attributes).map(([k, v]) => [k, v.StringValue ?? '']));
}

async function getBody(key: string): Promise<Buffer | undefined> {
  try {
    const o = await s3.client().send(new GetObjectCommand({ Bucket: VARIANTS_BUCKET, Key: key }));
    return Buffer.from(await o.Body!.transformToByteArray());
  } catch {
    return undefined;
  }
}

async function manifest(id: string): Promise<Manifest> {
  const body = await getBody(`manifests/${id}.json`);
  if (!body) throw new Error(`no manifest for ${id}`);
  return parseManifest(JSON.parse(body.toString('utf8')));
}

async function variantKeys(id: string): Promise<string[]> {
  const out = await s3.client().send(new ListObjectsV2Command({ Bucket: VARIANTS_BUCKET, Prefix: `variants/${id}/` }));
  return (out.Contents ?? []).map((o) => o.Key!);
}

const FLAGGED_SCENE = {
  faces: SCENE_FACES.map((box, i) => ({ box, confidence: 99.5 - i * 4 })),
  labels: [
    { name: 'Person', confidence: 97.2 },
    { name: 'Smile', confidence: 81 },
    { name: 'Bark', confidence: 40 }, // under DetectLabels' MinConfidence 55: Rekognition leaves it out
  ],
  moderation: [{ name: 'Suggestive', confidence: 88 }],
};

const operations = () => rekognition.requests.map((r) => r.operation).sort();

describe('PIXELPIPE_MODERATION=flag, all three analyses', () => {
  let fn: Lambda;
  beforeAll(async () => {
    fn = await startProcess({ PIXELPIPE_ANALYSES: 'faces,labels,moderation', PIXELPIPE_MODERATION: 'flag' });
  });
  afterAll(() => fn?.child.stop());

  test('the manifest holds what Rekognition saw (boxes on the oriented original), faces crops hold the faces, attributes filter on it', async () => {
    rekognition.scene = FLAGGED_SCENE;
    const id = 'c1a2c3d4-0000-4000-8000-000000000001';
    const answer = await fn.invoke(await put(id));
    expect(answer.error).toBeUndefined();
    expect(answer.result!.outcomes).toEqual([expect.objectContaining({ status: 'processed' })]);
    const m = await manifest(id);
    expect(m.status).toBe('processed');
    expect(m.source).toMatchObject({ width: 600, height: 800 });
    expect(m.analysis).toMatchObject({
      analyzer: 'aws-rekognition',
      labels: [
        { name: 'Person', score: 0.972 },
        { name: 'Smile', score: 0.81 },
      ],
      moderation: { verdict: 'flagged', categories: [{ name: 'Suggestive', score: 0.88 }] },
    });
    expect(m.analysis!.labels).toHaveLength(2);
    expect(m.analysis!.error).toBeUndefined();
    expectSceneFaces(m, expect);
    expect(m.analysis!.faces!.map((f) => f.score)).toEqual([0.995, 0.955]);
    expectFaceCrops(m, expect);
    expectCentreSquare(m, 'centre', expect);
    for (const v of m.variants) {
      const meta = await sharp(await getBody(v.key)).metadata();
      expect([meta.width, meta.height, meta.format]).toEqual([v.width, v.height, v.format]);
    }
    // The notify function publishes the manifest with the attributes subscribers filter on.
    expect(await notified(id)).toMatchObject({ status: 'processed', moderation: 'flagged', faces: '2' });

    // What Rekognition was sent: each of the three operations once, the same upright rung inline, signed for us-east-1.
    expect(operations()).toEqual(['DetectFaces', 'DetectLabels', 'DetectModerationLabels']);
    for (const req of rekognition.requests) {
      expect(req.image).toMatchObject({ format: 'jpeg', ...RUNG });
      expect(String(req.headers.authorization)).toContain(`Credential=${S3RVER_CREDENTIALS.accessKeyId}/`);
      expect(String(req.headers.authorization)).toContain('/us-east-1/rekognition/aws4_request');
    }
    const byOp = Object.fromEntries(rekognition.requests.map((r) => [r.operation, r.body]));
    expect(byOp.DetectFaces).toMatchObject({ Attributes: ['DEFAULT'] });
    expect(byOp.DetectLabels).toMatchObject({ MaxLabels: 10, MinConfidence: 55, Features: ['GENERAL_LABELS'] });
    expect(byOp.DetectModerationLabels).toMatchObject({ MinConfidence: 50 });
    await expectUprightRung(rekognition.requests[0].image!.data, expect);
  });

  test.each([
    ['ThrottlingException', THROTTLING],
    ['ProvisionedThroughputExceededException', PROVISIONED_THROUGHPUT],
  ])('%s then OK: retried within the invocation, processed with the analysis', async (_name, fault) => {
    rekognition.scene = FLAGGED_SCENE;
    rekognition.failNext(fault, 1, 'DetectFaces');
    const id = `c1a2c3d4-0000-4000-8000-00000000000${fault === THROTTLING ? 2 : 3}`;
    const answer = await fn.invoke(await put(id));
    expect(answer.error).toBeUndefined();
    // The whole analysis is tried again: the first round's calls plus three.
    expect(rekognition.requests.filter((r) => r.operation === 'DetectFaces')).toHaveLength(2);
    expect(rekognition.requests.length).toBeGreaterThanOrEqual(4);
    expect(rekognition.requests.length).toBeLessThanOrEqual(6);
    const m = await manifest(id);
    expect([m.status, m.attempts, m.analysis!.moderation!.verdict, m.analysis!.error]).toEqual(['processed', 1, 'flagged', undefined]);
    expectSceneFaces(m, expect);
    expectFaceCrops(m, expect);
  });

  // Last in this block: the outage counts towards the breaker of this cold start.
  test('an outage with PIXELPIPE_ANALYSIS_REQUIRED=false (default): processed with analysis.error, moderation unavailable, fallback crops', async () => {
    rekognition.scene = FLAGGED_SCENE;
    rekognition.failNext(INTERNAL_SERVER_ERROR, 50, 'DetectFaces');
    const id = 'c1a2c3d4-0000-4000-8000-000000000004';
    const answer = await fn.invoke(await put(id));
    expect(answer.error).toBeUndefined();
    // The analysis stage's 3 attempts, none more.
    expect(rekognition.requests.filter((r) => r.operation === 'DetectFaces')).toHaveLength(3);
    const m = await manifest(id);
    expectProcessedWithoutAnalysis(m, 'aws-rekognition', expect);
    const attributes = await notified(id);
    expect(attributes).toMatchObject({ status: 'processed', moderation: 'unavailable' });
    expect(attributes).not.toHaveProperty('faces');
  });
});

describe('PIXELPIPE_MODERATION=block, moderation only', () => {
  let fn: Lambda;
  beforeAll(async () => {
    fn = await startProcess({
      PIXELPIPE_ANALYSES: 'moderation',
      PIXELPIPE_MODERATION: 'block',
      PIXELPIPE_VARIANTS: JSON.stringify([{ name: 'thumb', width: 200, height: 200, fit: 'cover', formats: ['webp'] }]),
    });
  });
  afterAll(() => fn?.child.stop());

  test('a flagged image ends failed/content_blocked with no variant written; only DetectModerationLabels was called', async () => {
    rekognition.scene = FLAGGED_SCENE;
    const id = 'c1a2c3d4-0000-4000-8000-000000000011';
    const answer = await fn.invoke(await put(id));
    expect(answer.error).toBeUndefined();
    const m = await manifest(id);
    expect(m).toMatchObject({ status: 'failed', reason: { code: 'content_blocked' }, variants: [] });
    expect(m.analysis!.moderation!.verdict).toBe('blocked');
    expect(await variantKeys(id)).toEqual([]);
    // The original stays, private, for review.
    expect((await s3.client().send(new HeadObjectCommand({ Bucket: ORIGINALS, Key: `originals/alice/${id}` }))).ContentLength).toBe(upload.length);
    expect(await notified(id)).toMatchObject({ status: 'failed', moderation: 'blocked' });
    expect(operations()).toEqual(['DetectModerationLabels']);
    expect(rekognition.requests[0].image).toMatchObject({ format: 'jpeg', ...RUNG });
  });

  test('a clean image is processed, verdict ok', async () => {
    rekognition.scene = { moderation: [{ name: 'Suggestive', confidence: 30 }] }; // under MinConfidence 50
    const id = 'c1a2c3d4-0000-4000-8000-000000000012';
    const answer = await fn.invoke(await put(id));
    expect(answer.error).toBeUndefined();
    const m = await manifest(id);
    expect([m.status, m.analysis!.moderation!.verdict, m.variants.map((v) => v.name)]).toEqual(['processed', 'ok', ['thumb']]);
    expect(await variantKeys(id)).toEqual([`variants/${id}/thumb.webp`]);
  });
});
