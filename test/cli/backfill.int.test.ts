/**
 * `pixelpipe backfill` and `reprocess` against real local stores: s3rver (S3 protocol) and the GCS fake
 * (JSON API), through the same adapters the functions use.
 */
import sharp from 'sharp';
import { main } from '../../functions/cli/main';
import { startGcsFake, type GcsFake } from '../servers/gcs-fake';
import { startLocalS3, S3RVER_CREDENTIALS, type LocalS3 } from '../servers/s3';
import { PutObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { Storage } from '@google-cloud/storage';

const ORIG = 'pp-originals';
const VAR = 'pp-variants';
const env = {
  PIXELPIPE_AUTH_MODE: 'anonymous',
  PIXELPIPE_ORIGINALS_BUCKET: ORIG,
  PIXELPIPE_VARIANTS_BUCKET: VAR,
  PIXELPIPE_VARIANTS: JSON.stringify([{ name: 't', width: 32, formats: ['jpeg'] }]),
};
const saved: Record<string, string | undefined> = {};
function setEnv(vars: Record<string, string>): void {
  for (const [k, v] of Object.entries(vars)) {
    if (!(k in saved)) saved[k] = process.env[k];
    process.env[k] = v;
  }
}
afterAll(() => {
  for (const [k, v] of Object.entries(saved))
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
});

async function cli(args: string[]): Promise<{ code: number; report: Record<string, unknown> }> {
  let out = '';
  const o = jest.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
  const e = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    const code = await main(args);
    const last = out.trim().split('\n').pop() ?? '{}';
    return { code, report: JSON.parse(last) as Record<string, unknown> };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

const jpeg = (n: number) =>
  sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 10 * n, g: 80, b: 160 } } })
    .jpeg()
    .toBuffer();
const key = (n: number) => `originals/u${n % 2}/00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

describe('backfill on S3 (s3rver)', () => {
  let s3: LocalS3;
  beforeAll(async () => {
    s3 = await startLocalS3([ORIG, VAR]);
    setEnv({ ...env, AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey, AWS_REGION: s3.region });
    for (let n = 0; n < 5; n++) await s3.client().send(new PutObjectCommand({ Bucket: ORIG, Key: key(n), Body: await jpeg(n), ContentType: 'image/jpeg' }));
  });
  afterAll(() => s3.close());
  const manifests = async () => ((await s3.client().send(new ListObjectsV2Command({ Bucket: VAR, Prefix: 'manifests/' }))).Contents ?? []).map((o) => o.Key);

  test('capped run, resumed run, idempotent rerun, dry run', async () => {
    const base = ['backfill', '--store', 's3', '--endpoint', s3.endpoint, '--concurrency', '2'];
    expect(await cli([...base, '--dry-run'])).toMatchObject({ code: 0, report: { listed: 5, processed: 0 } });
    expect(await manifests()).toEqual([]);
    expect(await cli([...base, '--max', '2'])).toMatchObject({ code: 0, report: { processed: 2, stoppedBy: 'cap' } });
    expect(await manifests()).toHaveLength(2);
    expect(await cli(base)).toMatchObject({ code: 0, report: { processed: 3, skipped: 2, stoppedBy: 'done' } });
    expect(await cli(base)).toMatchObject({ code: 0, report: { processed: 0, skipped: 5 } });
    expect(await manifests()).toHaveLength(5);
  });

  test('reprocess by id', async () => {
    const id = key(3).split('/').pop()!;
    expect(await cli(['reprocess', '--store', 's3', '--endpoint', s3.endpoint, id])).toMatchObject({ code: 0, report: { processed: 1 } });
  });
});

describe('backfill on GCS (JSON API fake)', () => {
  let gcs: GcsFake;
  beforeAll(async () => {
    gcs = await startGcsFake({ buckets: [ORIG, VAR] });
    setEnv({ ...env, GOOGLE_CLOUD_PROJECT: 'pixelpipe-test', METADATA_SERVER_DETECTION: 'none' });
    const storage = new Storage({ apiEndpoint: gcs.url, projectId: 'pixelpipe-test' });
    for (let n = 0; n < 4; n++)
      await storage
        .bucket(ORIG)
        .file(key(n))
        .save(await jpeg(n), { contentType: 'image/jpeg', resumable: false });
  });
  afterAll(async () => {
    delete process.env.STORAGE_EMULATOR_HOST;
    await gcs.close();
  });

  test('processes what has no manifest, then nothing', async () => {
    const base = ['backfill', '--store', 'gcs', '--endpoint', gcs.url];
    expect(await cli(base)).toMatchObject({ code: 0, report: { listed: 4, processed: 4 } });
    expect(gcs.listObjects(VAR).filter((o) => o.name.startsWith('manifests/'))).toHaveLength(4);
    expect(await cli(base)).toMatchObject({ code: 0, report: { processed: 0, skipped: 4 } });
  });
});
