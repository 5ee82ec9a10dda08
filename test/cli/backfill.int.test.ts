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

async function cli(args: string[]): Promise<{ code: number; report: Record<string, unknown>; out: string }> {
  let out = '';
  const o = jest.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
  const e = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    const code = await main(args);
    const last = out.trim().split('\n').pop() ?? '{}';
    return { code, report: JSON.parse(last) as Record<string, unknown>, out };
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

  test('after a recipe change: --prune leaves stale images alone, --stale plans and reprocesses, --prune plans, --apply deletes (capped, resumed)', async () => {
    const base = ['backfill', '--store', 's3', '--endpoint', s3.endpoint, '--concurrency', '2'];
    const objects = async (prefix: string, bucket = VAR) =>
      ((await s3.client().send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }))).Contents ?? []).map((o) => o.Key!).sort();
    const originals = await objects('originals/', ORIG);
    expect(originals).toHaveLength(5);
    // `t` is dropped, `v` is new.
    setEnv({ PIXELPIPE_VARIANTS: JSON.stringify([{ name: 'v', width: 16, formats: ['webp'] }]) });
    expect(await cli([...base, '--prune'])).toMatchObject({
      code: 0,
      report: { command: 'prune', applied: false, candidates: 0, skippedImages: { 'stale recipe': 5 } },
    });

    const planned = await cli([...base, '--stale', '--dry-run']);
    expect(planned.out).toMatch(/^plan: process 5 images \(\d+(\.\d)? (B|KiB) of originals to read\): 5 stale recipe$/m);
    expect(planned.report).toMatchObject({ processed: 0, reasons: { 'stale recipe': 5 } });
    const stale = await cli([...base, '--stale']);
    expect(stale.out).toMatch(/^plan: process 5 images/m);
    expect([stale.code, stale.report]).toEqual([0, expect.objectContaining({ processed: 5, errors: 0 })]);
    expect(await cli([...base, '--stale'])).toMatchObject({ report: { processed: 0, skipped: 5 } });

    const orphans = (await objects('variants/')).filter((k) => k.endsWith('/t.jpg'));
    expect(orphans).toHaveLength(5);
    const dry = await cli([...base, '--prune']);
    expect(dry.out).toMatch(/^plan: delete 5 variant objects of 5 images \(\d+(\.\d)? (B|KiB)\)$/m);
    expect(
      dry.out
        .split('\n')
        .filter((l) => l.startsWith('variants/'))
        .sort(),
    ).toEqual(orphans);
    expect(await objects('variants/')).toContain(orphans[0]);

    expect(await cli([...base, '--prune', '--apply', '--max', '2'])).toMatchObject({ code: 0, report: { applied: true, deleted: 2, stoppedBy: 'cap' } });
    expect(await cli([...base, '--prune', '--apply'])).toMatchObject({ code: 0, report: { deleted: 3, stoppedBy: 'done' } });
    expect(await cli([...base, '--prune', '--apply'])).toMatchObject({ code: 0, report: { candidates: 0, deleted: 0 } });
    expect((await objects('variants/')).filter((k) => k.endsWith('/t.jpg'))).toEqual([]);
    expect((await objects('variants/')).filter((k) => k.endsWith('/v.webp'))).toHaveLength(5);
    expect(await objects('originals/', ORIG)).toEqual(originals);
    expect(await objects('manifests/')).toHaveLength(5);
    // A dozen CLI runs against s3rver: bounded, with room for a loaded 2-core machine.
  }, 120_000);
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

  test('--stale then --prune --apply after a recipe change; originals and manifests stay', async () => {
    const base = ['backfill', '--store', 'gcs', '--endpoint', gcs.url];
    setEnv({ PIXELPIPE_VARIANTS: JSON.stringify([{ name: 'v', width: 16, formats: ['webp'] }]) });
    expect(await cli([...base, '--stale'])).toMatchObject({ code: 0, report: { processed: 4, reasons: { 'stale recipe': 4 } } });
    expect(await cli([...base, '--prune'])).toMatchObject({ code: 0, report: { candidates: 4, deleted: 0 } });
    expect(await cli([...base, '--prune', '--apply'])).toMatchObject({ code: 0, report: { deleted: 4 } });
    const names = (bucket: string) => gcs.listObjects(bucket).map((o) => o.name);
    expect(
      names(VAR)
        .filter((n) => n.startsWith('variants/'))
        .every((n) => n.endsWith('/v.webp')),
    ).toBe(true);
    expect(names(VAR).filter((n) => n.startsWith('manifests/'))).toHaveLength(4);
    expect(names(ORIG)).toHaveLength(4);
  }, 120_000);
});
