/**
 * Upload security, through both real upload handlers (the GCP functions-framework handler called with
 * an Express-shaped request, the AWS API Gateway v2 handler with a v2 event) and the real signers
 * (GcsUrlSigner signing locally with a test service-account key, S3UrlSigner with static keys), with
 * real JWT verification against a local JWKS. The signed targets are checked by independent verifiers:
 * Google's V4 algorithm (`test/gcp/v4-verify.ts`) and S3's POST policy rules (`./post-policy.ts`).
 *
 * Complements `test/unit/upload.test.ts` (status codes and JWT edge cases on a fake signer): here the
 * question is what an attacker holding a token, a signed target or a crafted request can do.
 */
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { S3Client } from '@aws-sdk/client-s3';
import YAML from 'yaml';
import { AnonymousAuthenticator, createAuthenticator, JwtAuthenticator } from '../../shared/auth/jwt-authenticator';
import { systemClock, uuidIds } from '../../shared/clock';
import { loadConfig, type PixelpipeConfig } from '../../shared/config';
import { ConfigError, PixelpipeError, TransientError } from '../../shared/errors';
import type { UploadHttpDeps } from '../../shared/http/upload-http';
import { ownerSegment } from '../../shared/keys';
import { createLogger, silentLogger } from '../../shared/logger';
import type { Manifest } from '../../shared/manifest';
import type { ImageProcessor, RenderResult, SignUploadRequest, UploadTarget, UrlSigner } from '../../shared/ports';
import { FixedClock } from '../../shared/testing/fakes';
import { MemoryObjectStore } from '../../shared/testing/memory-object-store';
import { getImageStatus } from '../../shared/usecases/get-image-status';
import { processImage } from '../../shared/usecases/process-image';
import { defaultPolicy } from '../../shared/resilience';
import { GcsUrlSigner } from '../../functions/gcp/gcs-url-signer';
import { credentialsFromJson } from '../../functions/gcp/google-auth';
import { S3UrlSigner, s3SigningTargetFromEnv } from '../../functions/aws/s3-url-signer';
import { createUploadHandler as createAwsUploadHandler } from '../../functions/aws/upload-handler';
import { createUploadHandler as createGcpUploadHandler } from '../../functions/gcp/upload-handler';
import { verifyV4, type V4Request } from '../gcp/v4-verify';
import { startLocalIdp, type LocalIdp } from '../support/jwks';
import { editPolicy, verifyPostPolicy } from './post-policy';
import { testInvocation } from '../../shared/testing/invocation';

process.env.METADATA_SERVER_DETECTION = 'none';
const ROOT = join(__dirname, '..', '..');

// A recognisable bucket name: it must never appear in an error answer.
const ORIGINALS = 'acme-secret-originals';
const VARIANTS = 'acme-secret-variants';
const APP = 'https://app.example.com';
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}/;

const GCS_EMAIL = 'pixelpipe-upload@pixelpipe-test.iam.gserviceaccount.com';
const gcsKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });
const gcsCredentials = credentialsFromJson(
  { type: 'service_account', client_email: GCS_EMAIL, private_key: gcsKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() },
  'test key',
);
const AWS_SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';

const gcsSigner = () => new GcsUrlSigner(gcsCredentials, { policy: defaultPolicy('sign', { attempts: 1 }) });
// Built the way the upload Lambda builds it: from the variables Lambda sets for the execution role.
const s3Signer = () =>
  new S3UrlSigner(s3SigningTargetFromEnv({ AWS_REGION: 'eu-west-1', AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: AWS_SECRET }));

/** What both handlers answer, in one shape. */
interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}
interface Req {
  method: string;
  /** Default `/` (the function's own URL); AWS: the raw path of a `$default`-route event. */
  path?: string;
  headers?: Record<string, string>;
  /** Bytes go base64-encoded on AWS (as API Gateway passes a body it does not treat as text). */
  body?: string | Buffer;
}
type Handler = (req: Req) => Promise<Answer>;

interface Platform {
  name: string;
  cloud: 'gcp' | 'aws';
  signer: () => UrlSigner;
  handler: (deps: UploadHttpDeps) => Handler;
}

const platforms: Platform[] = [
  {
    name: 'GCP upload (functions-framework handler)',
    cloud: 'gcp',
    signer: gcsSigner,
    handler: (deps) => {
      const fn = createGcpUploadHandler(deps);
      return async (req) => {
        const out: Answer = { status: 0, headers: {}, body: '' };
        const res = {
          status(s: number) {
            out.status = s;
            return res;
          },
          set(h: Record<string, string>) {
            for (const [k, v] of Object.entries(h)) out.headers[k.toLowerCase()] = v;
            return res;
          },
          send(b: unknown) {
            out.body = String(b);
            return res;
          },
          writableFinished: false,
          once() {
            return res;
          },
        };
        const request = {
          method: req.method,
          path: req.path ?? '/',
          headers: req.headers ?? {},
          rawBody: req.body === undefined ? undefined : Buffer.from(req.body),
        };
        await fn(request as never, res as never);
        return out;
      };
    },
  },
  {
    name: 'AWS upload (API Gateway HTTP API v2 handler)',
    cloud: 'aws',
    signer: s3Signer,
    handler: (deps) => {
      const fn = createAwsUploadHandler(deps);
      return async (req) => {
        const bytes = Buffer.isBuffer(req.body);
        const r = await fn({
          version: '2.0',
          // A Lambda function URL or `$default` route: API Gateway routed nothing, the handler checks the path.
          routeKey: '$default',
          rawPath: req.path ?? '/uploads',
          headers: req.headers ?? {},
          body: bytes ? (req.body as Buffer).toString('base64') : req.body,
          isBase64Encoded: bytes,
          requestContext: { http: { method: req.method, path: req.path ?? '/uploads' }, stage: '$default' },
        });
        return { status: r.statusCode ?? 0, headers: (r.headers ?? {}) as Record<string, string>, body: typeof r.body === 'string' ? r.body : '' };
      };
    },
  },
];

let idp: LocalIdp;
beforeAll(async () => {
  idp = await startLocalIdp();
});
afterAll(async () => {
  await idp.close();
});

