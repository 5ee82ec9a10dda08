/**
 * Packages the AWS stack with the open-source `osls` CLI, offline (dummy credentials, no AWS account),
 * and checks the generated CloudFormation and zips: buckets, notifications, topic, dead-letter queue,
 * runtime and architecture, per-function least-privilege IAM, no dependency cycle, and that the process
 * zip carries sharp for linux-arm64 while the other two carry no native code at all.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, readdir, rm, stat, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { loadConfig } from '../../shared/config';

const ROOT = join(__dirname, '..', '..');
const PACKAGE_TIMEOUT_MS = 180_000;

type Json = Record<string, unknown>;
interface Template {
  Resources: Record<string, { Type: string; Properties: Json; DependsOn?: string | string[] }>;
}
interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: unknown;
}

/** Minimal ZIP reader (central directory + deflate), enough to list and read entries of osls' zips. */
function readZip(buf: Buffer): Map<string, { size: number; read: () => Buffer }> {
  const eocd = buf.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (eocd < 0) throw new Error('not a zip file');
  const count = buf.readUInt16LE(eocd + 10);
  let p = buf.readUInt32LE(eocd + 16);
  const entries = new Map<string, { size: number; read: () => Buffer }>();
  for (let i = 0; i < count; i++) {
    const method = buf.readUInt16LE(p + 10);
    const compressed = buf.readUInt32LE(p + 20);
    const size = buf.readUInt32LE(p + 24);
    const nameLen = buf.readUInt16LE(p + 28);
    const extraLen = buf.readUInt16LE(p + 30);
    const commentLen = buf.readUInt16LE(p + 32);
    const local = buf.readUInt32LE(p + 42);
    const name = buf.toString('utf8', p + 46, p + 46 + nameLen);
    entries.set(name, {
      size,
      read: () => {
        const start = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
        const data = buf.subarray(start, start + compressed);
        return method === 0 ? Buffer.from(data) : inflateRawSync(data);
      },
    });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

/** Turns CloudFormation intrinsics into comparable strings, with fixed pseudo-parameter values. */
function resolve(v: unknown): string {
  if (typeof v === 'string') return v;
  const o = v as Json;
  if (o && typeof o['Fn::Sub'] === 'string') {
    return o['Fn::Sub'].replace(
      /\$\{([^}]+)\}/g,
      (_m, name: string) => ({ 'AWS::Partition': 'aws', 'AWS::Region': 'us-east-1', 'AWS::AccountId': '123456789012' })[name] ?? `<${name}>`,
    );
  }
  if (o && typeof o.Ref === 'string') return `ref:${o.Ref}`;
  if (o && Array.isArray(o['Fn::GetAtt'])) return `getatt:${(o['Fn::GetAtt'] as string[]).join('.')}`;
  return JSON.stringify(v);
}
const list = <T>(x: T | T[] | undefined): T[] => (x === undefined ? [] : Array.isArray(x) ? x : [x]);

/** Every resource another resource needs (Ref, GetAtt, Sub variables, DependsOn). */
function dependencies(resource: unknown, names: Set<string>): Set<string> {
  const out = new Set<string>();
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) return v.forEach(walk);
    if (!v || typeof v !== 'object') return;
    const o = v as Json;
    if (typeof o.Ref === 'string' && names.has(o.Ref)) out.add(o.Ref);
    if (Array.isArray(o['Fn::GetAtt']) && names.has((o['Fn::GetAtt'] as string[])[0])) out.add((o['Fn::GetAtt'] as string[])[0]);
    if (typeof o['Fn::Sub'] === 'string') for (const m of o['Fn::Sub'].matchAll(/\$\{([A-Za-z0-9]+)(?:\.[A-Za-z]+)?\}/g)) if (names.has(m[1])) out.add(m[1]);
    Object.values(o).forEach(walk);
  };
  walk((resource as Json).Properties);
  for (const d of list((resource as { DependsOn?: string | string[] }).DependsOn)) out.add(d);
  return out;
}

const ORIG = 'arn:aws:s3:::pixelpipe-test-originals-123456789012-us-east-1';
const VAR = 'arn:aws:s3:::pixelpipe-test-variants-123456789012-us-east-1';

/** `osls package --stage test` into `outDir`, offline, with extra `--param`s. */
async function oslsPackage(outDir: string, params: string[] = [], extraEnv: NodeJS.ProcessEnv = {}): Promise<void> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CI: 'true',
    SLS_TELEMETRY_DISABLED: '1',
    SLS_NOTIFICATIONS_MODE: 'off',
    SLS_DEPRECATION_DISABLE: '*',
    AWS_ACCESS_KEY_ID: 'AKIDPACKAGEONLY',
    AWS_SECRET_ACCESS_KEY: 'package-only',
    AWS_REGION: 'us-east-1',
    ...extraEnv,
  };
  delete env.AWS_PROFILE;
  delete env.AWS_SESSION_TOKEN;
  const bin = join(ROOT, 'node_modules', 'osls', 'bin', 'serverless.js');
  await new Promise<void>((resolvePromise, reject) => {
    execFile(
      process.execPath,
      [bin, 'package', '--stage', 'test', '--package', outDir, ...params.map((p) => `--param=${p}`)],
      { cwd: ROOT, env, timeout: PACKAGE_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`osls package failed: ${err.message}\n${stdout}\n${stderr}`));
        else resolvePromise();
      },
    );
  });
}

/** The one grant allowed on Resource "*": Rekognition's image operations take no resource ARN (see serverless-prepare.cjs). */
const REKOGNITION_DETECT = new Set(['rekognition:DetectFaces', 'rekognition:DetectLabels', 'rekognition:DetectModerationLabels']);