function config(env: Record<string, string> = {}): PixelpipeConfig {
  return loadConfig({
    PIXELPIPE_ORIGINALS_BUCKET: ORIGINALS,
    PIXELPIPE_VARIANTS_BUCKET: VARIANTS,
    PIXELPIPE_JWKS_URL: idp.jwksUrl,
    PIXELPIPE_JWT_ISSUER: idp.issuer,
    PIXELPIPE_JWT_AUDIENCE: idp.audience,
    PIXELPIPE_CORS_ORIGINS: APP,
    ...env,
  });
}

/** A handler on `platform` with real auth and a real signer (or `signer`), logging into `lines`. */
function build(platform: Platform, opts: { env?: Record<string, string>; signer?: UrlSigner; lines?: string[] } = {}): Handler {
  const cfg = config(opts.env);
  const logger = opts.lines ? createLogger({ level: 'debug', sink: (l) => opts.lines!.push(l) }) : silentLogger;
  const authenticator = cfg.auth.mode === 'jwt' ? new JwtAuthenticator(cfg.auth) : new AnonymousAuthenticator();
  return platform.handler({ config: cfg, authenticator, signer: opts.signer ?? platform.signer(), ids: uuidIds, clock: systemClock, logger });
}

const post = (body: unknown, headers: Record<string, string> = {}): Req => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', ...headers },
  body: typeof body === 'string' ? body : JSON.stringify(body),
});
const bearer = async (sub = 'alice') => ({ authorization: `Bearer ${await idp.token({ sub })}` });

interface Ticket {
  id: string;
  key: string;
  upload: UploadTarget;
  expiresAt: string;
}
async function ticket(h: Handler, body: unknown, headers: Record<string, string>): Promise<Ticket> {
  const res = await h(post(body, headers));
  expect(res.status).toBe(201);
  return JSON.parse(res.body) as Ticket;
}

/** The request a browser makes with a PUT target, as the GCS server sees it. */
function asSent(url: string, headers: Record<string, string>, method = 'PUT'): V4Request {
  const u = new URL(url);
  return { method, url: u.pathname + u.search, headers: { ...headers, host: u.host } };
}
const gcsVerify = (req: V4Request, now = new Date()) => verifyV4(req, { keys: { [GCS_EMAIL]: gcsKeys.publicKey }, now });
const s3Verify = (fields: Record<string, string>, fileSize: number, now = new Date()) =>
  verifyPostPolicy({ bucket: ORIGINALS, fields, fileSize }, { secretAccessKey: AWS_SECRET, now });

/** The display name the target pins, decoded. */
function pinnedFilename(t: UploadTarget): string | undefined {
  const raw = t.method === 'PUT' ? t.headers['x-goog-meta-pixelpipe-filename'] : t.fields['x-amz-meta-pixelpipe-filename'];
  return raw === undefined ? undefined : decodeURIComponent(raw);
}

// ────────────────────────────────────────────────────────────────────────────────────────────────
describe.each(platforms)('$name', (platform) => {
  describe('the attacks of issue 11 item 9 (a local JWKS, the real signer)', () => {
    const good = { contentType: 'image/jpeg', size: 1000, filename: 'a.jpg' };
    test.each([
      ['gzip', gzipSync(Buffer.alloc(1024 * 1024))],
      ['br', brotliCompressSync(Buffer.alloc(1024 * 1024))],
      ['deflate', deflateSync(Buffer.alloc(1024 * 1024))],
    ])('a %s-encoded body gets 415 content_encoding_not_allowed, with or without a token', async (encoding, bomb) => {
      const h = build(platform);
      for (const auth of [{}, await bearer()]) {
        const res = await h({ method: 'POST', headers: { 'content-type': 'application/json', 'content-encoding': encoding, ...auth }, body: bomb });
        expect({ status: res.status, body: JSON.parse(res.body) as unknown }).toEqual({
          status: 415,
          body: { error: { code: 'content_encoding_not_allowed', message: 'send the body without Content-Encoding' } },
        });
      }
    });

    test('filenames that would split a surrogate pair or hold a lone surrogate are signed, never a 500', async () => {
      const h = build(platform);
      const auth = await bearer();
      for (const [filename, display] of [
        [`${'a'.repeat(199)}😀`, `${'a'.repeat(199)}😀`],
        [`${'a'.repeat(200)}😀`, 'a'.repeat(200)],
        ['x\ud800.jpg', 'x\ufffd.jpg'],
        ['\udc00', '\ufffd'],
      ]) {
        const t = await ticket(h, { ...good, filename }, auth);
        expect(pinnedFilename(t.upload)).toBe(display);
      }
    });

    test('subjects that are not well-formed Unicode are refused (401), never mapped onto the owner of a\ufffd', async () => {
      const h = build(platform);
      for (const sub of ['a\ud800', 'a\udc00']) {
        const res = await h(post(good, await bearer(sub)));
        expect({ sub, status: res.status, code: (JSON.parse(res.body) as { error: { code: string } }).error.code }).toEqual({
          sub,
          status: 401,
          code: 'unauthenticated',
        });
      }
      expect((await ticket(h, good, await bearer('a\ufffd'))).key).toMatch(/^originals\/u_[A-Za-z0-9]{32}\//);
    });

    test('only the upload path answers: POST /admin is a 404, / and /uploads sign', async () => {
      const h = build(platform);
      const auth = await bearer();
      for (const path of ['/admin', '/uploads/../admin', '/.env']) {
        const res = await h({ ...post(good, auth), path });
        expect({ path, status: res.status }).toEqual({ path, status: 404 });
      }
      for (const path of ['/', '/uploads']) expect((await h({ ...post(good, auth), path })).status).toBe(201);
    });

    test('a lower-case bearer scheme is accepted; a token valid for centuries is not', async () => {
      const h = build(platform);
      expect((await h(post(good, { authorization: `bearer ${await idp.token()}` }))).status).toBe(201);
      const centuries = await h(post(good, { authorization: `Bearer ${await idp.token({ expiresIn: '300y' })}` }));
      expect(centuries.status).toBe(401);
    });
  });

  describe('the key is chosen by the server: originals/<own owner>/<uuid>', () => {
    const hostile: Array<[string, string]> = [
      ['relative traversal', '../../etc/passwd'],
      ['absolute path', '/etc/passwd'],
      ['Windows path', 'C:\\Windows\\System32\\drivers\\etc\\hosts'],
      ['UNC path', '\\\\server\\share\\photo.jpg'],
      ['RTL override', 'invoice\u202Egpj.exe'],
      ['isolates', '\u2066\u2067photo\u2069.jpg'],
      ['full-width solidus', '..／..／etc／passwd'],
      ['NFKC dot-dot', '．．/．．/secret.jpg'],
      ['NFKC dot-dot alone', '．．'],
      ['NUL', 'photo.jpg\u0000.exe'],
      ['CRLF header injection', 'a.jpg\r\nx-goog-meta-owner: bob\r\nx-amz-meta-owner: bob'],
      ['percent-encoded traversal', '%2e%2e%2f%2e%2e%2fetc%2fpasswd'],
      ['another owner key', 'originals/bob/00000000-0000-4000-8000-000000000001'],
      ['dots and spaces', ' .. '],
      ['very long', `${'a'.repeat(1000)}.jpg`],
    ];

    test('hostile filenames never reach the key, the signed path or a header line', async () => {
      const h = build(platform);
      const auth = await bearer('alice');
      const ids = new Set<string>();
      for (const [what, filename] of hostile) {
        const t = await ticket(h, { contentType: 'image/jpeg', size: 1000, filename }, auth);
        expect({ what, key: t.key }).toEqual({ what, key: expect.stringMatching(new RegExp(`^originals/alice/${UUID.source}$`)) as unknown });
        expect(t.key).toBe(`originals/alice/${t.id}`);
        ids.add(t.id);
        if (t.upload.method === 'PUT') {
          expect(new URL(t.upload.url).pathname).toBe(`/${ORIGINALS}/${t.key}`);
          for (const v of Object.values(t.upload.headers)) expect(v).toMatch(/^[\x20-\x7e]*$/);
          expect(Object.keys(t.upload.headers).sort()).toEqual(
            [
              'content-type',
              'x-goog-content-length-range',
              'x-goog-meta-pixelpipe-trace',
              'x-goog-meta-pixelpipe-profile',
              ...(pinnedFilename(t.upload) !== undefined ? ['x-goog-meta-pixelpipe-filename'] : []),
            ].sort(),
          );
        } else {
          expect(t.upload.fields.key).toBe(t.key);
          for (const v of Object.values(t.upload.fields)) expect(v).not.toMatch(/[\r\n\0]/);
          expect(
            Object.keys(t.upload.fields)
              .filter((k) => k.startsWith('x-amz-meta-'))
              .sort(),
          ).toEqual(
            [
              'x-amz-meta-pixelpipe-trace',
              'x-amz-meta-pixelpipe-profile',
              ...(pinnedFilename(t.upload) !== undefined ? ['x-amz-meta-pixelpipe-filename'] : []),
            ].sort(),
          );
        }
        // The display name kept for people: one segment, stable under NFKC, no controls or bidi tricks.
        const name = pinnedFilename(t.upload);
        if (name !== undefined) {
          expect({ what, name }).toEqual({ what, name: expect.not.stringMatching(/[\\/\p{Cc}\u202a-\u202e\u2066-\u2069]/u) as unknown });
          expect(name.normalize('NFKC')).toBe(name);
          expect(['.', '..']).not.toContain(name);
        }
      }
      expect(ids.size).toBe(hostile.length);
    });
  });

  describe("one user cannot reach another user's objects", () => {
    test('two subjects get disjoint prefixes; lookalike subjects are hashed apart', async () => {
      const h = build(platform);
      const a = await ticket(h, { contentType: 'image/png', size: 10 }, await bearer('alice'));
      const b = await ticket(h, { contentType: 'image/png', size: 10 }, await bearer('bob'));
      expect(a.key.startsWith('originals/alice/')).toBe(true);
      expect(b.key.startsWith('originals/bob/')).toBe(true);
      // Subjects that try to alias a readable owner, or an already hashed one, land in a prefix of their own.
      const hashedBob = ownerSegment('bob/x');
      const owners = new Set<string>();
      for (const sub of ['bob/../alice', '../alice', 'alice/', 'alice\u0000', hashedBob]) {
        const t = await ticket(h, { contentType: 'image/png', size: 10 }, await bearer(sub));
        const owner = t.key.split('/')[1];
        expect({ sub, owner }).toEqual({ sub, owner: expect.stringMatching(/^u_[A-Za-z0-9]{32}$/) as unknown });
        owners.add(owner);
      }
      expect(owners.size).toBe(5);
      expect(owners.has(hashedBob)).toBe(false);
    });

    test('owner, key, bucket or metadata in the body are refused (400) before anything is signed', async () => {
      const signed: SignUploadRequest[] = [];
      const real = platform.signer();
      const spy: UrlSigner = { signUpload: (r) => (signed.push(r), real.signUpload(r)), signRead: (b, k, s) => real.signRead(b, k, s) };
      const h = build(platform, { signer: spy });
      const auth = await bearer('bob');
      for (const forged of [
        { owner: 'alice' },
        { sub: 'alice' },
        { key: 'originals/alice/x' },
        { bucket: 'other' },
        { metadata: { owner: 'alice' } },
        { expiresInSeconds: 86400 },
        { maxBytes: 1e12 },
      ]) {
        const res = await h(post({ contentType: 'image/jpeg', size: 10, ...forged }, auth));
        expect({ forged, status: res.status, code: (JSON.parse(res.body) as { error: { code: string } }).error.code }).toEqual({
          forged,
          status: 400,
          code: 'invalid_request',
        });
      }
      expect(signed).toEqual([]);
    });

    test("bob's signed target cannot be pointed at alice's key", async () => {
      const h = build(platform);
      const alice = await ticket(h, { contentType: 'image/jpeg', size: 100 }, await bearer('alice'));
      const bob = await ticket(h, { contentType: 'image/jpeg', size: 100 }, await bearer('bob'));
      if (bob.upload.method === 'PUT') {
        expect(gcsVerify(asSent(bob.upload.url, bob.upload.headers)).ok).toBe(true);
        const moved = new URL(bob.upload.url);
        moved.pathname = `/${ORIGINALS}/${alice.key}`;
        expect(gcsVerify(asSent(moved.href, bob.upload.headers))).toMatchObject({ ok: false, code: 'SignatureDoesNotMatch' });
      } else {
        expect(s3Verify(bob.upload.fields, 100).ok).toBe(true);
        expect(s3Verify({ ...bob.upload.fields, key: alice.key }, 100)).toMatchObject({ ok: false, reason: expect.stringContaining('key') as unknown });
        const widened = editPolicy(bob.upload.fields, (doc) => {
          doc.conditions = doc.conditions.map((c) => (Array.isArray(c) && c[1] === '$key' ? ['starts-with', '$key', 'originals/'] : c));
        });
        expect(s3Verify({ ...widened, key: alice.key }, 100)).toEqual({ ok: false, reason: 'SignatureDoesNotMatch' });
      }
    });
  });

  describe('signed targets expire within the configured minutes and cannot be widened', () => {
    test('the target lives exactly PIXELPIPE_UPLOAD_EXPIRY_SECONDS (≤ 900) and is refused after that', async () => {
      const h = build(platform, { env: { PIXELPIPE_UPLOAD_EXPIRY_SECONDS: '900' } });
      const before = Date.now();
      const t = await ticket(h, { contentType: 'image/jpeg', size: 2048 }, await bearer());
      expect(Date.parse(t.expiresAt) - before).toBeLessThanOrEqual(900_000 + 1000);
      if (t.upload.method === 'PUT') {
        const ok = gcsVerify(asSent(t.upload.url, t.upload.headers));
        expect(ok).toMatchObject({ ok: true, expiresInSeconds: 900 });
        if (!ok.ok) return;
        expect(gcsVerify(asSent(t.upload.url, t.upload.headers), new Date(ok.signedAt.getTime() + 899_000)).ok).toBe(true);
        expect(gcsVerify(asSent(t.upload.url, t.upload.headers), new Date(ok.signedAt.getTime() + 901_000))).toMatchObject({ ok: false, code: 'ExpiredToken' });
      } else {
        const ok = s3Verify(t.upload.fields, 2048);
        expect(ok.ok).toBe(true);
        if (!ok.ok) return;
        expect(ok.expiresAt.getTime() - before).toBeLessThanOrEqual(900_000 + 1000);
        expect(ok.expiresAt.getTime() - ok.signedAt.getTime()).toBeLessThanOrEqual(901_000);
        expect(s3Verify(t.upload.fields, 2048, new Date(ok.expiresAt.getTime() + 1000))).toEqual({ ok: false, reason: 'policy expired' });
      }
    });

    test('changing content type, size range, key, metadata or expiry invalidates the target', async () => {
      const h = build(platform);
      const t = await ticket(h, { contentType: 'image/png', size: 5000, filename: 'cat.png' }, await bearer());
      if (t.upload.method === 'PUT') {
        const { url, headers } = t.upload;
        expect(gcsVerify(asSent(url, headers)).ok).toBe(true);
        const withQuery = (name: string, value: string) => {
          const u = new URL(url);
          u.searchParams.set(name, value);
          return u.href;
        };
        const { 'x-goog-content-length-range': _range, ...noRange } = headers;
        const tampered: Array<[string, V4Request]> = [
          ['content type', asSent(url, { ...headers, 'content-type': 'text/html' })],
          ['size range widened', asSent(url, { ...headers, 'x-goog-content-length-range': '0,5000000000' })],
          ['size range dropped', asSent(url, noRange)],
          ['key', asSent(url.replace(t.id, '00000000-0000-4000-8000-000000000000'), headers)],
          ['bucket', asSent(url.replace(`/${ORIGINALS}/`, `/${VARIANTS}/`), headers)],
          ['metadata', asSent(url, { ...headers, 'x-goog-meta-pixelpipe-filename': 'other.png' })],
          ['expiry extended', asSent(withQuery('X-Goog-Expires', '604800'), headers)],
          ['start date moved', asSent(withQuery('X-Goog-Date', '20990101T000000Z'), headers)],
          ['method', asSent(url, headers, 'DELETE')],
        ];
        for (const [what, req] of tampered) expect({ what, ok: gcsVerify(req).ok }).toEqual({ what, ok: false });
      } else {
        const { fields } = t.upload;
        expect(s3Verify(fields, 5000).ok).toBe(true);
        expect(s3Verify(fields, 1).ok).toBe(true);
        const tampered: Array<[string, Record<string, string>, number]> = [
          ['content type', { ...fields, 'Content-Type': 'text/html' }, 5000],
          ['too large', fields, 5001],
          ['empty', fields, 0],
          ['key', { ...fields, key: `originals/alice/${'0'.repeat(8)}-0000-4000-8000-000000000000` }, 5000],
          ['metadata', { ...fields, 'x-amz-meta-pixelpipe-filename': 'other.png' }, 5000],
          ['extra metadata', { ...fields, 'x-amz-meta-owner': 'bob' }, 5000],
          ['acl', { ...fields, acl: 'public-read' }, 5000],
          [
            'size range widened in the policy',
            editPolicy(
              fields,
              (d) =>
                void (d.conditions = d.conditions.map((c) => (Array.isArray(c) && c[0] === 'content-length-range' ? ['content-length-range', 0, 5e9] : c))),
            ),
            5000,
          ],
          ['expiry extended in the policy', editPolicy(fields, (d) => void (d.expiration = '2099-01-01T00:00:00.000Z')), 5000],
          [
            'type condition relaxed in the policy',
            editPolicy(
              fields,
              (d) => void (d.conditions = d.conditions.map((c) => (Array.isArray(c) && c[1] === '$Content-Type' ? ['starts-with', '$Content-Type', ''] : c))),
            ),
            5000,
          ],
        ];
        for (const [what, f, size] of tampered) expect({ what, ok: s3Verify(f, size).ok }).toEqual({ what, ok: false });
      }
    });

    test('the pinned profile cannot be switched, dropped or loosened by the holder of the target', async () => {
      const profiles = JSON.stringify({ avatar: { variants: [{ name: 'square', width: 64, height: 64, fit: 'cover' }], maxInputBytes: 100_000 } });
      const h = build(platform, { env: { PIXELPIPE_PROFILES: profiles } });
      const t = await ticket(h, { contentType: 'image/png', size: 5000, profile: 'avatar' }, await bearer());
      if (t.upload.method === 'PUT') {
        const { url, headers } = t.upload;
        expect(headers['x-goog-meta-pixelpipe-profile']).toBe('avatar');
        const ok = gcsVerify(asSent(url, headers));
        expect(ok).toMatchObject({ ok: true });
        expect(ok.ok && ok.signedHeaders).toContain('x-goog-meta-pixelpipe-profile');
        const { 'x-goog-meta-pixelpipe-profile': _profile, ...noProfile } = headers;
        const tampered: Array<[string, V4Request]> = [
          ['switched', asSent(url, { ...headers, 'x-goog-meta-pixelpipe-profile': 'default' })],
          ['dropped', asSent(url, noProfile)],
          ['upper-cased', asSent(url, { ...headers, 'x-goog-meta-pixelpipe-profile': 'AVATAR' })],
        ];
        for (const [what, req] of tampered) {
          const r = gcsVerify(req);
          expect({ what, ok: r.ok, code: r.ok ? undefined : r.code }).toEqual({ what, ok: false, code: 'SignatureDoesNotMatch' });
        }
      } else {
        const { fields } = t.upload;
        expect(fields['x-amz-meta-pixelpipe-profile']).toBe('avatar');
        expect(s3Verify(fields, 5000).ok).toBe(true);
        const { 'x-amz-meta-pixelpipe-profile': _profile, ...noProfile } = fields;
        const tampered: Array<[string, Record<string, string>]> = [
          ['switched', { ...fields, 'x-amz-meta-pixelpipe-profile': 'default' }],
          ['dropped', noProfile],
          [
            'condition relaxed in the policy',
            editPolicy(fields, (d) => {
              const before = d.conditions.length;
              d.conditions = d.conditions.filter((c) => Array.isArray(c) || !('x-amz-meta-pixelpipe-profile' in c));
              // The policy held exactly one exact-match condition on the profile; it becomes a prefix match.
              expect(before - d.conditions.length).toBe(1);
              d.conditions.push(['starts-with', '$x-amz-meta-pixelpipe-profile', '']);
            }),
          ],
        ];
        for (const [what, f] of tampered) expect({ what, ok: s3Verify(f, 5000).ok }).toEqual({ what, ok: false });
      }
    });

    test('the signer itself refuses lifetimes over 15 minutes', async () => {
      const r: SignUploadRequest = {
        bucket: ORIGINALS,
        key: 'originals/alice/x',
        contentType: 'image/jpeg',
        minBytes: 1,
        maxBytes: 10,
        expiresInSeconds: 901,
        metadata: {},
      };
      await expect(platform.signer().signUpload(r)).rejects.toThrow(RangeError);
      await expect(platform.signer().signUpload({ ...r, expiresInSeconds: 7 * 24 * 3600 })).rejects.toThrow(RangeError);
      await expect(platform.signer().signUpload({ ...r, expiresInSeconds: 900 })).resolves.toBeDefined();
    });
  });

  describe('errors reveal no internals', () => {
    // Stack frames, file paths, bucket names, SDK / error class names, provider hosts, errno codes.
    const LEAK = new RegExp(
      [
        String.raw`\bat \S+ \(`,
        String.raw`\.(ts|js|cjs|mjs)\b`,
        '/work/',
        'node_modules',
        ORIGINALS,
        VARIANTS,
        'pixelpipe-originals',
        'S3Client|Storage\\b|Gaxios|SigningError|CredentialsProvider|TransientError|PixelpipeError|ClientError|ZodError|TypeError|RangeError|JWS|JWK|JOSE|jose',
        'googleapis|amazonaws|iamcredentials',
        'ECONN|ERR_',
        'Error:',
      ].join('|'),
    );

    /** Signers failing the way SDKs do, messages full of internals. */
    const failing = (err: () => Error): UrlSigner => ({
      signUpload: () => Promise.reject(err()),
      signRead: () => Promise.reject(err()),
    });

    test('every 4xx/5xx answer is a small JSON error without stack, path, bucket or class names', async () => {
      const expired = `Bearer ${await idp.token({ expiresIn: Math.floor(Date.now() / 1000) - 300 })}`;
      const good = { contentType: 'image/jpeg', size: 1000 };
      const auth = await bearer();
      const internals = `at Object.sign (/work/main/node_modules/@google-cloud/storage/build/cjs/src/signer.js:120:19) bucket ${ORIGINALS}`;
      // gcloud user credentials without PIXELPIPE_SIGNER_SERVICE_ACCOUNT: the real signer refuses, no network involved.
      const userCredsGcs = new GcsUrlSigner(credentialsFromJson({ type: 'authorized_user', client_id: 'c', client_secret: 's', refresh_token: 'r' }, 'adc'), {
        policy: defaultPolicy('user-creds', { attempts: 1 }),
      });
      // An SDK client whose credential provider fails (the local stack and tools sign through one).
      const noCredsS3 = S3UrlSigner.fromClient(
        new S3Client({
          region: 'eu-west-1',
          credentials: () =>
            Promise.reject(
              Object.assign(new Error('Could not load credentials from any providers (/home/sbx_user1051/.aws/credentials)'), {
                name: 'CredentialsProviderError',
              }),
            ),
        }),
      );
      const cases: Array<{ what: string; status: number; code: string; req: Req; signer?: UrlSigner; env?: Record<string, string> }> = [
        { what: 'invalid JSON', status: 400, code: 'invalid_json', req: post('{"contentType":', auth) },
        { what: 'empty body', status: 400, code: 'invalid_json', req: post('', auth) },
        { what: 'unknown field', status: 400, code: 'invalid_request', req: post({ ...good, path: '../x' }, auth) },
        { what: 'wrong types', status: 400, code: 'invalid_request', req: post({ contentType: ['image/jpeg'], size: '1' }, auth) },
        { what: 'no token', status: 401, code: 'unauthenticated', req: post(good) },
        { what: 'garbage token', status: 401, code: 'unauthenticated', req: post(good, { authorization: 'Bearer a.b.c' }) },
        { what: 'expired token', status: 401, code: 'unauthenticated', req: post(good, { authorization: expired }) },
        { what: 'foreign origin', status: 403, code: 'origin_not_allowed', req: post(good, { ...auth, origin: 'https://evil.example.com' }) },
        { what: 'GET', status: 405, code: 'method_not_allowed', req: { method: 'GET', headers: auth } },
        { what: 'huge body', status: 413, code: 'payload_too_large', req: post('x'.repeat(20_000), auth) },
        { what: 'declared size too large', status: 413, code: 'too_large', req: post({ ...good, size: 1e12 }, auth) },
        { what: 'type not allowed', status: 415, code: 'content_type_not_allowed', req: post({ ...good, contentType: 'text/html' }, auth) },
        {
          what: 'identity provider down',
          status: 503,
          code: 'auth_unavailable',
          req: post(good, auth),
          env: { PIXELPIPE_JWKS_URL: 'http://127.0.0.1:9/.well-known/jwks.json' },
        },
        {
          what: 'signer down (transient)',
          status: 503,
          code: 'storage_unavailable',
          req: post(good, auth),
          signer: failing(
            () =>
              new TransientError(
                'storage_unavailable',
                `signing failed: request to https://iamcredentials.googleapis.com failed: connect ECONNREFUSED ${internals}`,
              ),
          ),
        },
        {
          what: 'signer refused (permanent)',
          status: 500,
          code: 'internal',
          req: post(good, auth),
          signer: failing(
            () =>
              new PixelpipeError('internal', `signing failed: SigningError: Permission 'iam.serviceAccounts.signBlob' denied ${internals}`, {
                retryable: false,
              }),
          ),
        },
        {
          what: 'unexpected exception',
          status: 500,
          code: 'internal',
          req: post(good, auth),
          signer: failing(() => new TypeError(`Cannot read properties of undefined (reading 'sign') ${internals}`)),
        },
        platform.cloud === 'gcp'
          ? { what: 'real signer failure: credentials that cannot sign', status: 500, code: 'internal', req: post(good, auth), signer: userCredsGcs }
          : { what: 'real SDK failure: no credentials', status: 503, code: 'internal', req: post(good, auth), signer: noCredsS3 },
      ];
      for (const c of cases) {
        const res = await build(platform, { signer: c.signer, env: c.env })(c.req);
        const parsed = JSON.parse(res.body) as { error: { code: string; message: string } };
        expect({ what: c.what, status: res.status, code: parsed.error.code }).toEqual({ what: c.what, status: c.status, code: c.code });
        expect(Object.keys(parsed)).toEqual(['error']);
        expect(Object.keys(parsed.error).sort()).toEqual(['code', 'message']);
        expect({ what: c.what, body: res.body }).toEqual({ what: c.what, body: expect.not.stringMatching(LEAK) as unknown });
        expect({ what: c.what, headers: JSON.stringify(res.headers) }).toEqual({ what: c.what, headers: expect.not.stringMatching(LEAK) as unknown });
        expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
        expect(res.headers['cache-control']).toBe('no-store');
      }
    });

    if (platform.cloud === 'gcp') {
      test('an unusable signing key fails the cold start with a ConfigError naming where it came from, not a request', () => {
        const badKey = '-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n';
        let err: unknown;
        try {
          credentialsFromJson({ type: 'service_account', client_email: GCS_EMAIL, private_key: badKey }, 'GOOGLE_APPLICATION_CREDENTIALS');
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(ConfigError);
        expect(err).toMatchObject({
          variable: 'GOOGLE_APPLICATION_CREDENTIALS',
          retryable: false,
          message: expect.stringContaining('private_key does not parse') as unknown,
        });
        expect((err as Error).message).not.toContain('not a key');
      });
    }

    if (platform.cloud === 'aws') {
      test('a malformed API Gateway event gets a generic 400', async () => {
        const h = createAwsUploadHandler({ ...({} as UploadHttpDeps), logger: silentLogger });
        const res = await h({ Records: [{ s3: { bucket: { name: ORIGINALS } } }] });
        expect(res.statusCode).toBe(400);
        expect(res.body).not.toMatch(LEAK);
        expect(JSON.parse(res.body!)).toEqual({ error: { code: 'invalid_request', message: 'unsupported event' } });
      });
    }
  });

  describe('CORS origins come from configuration only', () => {
    test('with no origins configured (the default), no browser origin is allowed and nothing says "*"', async () => {
      const h = build(platform, { env: { PIXELPIPE_CORS_ORIGINS: '' } });
      const auth = await bearer();
      const pre = await h({ method: 'OPTIONS', headers: { origin: APP, 'access-control-request-method': 'POST' } });
      expect(pre.status).toBe(403);
      expect(pre.headers['access-control-allow-origin']).toBeUndefined();
      expect((await h(post({ contentType: 'image/jpeg', size: 1 }, { ...auth, origin: APP }))).status).toBe(403);
      const server = await h(post({ contentType: 'image/jpeg', size: 1 }, auth));
      expect(server.status).toBe(201);
      expect(server.headers['access-control-allow-origin']).toBeUndefined();
    });

    test('a configured origin is echoed exactly (with Vary: Origin); lookalikes are refused', async () => {
      const h = build(platform);
      const auth = await bearer();
      const pre = await h({ method: 'OPTIONS', headers: { origin: APP, 'access-control-request-method': 'POST' } });
      expect(pre.status).toBe(204);
      expect(pre.headers).toMatchObject({ 'access-control-allow-origin': APP, vary: 'Origin', 'access-control-allow-methods': 'POST, OPTIONS' });
      const ok = await h(post({ contentType: 'image/jpeg', size: 1 }, { ...auth, origin: APP }));
      expect(ok.status).toBe(201);
      expect(ok.headers['access-control-allow-origin']).toBe(APP);
      for (const origin of [
        'null',
        'https://app.example.com.evil.test',
        'http://app.example.com',
        'https://app.example.com:8443',
        'https://evil.example.com',
        'HTTPS://APP.EXAMPLE.COM ',
      ]) {
        for (const req of [{ method: 'OPTIONS', headers: { origin } }, post({ contentType: 'image/jpeg', size: 1 }, { ...auth, origin })]) {
          const res = await h(req);
          expect({ origin, method: req.method, status: res.status }).toEqual({ origin, method: req.method, status: 403 });
          expect(res.headers['access-control-allow-origin']).toBeUndefined();
        }
      }
      for (const res of [pre, ok]) expect(Object.values(res.headers)).not.toContain('*');
    });
  });
});

// ────────────────────────────────────────────────────────────────────────────────────────────────
describe('configuration refuses what would widen the attack surface', () => {
  const base = { PIXELPIPE_AUTH_MODE: 'anonymous' };
  const refuses = (env: Record<string, string>, variable: string) => {
    let err: unknown;
    try {
      loadConfig({ ...base, ...env });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toContain(variable);
  };

  test('upload lifetimes above 15 minutes (and below 30 s) are refused at cold start', () => {
    for (const v of ['901', '3600', '604800', '29', 'ten']) refuses({ PIXELPIPE_UPLOAD_EXPIRY_SECONDS: v }, 'PIXELPIPE_UPLOAD_EXPIRY_SECONDS');
    expect(loadConfig({ ...base, PIXELPIPE_UPLOAD_EXPIRY_SECONDS: '900' }).upload.expirySeconds).toBe(900);
    expect(loadConfig(base).upload.expirySeconds).toBeLessThanOrEqual(900);
  });

  test('CORS origins: none by default, never a wildcard, never a path', () => {
    expect(loadConfig(base).upload.corsOrigins).toEqual([]);
    for (const v of ['*', 'https://*.example.com', 'https://app.example.com/path', 'app.example.com', 'https://a.example.com,*'])
      refuses({ PIXELPIPE_CORS_ORIGINS: v }, 'PIXELPIPE_CORS_ORIGINS');
  });

  test('authentication is JWT by default; anonymous only when asked for, and loudly', () => {
    let err: unknown;
    try {
      loadConfig({});
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/PIXELPIPE_JWKS_URL.*required when PIXELPIPE_AUTH_MODE=jwt/);
    const lines: string[] = [];
    const auth = createAuthenticator(loadConfig(base), createLogger({ sink: (l) => lines.push(l) }));
    expect(auth).toBeInstanceOf(AnonymousAuthenticator);
    expect(lines.map((l) => JSON.parse(l) as { level: string; message: string })).toEqual([
      expect.objectContaining({ level: 'warn', message: expect.stringContaining('AUTH DISABLED') as unknown }),
    ]);
  });
});

describe('logs carry no tokens and no personal data beyond the owner id', () => {
  test.each(platforms)('$name', async (platform) => {
    const lines: string[] = [];
    const h = build(platform, { lines });
    const token = await idp.token({ sub: 'carol' });
    const expired = await idp.token({ sub: 'carol', expiresIn: Math.floor(Date.now() / 1000) - 300 });
    const filename = 'Carol Smith passport scan.jpg';
    await h(post({ contentType: 'image/jpeg', size: 10, filename }, { authorization: `Bearer ${token}`, origin: APP }));
    await h(post({ contentType: 'image/jpeg', size: 10, filename }, { authorization: `Bearer ${expired}` }));
    await h(post({ contentType: 'image/jpeg', size: 10, filename }, { authorization: `Bearer ${token}`, origin: 'https://evil.example.com' }));
    await build(platform, {
      lines,
      signer: { signUpload: () => Promise.reject(new TransientError('storage_unavailable', 'down')), signRead: () => Promise.resolve('') },
    })(post({ contentType: 'image/jpeg', size: 10, filename }, { authorization: `Bearer ${token}` }));
    expect(lines.length).toBeGreaterThanOrEqual(4);
    const all = lines.join('\n');
    for (const secret of [token, expired, token.split('.')[2], expired.split('.')[1], 'Carol Smith', 'passport', 'Bearer']) expect(all).not.toContain(secret);
    const signedLine = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.message === 'upload signed')!;
    expect(signedLine).toMatchObject({ owner: 'carol', imageId: expect.stringMatching(UUID) as unknown });
  });
});

// ────────────────────────────────────────────────────────────────────────────────────────────────
describe('deployment templates: private buckets, configured CORS only', () => {
  const cfTags = [
    'Sub',
    'Ref',
    'GetAtt',
    'Split',
    'Join',
    'Select',
    'If',
    'Equals',
    'Not',
    'And',
    'Or',
    'Base64',
    'ImportValue',
    'FindInMap',
    'GetAZs',
    'Condition',
  ].flatMap((name) => [
    { tag: `!${name}`, resolve: (v: unknown) => ({ [name]: v }) },
    { tag: `!${name}`, collection: 'seq' as const, resolve: (v: { toJSON(): unknown }) => ({ [name]: v.toJSON() }) },
  ]);
  type Resource = { Type: string; Properties: Record<string, unknown> };
  const sls = YAML.parse(readFileSync(join(ROOT, 'serverless.yml'), 'utf8'), { customTags: cfTags }) as {
    params: Record<string, Record<string, string>>;
    provider: { httpApi?: Record<string, unknown> };
    resources: { Resources: Record<string, Resource> };
  };
  const resources = Object.entries(sls.resources.Resources);
  const buckets = resources.filter(([, r]) => r.Type === 'AWS::S3::Bucket');

  test('serverless.yml: every bucket blocks public access, disables ACLs, and no policy allows "*"', () => {
    expect(buckets.map(([name]) => name).sort()).toEqual(['OriginalsBucket', 'VariantsBucket']);
    for (const [name, b] of buckets) {
      expect({ name, pab: b.Properties.PublicAccessBlockConfiguration }).toEqual({
        name,
        pab: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
      });
      expect(b.Properties.OwnershipControls).toEqual({ Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] });
      expect(b.Properties.AccessControl).toBeUndefined();
      expect(b.Properties.WebsiteConfiguration).toBeUndefined();
    }
    const policies = resources.filter(([, r]) => r.Type === 'AWS::S3::BucketPolicy');
    for (const [, p] of policies) {
      for (const st of (p.Properties.PolicyDocument as { Statement: Array<{ Effect: string; Principal: unknown }> }).Statement) {
        const everyone = st.Principal === '*' || JSON.stringify(st.Principal).includes('"*"');
        if (everyone) expect(st.Effect).toBe('Deny');
      }
    }
  });

  test('serverless.yml: bucket CORS comes from the corsOrigins parameter, whose values are never "*"; the HTTP API adds no CORS of its own', () => {
    for (const [name, b] of buckets) {
      const rules = (b.Properties.CorsConfiguration as { CorsRules: Array<{ AllowedOrigins: unknown; AllowedMethods: string[] }> }).CorsRules;
      for (const rule of rules) expect({ name, origins: rule.AllowedOrigins }).toEqual({ name, origins: { Split: [',', '${param:corsOrigins}'] } });
    }
    for (const [stage, values] of Object.entries(sls.params)) {
      for (const origin of (values.corsOrigins ?? '').split(',').filter(Boolean)) {
        expect({ stage, origin }).toEqual({ stage, origin: expect.stringMatching(/^https?:\/\/[^/*\s]+$/) as unknown });
      }
    }
    expect(sls.provider.httpApi?.cors).toBeUndefined();
  });

  test('infra/gcp/cors.json: only the placeholder the deploy script fills with validated origins', () => {
    const cors = JSON.parse(readFileSync(join(ROOT, 'infra', 'gcp', 'cors.json'), 'utf8')) as Record<string, unknown>;
    for (const [bucket, rules] of Object.entries(cors)) {
      if (bucket.startsWith('$')) continue;
      for (const rule of rules as Array<{ origin: string[] }>) expect({ bucket, origin: rule.origin }).toEqual({ bucket, origin: ['__CORS_ORIGINS__'] });
    }
    const deploy = readFileSync(join(ROOT, 'scripts', 'deploy-gcp.sh'), 'utf8');
    expect(deploy).toMatch(/pp_json validate-origins "\$CORS_ORIGINS" \|\| pp_die/);
  });

  test('deploy-gcp.sh: buckets are created with uniform access and public access prevention, never bound to allUsers', () => {
    const deploy = readFileSync(join(ROOT, 'scripts', 'deploy-gcp.sh'), 'utf8').replace(/\\\n\s*/g, ' ');
    const creates = deploy.split('\n').filter((l) => /gcloud storage buckets create/.test(l));
    expect(creates.length).toBeGreaterThan(0);
    for (const line of creates) {
      expect(line).toContain('--uniform-bucket-level-access');
      expect(line).toContain('--public-access-prevention');
    }
    expect(deploy).toMatch(/allUsers \| allAuthenticatedUsers\) pp_die "refusing to bind/);
    const iam = readFileSync(join(ROOT, 'infra', 'gcp', 'iam.json'), 'utf8');
    expect((JSON.parse(iam) as { bindings: Array<{ member: string }> }).bindings.map((b) => b.member)).not.toEqual(
      expect.arrayContaining([expect.stringMatching(/allUsers|allAuthenticatedUsers/)]),
    );
  });
});

// ────────────────────────────────────────────────────────────────────────────────────────────────
describe('variant URLs: private by default, a configured public base, or short-lived signed reads', () => {
  const ID = 'fa017000-0000-4000-8000-0000000000bb';
  const processor: ImageProcessor = {
    render(): Promise<RenderResult> {
      return Promise.resolve({
        probe: { mimeType: 'image/jpeg', format: 'jpeg', width: 640, height: 480, pages: 1, hasAlpha: false, hasProfile: false },
        outputs: [
          { variant: 'thumb', format: 'webp', contentType: 'image/webp', extension: 'webp', width: 200, height: 200, body: Buffer.from('w') },
          { variant: 'small', format: 'jpeg', contentType: 'image/jpeg', extension: 'jpg', width: 480, height: 360, body: Buffer.from('j') },
        ],
        placeholder: null,
        metrics: { decodeMs: 1, encodeMs: {} },
      });
    },
  };

  async function processed(env: Record<string, string> = {}): Promise<{ store: MemoryObjectStore; cfg: PixelpipeConfig; manifest: Manifest }> {
    const cfg = config({ PIXELPIPE_AUTH_MODE: 'anonymous', ...env });
    const store = new MemoryObjectStore();
    const info = await store.put(cfg.buckets.originals, `originals/alice/${ID}`, Buffer.from('x'), { contentType: 'image/jpeg' });
    const out = await processImage({ store, processor, clock: new FixedClock(), config: cfg }, testInvocation(), {
      bucket: info.bucket,
      key: info.key,
      generation: info.generation,
    });
    if (out.status !== 'processed') throw new Error(`unexpected ${out.status}`);
    return { store, cfg, manifest: out.manifest };
  }

  test('without a public base URL, manifests carry no variant URLs (the bucket is private)', async () => {
    const { manifest } = await processed();
    expect(manifest.variants).toHaveLength(2);
    for (const v of manifest.variants) expect(v.url).toBeUndefined();
  });

  test('with PIXELPIPE_PUBLIC_BASE_URL (a CDN in front of the bucket), URLs are that base plus the key only', async () => {
    const { manifest } = await processed({ PIXELPIPE_PUBLIC_BASE_URL: 'https://cdn.example.com/img/' });
    for (const v of manifest.variants) expect(v.url).toBe(`https://cdn.example.com/img/${v.key}`);
  });

  test('the status use case signs reads for at most 15 minutes, for the owner only (GCS and S3)', async () => {
    const { store, cfg } = await processed();
    const now = new Date();
    const gcs = await getImageStatus({ store, config: cfg, signer: gcsSigner() }, testInvocation(), ID, 'alice');
    expect(gcs!.variants).toHaveLength(2);
    for (const v of gcs!.variants) {
      const u = new URL(v.url!);
      expect(u.pathname).toBe(`/${VARIANTS}/${v.key}`);
      expect(Number(u.searchParams.get('X-Goog-Expires'))).toBeLessThanOrEqual(900);
      const r = gcsVerify(asSent(v.url!, {}, 'GET'), now);
      expect(r.ok).toBe(true);
      if (r.ok) expect(gcsVerify(asSent(v.url!, {}, 'GET'), new Date(r.signedAt.getTime() + 901_000))).toMatchObject({ ok: false, code: 'ExpiredToken' });
      expect(gcsVerify(asSent(v.url!, {}, 'PUT'), now).ok).toBe(false);
    }
    const s3 = await getImageStatus({ store, config: cfg, signer: s3Signer() }, testInvocation(), ID, 'alice');
    for (const v of s3!.variants) {
      const u = new URL(v.url!);
      expect(u.host).toBe(`${VARIANTS}.s3.eu-west-1.amazonaws.com`);
      expect(Number(u.searchParams.get('X-Amz-Expires'))).toBeLessThanOrEqual(900);
      expect(u.searchParams.get('X-Amz-SignedHeaders')).toBe('host');
    }
    expect(await getImageStatus({ store, config: cfg, signer: gcsSigner() }, testInvocation(), ID, 'mallory')).toBeNull();
  });
});