describe('serverless.yml packaged with osls', () => {
  let template: Template;
  let outDir: string;
  const zips = new Map<string, ReturnType<typeof readZip>>();

  beforeAll(async () => {
    outDir = await mkdtemp(join(tmpdir(), 'pixelpipe-osls-'));
    const started = performance.now();
    await oslsPackage(outDir);
    const seconds = (performance.now() - started) / 1000;
    template = JSON.parse(await readFile(join(outDir, 'cloudformation-template-update-stack.json'), 'utf8')) as Template;
    const rows: string[] = [];
    for (const f of (await readdir(outDir)).filter((n) => n.endsWith('.zip')).sort()) {
      const buf = await readFile(join(outDir, f));
      zips.set(f.replace(/\.zip$/, ''), readZip(buf));
      const unzipped = [...readZip(buf).values()].reduce((n, e) => n + e.size, 0);
      rows.push(`${f}: ${(buf.length / 1024 / 1024).toFixed(2)} MiB zipped, ${(unzipped / 1024 / 1024).toFixed(2)} MiB unzipped`);
    }
    console.log(`osls package --stage test took ${seconds.toFixed(1)} s\n${rows.join('\n')}`);
  }, PACKAGE_TIMEOUT_MS + 20_000);

  afterAll(async () => {
    if (outDir) await rm(outDir, { recursive: true, force: true });
  });

  const res = (name: string) => {
    const r = template.Resources[name];
    if (!r) throw new Error(`resource ${name} missing; have ${Object.keys(template.Resources).join(', ')}`);
    return r;
  };

  test('five functions on nodejs22.x / arm64 with their memory, timeout and own role', () => {
    const expected = { Upload: [1024, 10], Images: [1024, 10], Process: [1769, 60], Notify: [256, 30], Cascade: [256, 60] } as const;
    for (const [fn, [memory, timeout]] of Object.entries(expected)) {
      const p = res(`${fn}LambdaFunction`).Properties;
      expect([fn, p.Runtime, p.Architectures, p.MemorySize, p.Timeout]).toEqual([fn, 'nodejs22.x', ['arm64'], memory, timeout]);
      expect(resolve(p.Role)).toBe(`getatt:${fn}Role.Arn`);
      expect(p.Handler).toBe(`dist/aws/${fn.toLowerCase()}/index.handler`);
    }
    expect(template.Resources.IamRoleLambdaExecution).toBeUndefined();
    const env = (fn: string) => (res(`${fn}LambdaFunction`).Properties.Environment as { Variables: Json }).Variables;
    expect(env('Process').MALLOC_ARENA_MAX).toBe('2');
    expect(resolve(env('Notify').PIXELPIPE_TOPIC)).toBe('ref:CompletionTopic');
    expect(resolve(env('Cascade').PIXELPIPE_TOPIC)).toBe('ref:CompletionTopic');
    expect(resolve(env('Upload').PIXELPIPE_ORIGINALS_BUCKET)).toBe(ORIG.replace('arn:aws:s3:::', ''));
    expect(env('Upload').PIXELPIPE_CORS_ORIGINS).not.toContain('*');
    // statusUrl in upload responses points at the images API of the same HTTP API.
    expect(resolve(env('Upload').PIXELPIPE_STATUS_URL_BASE)).toBe('https://<HttpApi>.execute-api.us-east-1.amazonaws.com/images');
  });

  test('the images API routes on the HTTP API, all to the images function, authenticated by it as the upload route is', () => {
    const routes = Object.values(template.Resources)
      .filter((r) => r.Type === 'AWS::ApiGatewayV2::Route')
      .map((r) => [r.Properties.RouteKey as string, resolve(r.Properties.Target), r.Properties.AuthorizationType ?? 'NONE'] as const);
    const imagesRoutes = routes.filter(([key]) => key.includes('/images'));
    expect(imagesRoutes.map(([key]) => key).sort()).toEqual(
      ['DELETE /images/{id}', 'GET /images', 'GET /images/{id}', 'OPTIONS /images', 'OPTIONS /images/{id}'].sort(),
    );
    const uploadAuth = routes.find(([key]) => key === 'POST /uploads')![2];
    for (const [, target, auth] of imagesRoutes) {
      expect(target).toContain('HttpApiIntegrationImages');
      expect(auth).toBe(uploadAuth);
    }
  });

  test('two private, encrypted buckets with CORS for the configured origins only', () => {
    for (const name of ['OriginalsBucket', 'VariantsBucket']) {
      const p = res(name).Properties as Json & { CorsConfiguration: { CorsRules: Array<{ AllowedOrigins: unknown }> } };
      expect(p.PublicAccessBlockConfiguration).toEqual({ BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true });
      expect(JSON.stringify(p.BucketEncryption)).toMatch(/"SSEAlgorithm":"(AES256|aws:kms)"/);
      expect(p.AccessControl).toBeUndefined();
      for (const rule of p.CorsConfiguration.CorsRules) {
        const origins = rule.AllowedOrigins as { 'Fn::Split': [string, string] } | string[];
        const values = Array.isArray(origins) ? origins : origins['Fn::Split'][1].split(origins['Fn::Split'][0]);
        expect(values).toEqual(['https://app.example.com', 'http://localhost:5173']);
        expect(values.some((o) => o.includes('*'))).toBe(false);
      }
    }
    expect(JSON.stringify(res('OriginalsBucket').Properties.CorsConfiguration)).toContain('"AllowedMethods":["POST"]');
  });

  test('S3 notifications: originals/ → process (created) and cascade (removed), manifests/*.json → notify, each after its permission', () => {
    const notif = (bucket: string) =>
      (
        res(bucket).Properties.NotificationConfiguration as {
          LambdaConfigurations: Array<{ Event: string; Function: unknown; Filter: { S3Key: { Rules: Array<{ Name: string; Value: string }> } } }>;
        }
      ).LambdaConfigurations;
    expect(notif('OriginalsBucket').map((o) => [o.Event, resolve(o.Function), o.Filter.S3Key.Rules])).toEqual([
      ['s3:ObjectCreated:*', 'getatt:ProcessLambdaFunction.Arn', [{ Name: 'prefix', Value: 'originals/' }]],
      ['s3:ObjectRemoved:*', 'getatt:CascadeLambdaFunction.Arn', [{ Name: 'prefix', Value: 'originals/' }]],
    ]);
    expect(list(res('OriginalsBucket').DependsOn)).toContain('CascadeS3InvokePermission');
    expect(resolve(res('CascadeS3InvokePermission').Properties.SourceArn)).toBe(ORIG);
    const [v] = notif('VariantsBucket');
    expect(notif('VariantsBucket')).toHaveLength(1);
    expect([v.Event, resolve(v.Function)]).toEqual(['s3:ObjectCreated:*', 'getatt:NotifyLambdaFunction.Arn']);
    expect(v.Filter.S3Key.Rules).toEqual([
      { Name: 'prefix', Value: 'manifests/' },
      { Name: 'suffix', Value: '.json' },
    ]);
    expect(list(res('OriginalsBucket').DependsOn)).toContain('ProcessS3InvokePermission');
    expect(list(res('VariantsBucket').DependsOn)).toContain('NotifyS3InvokePermission');
    expect(resolve(res('ProcessS3InvokePermission').Properties.SourceArn)).toBe(ORIG);
    expect(resolve(res('NotifyS3InvokePermission').Properties.SourceArn)).toBe(VAR);
    expect(res('ProcessS3InvokePermission').Properties.Principal).toBe('s3.amazonaws.com');
  });

  test('the SNS topic and the dead-letter queue for failed async invocations', () => {
    expect(res('CompletionTopic').Type).toBe('AWS::SNS::Topic');
    expect(res('FailedEventsQueue').Type).toBe('AWS::SQS::Queue');
    for (const fn of ['Process', 'Notify', 'Cascade']) {
      const p = res(`${fn}LambdaEvConf`).Properties as { DestinationConfig: { OnFailure: { Destination: unknown } }; MaximumRetryAttempts: number };
      expect(resolve(p.DestinationConfig.OnFailure.Destination)).toBe('getatt:FailedEventsQueue.Arn');
      expect(p.MaximumRetryAttempts).toBe(2);
    }
  });

  test('no circular dependency between buckets, notifications, permissions, roles and functions', () => {
    const names = new Set(Object.keys(template.Resources));
    const graph = new Map([...names].map((n) => [n, dependencies(template.Resources[n], names)]));
    const state = new Map<string, 'visiting' | 'done'>();
    const visit = (n: string, path: string[]): void => {
      if (state.get(n) === 'done') return;
      if (state.get(n) === 'visiting') throw new Error(`cycle: ${[...path, n].join(' → ')}`);
      state.set(n, 'visiting');
      for (const d of graph.get(n) ?? []) visit(d, [...path, n]);
      state.set(n, 'done');
    };
    for (const n of names) visit(n, []);
  });

  describe('least-privilege IAM per function', () => {
    const statements = (role: string): Statement[] =>
      (res(role).Properties.Policies as Array<{ PolicyDocument: { Statement: Statement[] } }>).flatMap((p) => p.PolicyDocument.Statement);
    const grants = (role: string): Array<[string, string]> =>
      statements(role).flatMap((s) => {
        expect(s.Effect).toBe('Allow');
        return list(s.Action).flatMap((a) => list(s.Resource).map((r) => [a, resolve(r)] as [string, string]));
      });

    test.each(['UploadRole', 'ImagesRole', 'ProcessRole', 'NotifyRole', 'CascadeRole'])(
      '%s: no wildcard actions, no resource "*", no managed policies',
      (role) => {
        expect(res(role).Properties.ManagedPolicyArns).toBeUndefined();
        for (const [action, resource] of grants(role)) {
          expect(action).not.toContain('*');
          if (resource === '*' && role === 'ProcessRole' && REKOGNITION_DETECT.has(action)) continue;
          expect(resource).not.toBe('*');
        }
      },
    );

    test.each([
      ['UploadRole', 'upload'],
      ['ImagesRole', 'images'],
      ['ProcessRole', 'process'],
      ['NotifyRole', 'notify'],
      ['CascadeRole', 'cascade'],
    ])('%s writes only its own log group', (role, fn) => {
      const logs = grants(role).filter(([a]) => a.startsWith('logs:'));
      expect(logs.map(([a]) => a).sort()).toEqual(['logs:CreateLogStream', 'logs:PutLogEvents']);
      for (const [, r] of logs) expect(r).toBe(`arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/pixelpipe-test-${fn}:*`);
    });

    test('upload: only s3:PutObject on originals/* (cannot touch variants)', () => {
      const g = grants('UploadRole').filter(([a]) => !a.startsWith('logs:'));
      expect(g).toEqual([['s3:PutObject', `${ORIG}/originals/*`]]);
      expect(JSON.stringify(statements('UploadRole'))).not.toContain('variants');
    });

    test('process: reads originals/*, reads and writes variants/ manifests/ state/, deletes nothing, lists for 404s; no SNS', () => {
      const g = grants('ProcessRole').filter(([a]) => !a.startsWith('logs:'));
      expect(g.filter(([a]) => a.startsWith('sns:'))).toEqual([]);
      expect(
        g
          .filter(([a]) => a === 's3:GetObject')
          .map(([, r]) => r)
          .sort(),
      ).toEqual([`${ORIG}/originals/*`, `${VAR}/manifests/*`, `${VAR}/state/*`, `${VAR}/variants/*`]);
      expect(
        g
          .filter(([a]) => a === 's3:PutObject')
          .map(([, r]) => r)
          .sort(),
      ).toEqual([`${VAR}/manifests/*`, `${VAR}/state/*`, `${VAR}/variants/*`]);
      // An original deleted mid-render: the cascade waits for the processing lease; the processor deletes nothing.
      expect(g.filter(([a]) => a === 's3:DeleteObject')).toEqual([]);
      // Bucket-level only (no object access): lets S3 answer 404, not 403, for keys that do not exist yet.
      expect(
        g
          .filter(([a]) => a === 's3:ListBucket')
          .map(([, r]) => r)
          .sort(),
      ).toEqual([ORIG, VAR]);
      expect(g.filter(([a]) => a === 'sqs:SendMessage').map(([, r]) => r)).toEqual(['getatt:FailedEventsQueue.Arn']);
      // Analysis is off by default: no Rekognition action either.
      expect(new Set(g.map(([a]) => a))).toEqual(new Set(['s3:GetObject', 's3:PutObject', 's3:ListBucket', 'sqs:SendMessage']));
    });

    test('images: reads variants/ and manifests/ (signed reads), lists originals/ only by prefix, deletes only originals/*; never writes', () => {
      const g = grants('ImagesRole').filter(([a]) => !a.startsWith('logs:'));
      expect(g.sort()).toEqual(
        [
          ['s3:GetObject', `${VAR}/variants/*`],
          ['s3:GetObject', `${VAR}/manifests/*`],
          ['s3:ListBucket', VAR],
          ['s3:ListBucket', ORIG],
          ['s3:DeleteObject', `${ORIG}/originals/*`],
        ].sort(),
      );
      const listOriginals = statements('ImagesRole').find((s) => s.Action === 's3:ListBucket' && resolve(s.Resource) === ORIG);
      expect(listOriginals?.Condition).toEqual({ StringLike: { 's3:prefix': ['originals/*'] } });
      // No read of the uploads themselves.
      expect(g.filter(([a, r]) => a === 's3:GetObject' && r.startsWith(`${ORIG}/`))).toEqual([]);
    });

    test('notify: reads manifests/* and (HEAD) originals/*, publishes to the topic only; no s3:PutObject', () => {
      const g = grants('NotifyRole').filter(([a]) => !a.startsWith('logs:'));
      expect(g.sort()).toEqual(
        [
          ['s3:GetObject', `${VAR}/manifests/*`],
          ['s3:GetObject', `${ORIG}/originals/*`],
          ['s3:ListBucket', ORIG],
          ['sns:Publish', 'ref:CompletionTopic'],
          ['sqs:SendMessage', 'getatt:FailedEventsQueue.Arn'],
        ].sort(),
      );
    });

    test('cascade: deletes only variants/ manifests/ state/, reads originals/* but can never delete or write them', () => {
      const g = grants('CascadeRole').filter(([a]) => !a.startsWith('logs:'));
      expect(g.sort()).toEqual(
        [
          ['s3:GetObject', `${ORIG}/originals/*`],
          ['s3:GetObject', `${VAR}/variants/*`],
          ['s3:GetObject', `${VAR}/manifests/*`],
          ['s3:GetObject', `${VAR}/state/*`],
          ['s3:DeleteObject', `${VAR}/variants/*`],
          ['s3:DeleteObject', `${VAR}/manifests/*`],
          ['s3:DeleteObject', `${VAR}/state/*`],
          ['s3:ListBucket', ORIG],
          ['s3:ListBucket', VAR],
          ['sns:Publish', 'ref:CompletionTopic'],
          ['sqs:SendMessage', 'getatt:FailedEventsQueue.Arn'],
        ].sort(),
      );
      // Only the upload role can write originals and only the images API can delete them.
      for (const role of ['UploadRole', 'ProcessRole', 'NotifyRole', 'CascadeRole']) {
        expect(grants(role).filter(([a, r]) => a === 's3:DeleteObject' && r.startsWith(`${ORIG}/`))).toEqual([]);
      }
      // Only the cascade deletes derived objects.
      for (const role of ['UploadRole', 'ImagesRole', 'ProcessRole', 'NotifyRole']) {
        expect(grants(role).filter(([a, r]) => a === 's3:DeleteObject' && r.startsWith(`${VAR}/`))).toEqual([]);
      }
    });
  });

  describe('zips', () => {
    test('process carries sharp for linux-arm64 (and nothing for x64), next to its bundle', () => {
      const z = zips.get('process')!;
      const names = [...z.keys()];
      expect(names).toContain('dist/aws/process/index.js');
      const addon = names.find((n) => /^dist\/aws\/process\/node_modules\/@img\/sharp-linux-arm64\/lib\/sharp-linux-arm64-[\d.]+\.node$/.test(n));
      expect(addon).toBeDefined();
      const elf = z.get(addon!)!.read();
      expect(elf.toString('latin1', 1, 4)).toBe('ELF');
      expect(elf.readUInt16LE(18)).toBe(0xb7); // EM_AARCH64
      expect(names.some((n) => n.includes('@img/sharp-libvips-linux-arm64/lib/libvips-cpp.so'))).toBe(true);
      expect(names.some((n) => /x64|darwin|win32|musl/.test(n))).toBe(false);
      expect(names).toContain('dist/aws/process/node_modules/heic-decode/index.js');
      expect(names).toContain('dist/aws/process/node_modules/libheif-js/libheif-wasm/libheif-bundle.js');
    });

    test('upload, images, notify and cascade are a single bundle each, without sharp or the other cloud SDKs', () => {
      for (const fn of ['upload', 'images', 'notify', 'cascade']) {
        const z = zips.get(fn)!;
        expect([...z.keys()]).toEqual([`dist/aws/${fn}/index.js`]);
        const js = z.get(`dist/aws/${fn}/index.js`)!.read().toString('utf8');
        expect(js).not.toMatch(/require\(["']sharp["']\)/);
        expect(js).not.toContain('@google-cloud');
      }
      expect(zips.get('upload')!.get('dist/aws/upload/index.js')!.read().toString('utf8')).not.toContain('PublishCommand');
    });
  });

  describe('bundles initialise like a Lambda cold start', () => {
    const lambdaEnv = {
      PATH: process.env.PATH,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'AKIDCOLDSTART',
      AWS_SECRET_ACCESS_KEY: 'cold-start',
      PIXELPIPE_ORIGINALS_BUCKET: 'pixelpipe-test-originals',
      PIXELPIPE_VARIANTS_BUCKET: 'pixelpipe-test-variants',
      PIXELPIPE_TOPIC: 'arn:aws:sns:us-east-1:123456789012:pixelpipe-test-events',
      PIXELPIPE_AUTH_MODE: 'jwt',
      PIXELPIPE_JWKS_URL: 'https://idp.example.com/.well-known/jwks.json',
      PIXELPIPE_JWT_ISSUER: 'https://idp.example.com/',
      PIXELPIPE_JWT_AUDIENCE: 'pixelpipe',
    };
    /** Loads a bundle in a fresh Node process (module-level init runs) and reports `typeof handler`. */
    const load = (file: string, env: Record<string, string | undefined>) =>
      new Promise<{ ok: boolean; out: string }>((done) => {
        execFile(
          process.execPath,
          ['-e', `const m = require(${JSON.stringify(file)}); console.log(typeof m.handler)`],
          { env, timeout: 30_000 },
          (err, stdout, stderr) => done({ ok: !err, out: `${stdout}${stderr}` }),
        );
      });

    test.each(['upload', 'images', 'notify', 'cascade'])('%s exports a handler', async (fn) => {
      const r = await load(join(ROOT, 'dist', 'aws', fn, 'index.js'), lambdaEnv);
      expect(r).toMatchObject({ ok: true, out: expect.stringMatching(/^function/) });
    });

    test('process exports a handler (sharp resolved next to the bundle; this machine is x64, so its own sharp)', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'pixelpipe-process-'));
      try {
        await copyFile(join(ROOT, 'dist', 'aws', 'process', 'index.js'), join(dir, 'index.js'));
        await symlink(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
        const r = await load(join(dir, 'index.js'), { ...lambdaEnv, MALLOC_ARENA_MAX: '2' });
        expect(r).toMatchObject({ ok: true, out: expect.stringMatching(/^function/) });
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    test('a bad configuration fails the cold start loudly, naming the variable', async () => {
      const r = await load(join(ROOT, 'dist', 'aws', 'notify', 'index.js'), { ...lambdaEnv, PIXELPIPE_TOPIC: 'pixelpipe-events' });
      expect(r.ok).toBe(false);
      expect(r.out).toContain('PIXELPIPE_TOPIC must be an SNS topic ARN');
      const r2 = await load(join(ROOT, 'dist', 'aws', 'upload', 'index.js'), { ...lambdaEnv, PIXELPIPE_JWKS_URL: '' });
      expect(r2.ok).toBe(false);
      expect(r2.out).toContain('PIXELPIPE_JWKS_URL');
    });
  });

  test('the process package ships the embedded analyzer (runtime, detector weights, SIMD wasm) and stays under 250 MB unzipped', () => {
    const zip = zips.get('process')!;
    for (const f of [
      'face-api/runtime.js',
      'face-api/model/tiny_face_detector_model.bin',
      'face-api/model/tiny_face_detector_model-weights_manifest.json',
      'face-api/wasm/tfjs-backend-wasm-simd.wasm',
    ]) {
      expect(zip.get(`dist/aws/process/${f}`)?.size ?? 0).toBeGreaterThan(0);
    }
    const unzipped = [...zip.values()].reduce((n, e) => n + e.size, 0);
    // Lambda's limit for a zip package, unzipped (functions and layers together).
    expect(unzipped).toBeLessThan(250 * 1000 * 1000);
    // Only the process function analyses: the others stay small.
    expect([...zips.get('upload')!.keys()].some((k) => k.includes('face-api'))).toBe(false);
  });

  test('the packaged artifacts are the freshly built bundles', async () => {
    const built = await stat(join(ROOT, 'dist', 'aws', 'process', 'index.js'));
    expect(zips.get('process')!.get('dist/aws/process/index.js')!.size).toBe(built.size);
  });
});

/** A profiles value with quotes, commas, brackets and spaces: it must reach every function verbatim. */
const PROFILES = JSON.stringify({
  avatar: { variants: [{ name: 'avatar', width: 256, height: 256, fit: 'cover', position: 'faces' }], maxInputBytes: 5242880 },
  chat: { analysis: { moderation: 'block' }, allowedTypes: ['image/jpeg', 'image/png'] },
  'product-large': { variants: [{ name: 'full', width: 2400, formats: ['webp', 'jpeg'] }] },
});

describe('serverless.yml packaged with the Rekognition analyzer on', () => {
  let template: Template;
  let outDir: string;

  beforeAll(async () => {
    outDir = await mkdtemp(join(tmpdir(), 'pixelpipe-osls-rekognition-'));
    // The bundles of the first packaging are reused: only the template differs.
    await oslsPackage(outDir, ['analyzer=rekognition', 'analyses=labels', 'moderation=flag', `profiles=${PROFILES}`, 'defaultProfile=avatar'], {
      PIXELPIPE_SKIP_BUILD: '1',
    });
    template = JSON.parse(await readFile(join(outDir, 'cloudformation-template-update-stack.json'), 'utf8')) as Template;
  }, PACKAGE_TIMEOUT_MS + 20_000);

  afterAll(async () => {
    if (outDir) await rm(outDir, { recursive: true, force: true });
  });

  test('the process role gains exactly DetectLabels and DetectModerationLabels (Resource "*", the documented exception), no other role any', () => {
    const statements = (role: string): Array<Statement & { Sid?: string }> =>
      (template.Resources[role].Properties.Policies as Array<{ PolicyDocument: { Statement: Array<Statement & { Sid?: string }> } }>).flatMap(
        (p) => p.PolicyDocument.Statement,
      );
    const rekognition = statements('ProcessRole').filter((s) => list(s.Action).some((a) => a.startsWith('rekognition:')));
    expect(rekognition).toEqual([
      { Sid: 'AnalyzeImages', Effect: 'Allow', Action: ['rekognition:DetectLabels', 'rekognition:DetectModerationLabels'], Resource: '*' },
    ]);
    for (const role of ['UploadRole', 'NotifyRole', 'CascadeRole']) expect(JSON.stringify(statements(role))).not.toContain('rekognition');
    const env = (template.Resources.ProcessLambdaFunction.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
    expect(env).toMatchObject({ PIXELPIPE_ANALYZER: 'rekognition', PIXELPIPE_ANALYSES: 'labels', PIXELPIPE_MODERATION: 'flag' });
  });

  test('the profiles param reaches every function verbatim, and the packaged config loads with it', () => {
    const functions = Object.keys(template.Resources).filter((k) => template.Resources[k].Type === 'AWS::Lambda::Function');
    expect(functions.length).toBeGreaterThanOrEqual(5);
    for (const fn of functions) {
      const env = (template.Resources[fn].Properties.Environment as { Variables: Record<string, unknown> }).Variables;
      expect({ fn, profiles: env.PIXELPIPE_PROFILES, defaultProfile: env.PIXELPIPE_DEFAULT_PROFILE }).toEqual({
        fn,
        profiles: PROFILES,
        defaultProfile: 'avatar',
      });
    }
    const vars = (template.Resources.ProcessLambdaFunction.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
    // CloudFormation intrinsics (bucket names, the topic) resolve only at deploy time: stand-ins for those.
    const env = Object.fromEntries(Object.entries(vars).filter((e): e is [string, string] => typeof e[1] === 'string'));
    const config = loadConfig({
      ...env,
      PIXELPIPE_ORIGINALS_BUCKET: 'pp-originals',
      PIXELPIPE_VARIANTS_BUCKET: 'pp-variants',
      PIXELPIPE_TOPIC: 'arn:aws:sns:us-east-1:123456789012:t',
    });
    expect(Object.keys(config.profiles).sort()).toEqual(['avatar', 'chat', 'product-large']);
    expect(config.defaultProfile).toBe('avatar');
  });
});
