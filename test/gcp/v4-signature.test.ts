/**
 * Independent check of the GCS V4 signed URLs that GcsUrlSigner produces: a generated service account
 * key signing locally through google-auth-library (no network), and our own implementation of
 * Google's documented V4 algorithm (test/gcp/v4-verify.ts, which shares no code with the signer)
 * recomputing the canonical request and verifying the RSA signature. Keyless signing and signing as
 * another account go through the library to a local fake of the metadata server and IAM `signBlob`
 * (the credentials' `fetch` routes https://*.googleapis.com to the fake).
 */
import { generateKeyPairSync, sign as rsaSign } from 'node:crypto';
import { GcsUrlSigner } from '../../functions/gcp/gcs-url-signer';
import { applicationDefaultCredentials, credentialsFromJson, type GoogleCredentialsOptions } from '../../functions/gcp/google-auth';
import { ConfigError, PixelpipeError, TransientError } from '../../shared/errors';
import type { SignUploadRequest } from '../../shared/ports';
import { defaultPolicy } from '../../shared/resilience';
import { applyEnv } from './gcp-test-kit';
import { fakeServiceAccount, startGoogleFake, type GoogleFake } from '../support/google-fake';
import { canonicalRequestOf, verifyV4, type V4Request } from './v4-verify';

/** `expect.stringContaining`, typed for object matchers. */
const containing = (text: string): string => expect.stringContaining(text) as string;

const EMAIL = 'uploader@pixelpipe-test.iam.gserviceaccount.com';
const sa = fakeServiceAccount(EMAIL);
const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
const keys = { [EMAIL]: sa.publicKey };
const credentials = credentialsFromJson(sa.keyJson, 'test key');
const policy = (attempts = 1) => defaultPolicy('sign', { attempts, baseDelayMs: 1, maxDelayMs: 1 });
const signer = new GcsUrlSigner(credentials, { policy: policy() });

const request: SignUploadRequest = {
  bucket: 'pixelpipe-originals',
  key: 'originals/alice/0b6f1c2e-8c1d-4b8e-9a53-2f2c5f4b9d10',
  contentType: 'image/jpeg',
  minBytes: 1,
  maxBytes: 123_456,
  expiresInSeconds: 600,
  metadata: { 'pixelpipe-trace': '0123456789abcdef0123456789abcdef', 'pixelpipe-filename': encodeURIComponent('Fête à Zürich (1).jpg') },
};

/** The request a browser makes with the returned target. */
function asSent(url: string, headers: Record<string, string>, method = 'PUT'): V4Request {
  const u = new URL(url);
  return { method, url: u.pathname + u.search, headers: { ...headers, host: u.host } };
}

function withQuery(url: string, name: string, value: string): string {
  const u = new URL(url);
  u.searchParams.set(name, value);
  return u.href;
}

describe('GCS V4 signed upload URL (independent verification)', () => {
  test('the signature verifies and pins key, content type, size range and metadata', async () => {
    const target = await signer.signUpload(request);
    expect(target.method).toBe('PUT');
    if (target.method !== 'PUT') return;
    expect(target.headers).toEqual({
      'content-type': 'image/jpeg',
      'x-goog-content-length-range': '1,123456',
      'x-goog-meta-pixelpipe-trace': request.metadata['pixelpipe-trace'],
      'x-goog-meta-pixelpipe-filename': request.metadata['pixelpipe-filename'],
    });
    const r = verifyV4(asSent(target.url, target.headers), { keys, now: new Date() });
    expect(r).toMatchObject({ ok: true, email: EMAIL, bucket: request.bucket, object: request.key });
    if (!r.ok) return;
    // Exactly the headers the browser is told to send, plus host: nothing unsigned, nothing missing.
    expect(r.signedHeaders).toEqual(['host', ...Object.keys(target.headers)].sort());
    expect(r.signedHeaders).toEqual(
      expect.arrayContaining(['content-type', 'x-goog-content-length-range', 'x-goog-meta-pixelpipe-trace', 'x-goog-meta-pixelpipe-filename']),
    );
    expect(r.expiresInSeconds).toBeLessThanOrEqual(900);
    expect(r.expiresInSeconds).toBe(600);
    expect(r.headerValues['x-goog-content-length-range']).toBe('1,123456');
    // The canonical request has Google's documented shape.
    const lines = r.canonicalRequest.split('\n');
    expect(lines[0]).toBe('PUT');
    expect(lines[1]).toBe(`/${request.bucket}/${request.key}`);
    expect(lines[2]).toMatch(
      /^X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Credential=uploader%40pixelpipe-test\.iam\.gserviceaccount\.com%2F\d{8}%2Fauto%2Fstorage%2Fgoog4_request&X-Goog-Date=\d{8}T\d{6}Z&X-Goog-Expires=600&X-Goog-SignedHeaders=/,
    );
    expect(lines.at(-1)).toBe('UNSIGNED-PAYLOAD');
    expect(r.stringToSign.split('\n')[0]).toBe('GOOG4-RSA-SHA256');
  });

  test('tampering with the key, content type, range, metadata, expiry or method breaks the signature', async () => {
    const target = await signer.signUpload(request);
    if (target.method !== 'PUT') throw new Error('expected PUT');
    const now = new Date();
    const check = (req: V4Request) => verifyV4(req, { keys, now });
    const otherKey = target.url.replace(encodeURI(request.key), 'originals/mallory/0b6f1c2e-8c1d-4b8e-9a53-2f2c5f4b9d10');
    expect(otherKey).not.toBe(target.url);
    expect(check(asSent(otherKey, target.headers))).toMatchObject({ ok: false, code: 'SignatureDoesNotMatch' });
    expect(check(asSent(target.url, { ...target.headers, 'content-type': 'image/svg+xml' }))).toMatchObject({ ok: false, code: 'SignatureDoesNotMatch' });
    expect(check(asSent(target.url, { ...target.headers, 'x-goog-content-length-range': '1,999999999' }))).toMatchObject({
      ok: false,
      code: 'SignatureDoesNotMatch',
    });
    expect(check(asSent(target.url, { ...target.headers, 'x-goog-meta-pixelpipe-trace': 'f'.repeat(32) }))).toMatchObject({
      ok: false,
      code: 'SignatureDoesNotMatch',
    });
    expect(check(asSent(withQuery(target.url, 'X-Goog-Expires', '604800'), target.headers))).toMatchObject({ ok: false, code: 'SignatureDoesNotMatch' });
    expect(check(asSent(target.url, target.headers, 'GET'))).toMatchObject({ ok: false, code: 'SignatureDoesNotMatch' });
    const { 'x-goog-content-length-range': _dropped, ...withoutRange } = target.headers;
    expect(check(asSent(target.url, withoutRange))).toMatchObject({ ok: false, code: 'SignatureDoesNotMatch' });
    // Another service account's key does not verify it; an unknown signer is refused outright.
    expect(verifyV4(asSent(target.url, target.headers), { keys: { [EMAIL]: other.publicKey }, now })).toMatchObject({
      ok: false,
      code: 'SignatureDoesNotMatch',
    });
    expect(verifyV4(asSent(target.url, target.headers), { keys: {}, now })).toMatchObject({ ok: false, code: 'AccessDenied' });
  });

  test('the URL expires after expiresInSeconds', async () => {
    const target = await signer.signUpload({ ...request, expiresInSeconds: 60 });
    if (target.method !== 'PUT') throw new Error('expected PUT');
    const sent = asSent(target.url, target.headers);
    expect(verifyV4(sent, { keys, now: new Date(Date.now() + 30_000) }).ok).toBe(true);
    expect(verifyV4(sent, { keys, now: new Date(Date.now() + 62_000) })).toMatchObject({ ok: false, status: 400, code: 'ExpiredToken' });
  });

  test('expiry above 15 minutes, bad ranges and unsafe metadata are refused before signing', async () => {
    await expect(signer.signUpload({ ...request, expiresInSeconds: 901 })).rejects.toThrow(/expire/);
    await expect(signer.signUpload({ ...request, expiresInSeconds: 0 })).rejects.toThrow(/expire/);
    await expect(signer.signUpload({ ...request, minBytes: 10, maxBytes: 5 })).rejects.toThrow(/range/);
    await expect(signer.signUpload({ ...request, metadata: { name: 'line\r\nbreak' } })).rejects.toThrow(/ASCII/);
    await expect(signer.signUpload({ ...request, metadata: { 'Bad Key': 'x' } })).rejects.toThrow(/header/);
    await expect(signer.signUpload({ ...request, expiresInSeconds: 900 })).resolves.toMatchObject({ method: 'PUT' });
  });

  test('keys with spaces, plus signs and unicode are encoded the way GCS canonicalises them', async () => {
    const key = 'originals/we ird/a+b%2B c/фото 😀!*().jpg';
    const target = await signer.signUpload({ ...request, key });
    if (target.method !== 'PUT') throw new Error('expected PUT');
    const r = verifyV4(asSent(target.url, target.headers), { keys, now: new Date() });
    expect(r).toMatchObject({ ok: true, object: key });
  });

  test('signRead produces a GET URL that verifies and cannot be used to PUT', async () => {
    const url = await signer.signRead('pixelpipe-variants', 'variants/x/thumb.webp', 300);
    const sent = asSent(url, {}, 'GET');
    expect(verifyV4(sent, { keys, now: new Date() })).toMatchObject({ ok: true, signedHeaders: ['host'], expiresInSeconds: 300 });
    expect(verifyV4({ ...sent, method: 'PUT' }, { keys, now: new Date() })).toMatchObject({ ok: false });
  });

  test('canonicalRequestOf ignores X-Goog-Signature and sorts the query', () => {
    const c = canonicalRequestOf({ method: 'get', url: '/b/o?b=2&X-Goog-Signature=ff&a=1', headers: { host: 'h' } }, ['host']);
    expect(c).toBe(['GET', '/b/o', 'a=1&b=2', 'host:h\n', 'host', 'UNSIGNED-PAYLOAD'].join('\n'));
  });
});

describe('URL shape', () => {
  const fixed = new Date('2026-03-04T05:06:07.890Z');

  test('the clock sets X-Goog-Date and the credential scope; the URL is path-style on the default host', async () => {
    const s = new GcsUrlSigner(credentials, { policy: policy(), clock: { now: () => fixed } });
    const url = new URL(await s.signRead('pixelpipe-variants', 'variants/a b/thumb.webp', 60));
    expect(url.origin).toBe('https://storage.googleapis.com');
    expect(url.pathname).toBe('/pixelpipe-variants/variants/a%20b/thumb.webp');
    expect(url.searchParams.get('X-Goog-Date')).toBe('20260304T050607Z');
    expect(url.searchParams.get('X-Goog-Credential')).toBe(`${EMAIL}/20260304/auto/storage/goog4_request`);
    expect([...url.searchParams.keys()]).toEqual([
      'X-Goog-Algorithm',
      'X-Goog-Credential',
      'X-Goog-Date',
      'X-Goog-Expires',
      'X-Goog-SignedHeaders',
      'X-Goog-Signature',
    ]);
    expect(url.searchParams.get('X-Goog-Signature')).toMatch(/^[0-9a-f]{512}$/);
    expect(verifyV4(asSent(url.href, {}, 'GET'), { keys, now: new Date(fixed.getTime() + 59_000) }).ok).toBe(true);
  });

  test('a local host (an emulator) gets URLs for itself, its port part of the signed host header', async () => {
    const s = new GcsUrlSigner(credentials, { policy: policy(), host: 'http://127.0.0.1:4443/' });
    const target = await s.signUpload(request);
    if (target.method !== 'PUT') throw new Error('expected PUT');
    expect(target.url.startsWith(`http://127.0.0.1:4443/${request.bucket}/${request.key}?`)).toBe(true);
    const sent = asSent(target.url, target.headers);
    expect(sent.headers.host).toBe('127.0.0.1:4443');
    expect(verifyV4(sent, { keys, now: new Date() }).ok).toBe(true);
    expect(verifyV4({ ...sent, headers: { ...sent.headers, host: '127.0.0.1:4444' } }, { keys, now: new Date() })).toMatchObject({
      ok: false,
      code: 'SignatureDoesNotMatch',
    });
    // Without a scheme, https is assumed (as STORAGE_EMULATOR_HOST in Google's SDK).
    expect(new URL(await new GcsUrlSigner(credentials, { host: 'gcs.example.test' }).signRead('b', 'o', 60)).origin).toBe('https://gcs.example.test');
    for (const bad of ['http://127.0.0.1:4443/base', 'ftp://x', 'http://h?x=1', '::']) {
      expect(() => new GcsUrlSigner(credentials, { host: bad })).toThrow(/host/);
    }
  });

  test('an empty bucket or key, or a content type with a line break, is refused', async () => {
    await expect(signer.signRead('b', '', 60)).rejects.toThrow(RangeError);
    await expect(signer.signRead('', 'o', 60)).rejects.toThrow(RangeError);
    await expect(signer.signUpload({ ...request, contentType: 'image/jpeg\r\nx-goog-acl: public-read' })).rejects.toThrow(/ASCII/);
  });
});

const SIGNER = 'signer@pixelpipe-test.iam.gserviceaccount.com';
const RUNTIME = 'runtime@pixelpipe-test.iam.gserviceaccount.com';
const METADATA = '/computeMetadata/v1/instance/service-accounts/default';
const signBlobPath = (email: string) => `/iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/${encodeURIComponent(email)}:signBlob`;
const IAM_PATH = signBlobPath(SIGNER);

/**
 * A keyless runtime for the rest of the file: no key or ADC file, the metadata server is the fake
 * (its token and email), IAM signs with the signer account's key (held by Google, here by the fake).
 */
let google: GoogleFake;
let restoreEnv: () => void;
beforeAll(async () => {
  google = await startGoogleFake();
  restoreEnv = applyEnv({
    GOOGLE_APPLICATION_CREDENTIALS: '',
    CLOUDSDK_CONFIG: '/nonexistent',
    GCE_METADATA_HOST: google.host,
    GCE_METADATA_IP: '',
    METADATA_SERVER_DETECTION: 'assume-present',
    GOOGLE_CLOUD_QUOTA_PROJECT: '',
  });
});
afterAll(async () => {
  restoreEnv();
  await google.close();
});
beforeEach(() => {
  google.requests.splice(0);
  google.route(`GET ${METADATA}/token`, () => ({ json: { access_token: 'runtime-token', expires_in: 3599, token_type: 'Bearer' } }));
  google.route(`GET ${METADATA}/email`, () => ({ text: RUNTIME }));
  google.route(`POST ${IAM_PATH}`, (req) => {
    const { payload } = JSON.parse(req.body) as { payload: string };
    return { json: { keyId: 'k1', signedBlob: rsaSign('RSA-SHA256', Buffer.from(payload, 'base64'), other.privateKey).toString('base64') } };
  });
});

const via = (extra: GoogleCredentialsOptions = {}): GoogleCredentialsOptions => ({ fetch: google.fetch, projectId: 'pixelpipe-test', ...extra });
const runtime = (extra: GoogleCredentialsOptions = {}) => applicationDefaultCredentials(via(extra));

describe('signing as a dedicated service account (PIXELPIPE_SIGNER_SERVICE_ACCOUNT)', () => {
  test('the URL names that account and carries its IAM signBlob signature', async () => {
    const target = await new GcsUrlSigner(runtime(), { policy: policy(), signerEmail: SIGNER }).signUpload(request);
    if (target.method !== 'PUT') throw new Error('expected PUT');
    expect(new URL(target.url).searchParams.get('X-Goog-Credential')).toMatch(/^signer@pixelpipe-test\.iam\.gserviceaccount\.com\//);
    const r = verifyV4(asSent(target.url, target.headers), { keys: { [SIGNER]: other.publicKey }, now: new Date() });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    // The runtime's email is never asked; the token is fetched with the metadata header; IAM gets
    // the bearer token and, as payload, exactly the string to sign.
    expect(google.requests.map((q) => `${q.method} ${q.path}`)).toEqual([`GET ${METADATA}/token`, `POST ${IAM_PATH}`]);
    const [token, iam] = google.requests;
    expect(token.headers['metadata-flavor']).toBe('Google');
    expect(iam.headers.authorization).toBe('Bearer runtime-token');
    expect(iam.headers['content-type']).toMatch(/^application\/json/);
    expect(Buffer.from((JSON.parse(iam.body) as { payload: string }).payload, 'base64').toString('utf8')).toBe(r.stringToSign);
  });

  test('a key for another account also signs through IAM, with the token of its JWT grant', async () => {
    const runtimeSa = fakeServiceAccount(RUNTIME);
    google.route('POST /oauth2.googleapis.com/token', () => ({ json: { access_token: 'key-token', expires_in: 3600 } }));
    const s = new GcsUrlSigner(credentialsFromJson(runtimeSa.keyJson, 'runtime key', via()), { policy: policy(), signerEmail: SIGNER });
    const url = await s.signRead('pixelpipe-variants', 'variants/x.webp', 60);
    expect(verifyV4(asSent(url, {}, 'GET'), { keys: { [SIGNER]: other.publicKey }, now: new Date() }).ok).toBe(true);
    expect(google.requests.map((q) => q.path)).toEqual(['/oauth2.googleapis.com/token', IAM_PATH]);
    expect(google.requests[1].headers.authorization).toBe('Bearer key-token');
  });

  test('without it, a keyless runtime signs as itself (email from the metadata server, asked once)', async () => {
    google.route(`POST ${signBlobPath(RUNTIME)}`, (req) => ({
      json: {
        signedBlob: rsaSign('RSA-SHA256', Buffer.from((JSON.parse(req.body) as { payload: string }).payload, 'base64'), sa.privateKey).toString('base64'),
      },
    }));
    const s = new GcsUrlSigner(runtime(), { policy: policy() });
    for (let i = 0; i < 2; i++) {
      const url = await s.signRead('b', 'o', 60);
      expect(verifyV4(asSent(url, {}, 'GET'), { keys: { [RUNTIME]: sa.publicKey }, now: new Date() }).ok).toBe(true);
    }
    expect(google.requests.map((q) => q.path.split('/').at(-1))).toEqual([
      'email',
      'token',
      `${encodeURIComponent(RUNTIME)}:signBlob`,
      `${encodeURIComponent(RUNTIME)}:signBlob`,
    ]);
  });

  test('user credentials without a signer account fail permanently, naming the variable, before any request', async () => {
    const user = credentialsFromJson({ type: 'authorized_user', client_id: 'c', client_secret: 's', refresh_token: 'r' }, 'adc', via());
    const err = await new GcsUrlSigner(user, { policy: policy(3) }).signRead('b', 'o', 60).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect(err).toMatchObject({ retryable: false, variable: 'PIXELPIPE_SIGNER_SERVICE_ACCOUNT', message: containing('authorized_user') });
    expect(google.requests).toEqual([]);
  });
});

describe('signing failures: transient (retried) or permanent', () => {
  const signerWith = (attempts: number, timeoutMs?: number) =>
    new GcsUrlSigner(runtime(), {
      policy: defaultPolicy('sign', { attempts, baseDelayMs: 1, maxDelayMs: 1, ...(timeoutMs ? { timeoutMs } : {}) }),
      signerEmail: SIGNER,
    });
  const iamCalls = () => google.requests.filter((q) => q.path === IAM_PATH).length;

  test.each([429, 500, 503])('IAM HTTP %i → TransientError auth_unavailable, retried by the signer (the library does not retry)', async (status) => {
    google.route(`POST ${IAM_PATH}`, () => ({ status, json: { error: { code: status, message: 'try later', status: 'UNAVAILABLE' } } }));
    const err = await signerWith(3)
      .signRead('b', 'o', 60)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect(err).toMatchObject({ code: 'auth_unavailable', retryable: true });
    expect((err as Error).message).toContain(`HTTP ${status}`);
    expect(iamCalls()).toBe(3);
  });

  test.each([400, 403, 404])('IAM HTTP %i (e.g. signBlob permission denied) → permanent, not retried', async (status) => {
    google.route(`POST ${IAM_PATH}`, () => ({
      status,
      json: { error: { code: status, message: "Permission 'iam.serviceAccounts.signBlob' denied", status: 'PERMISSION_DENIED' } },
    }));
    const err = await signerWith(3)
      .signRead('b', 'o', 60)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PixelpipeError);
    expect(err).not.toBeInstanceOf(TransientError);
    expect(err).toMatchObject({ code: 'internal', retryable: false });
    expect((err as Error).message).toContain('iam.serviceAccounts.signBlob');
    expect((err as Error).message).not.toMatch(/X-Goog-Signature|payload/);
    expect(iamCalls()).toBe(1);
  });

  test('a token endpoint that refuses the grant → permanent', async () => {
    const runtimeSa = fakeServiceAccount(RUNTIME);
    google.route('POST /oauth2.googleapis.com/token', () => ({ status: 400, json: { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' } }));
    const s = new GcsUrlSigner(credentialsFromJson(runtimeSa.keyJson, 'key', via()), { policy: policy(3), signerEmail: SIGNER });
    await expect(s.signRead('b', 'o', 60)).rejects.toMatchObject({
      code: 'internal',
      retryable: false,
      message: containing('Invalid JWT Signature'),
    });
    expect(google.requests.map((q) => q.path)).toEqual(['/oauth2.googleapis.com/token']);
  });

  test("IAM slower than the signer's attempt timeout → transient; the request is cancelled and retried", async () => {
    google.route(`POST ${IAM_PATH}`, () => ({ delayMs: 5000, json: { signedBlob: 'AA==' } }));
    await expect(signerWith(2, 150).signRead('b', 'o', 60)).rejects.toMatchObject({ code: 'storage_timeout', retryable: true });
    const attempts = google.requests.filter((q) => q.path === IAM_PATH);
    expect(attempts).toHaveLength(2);
    // Each timed-out attempt was cancelled, not left running while the next one started.
    for (const a of attempts) await google.closedUnanswered(a, 3000);
  });

  test('IAM unreachable (connection refused) → transient', async () => {
    const gone = await startGoogleFake();
    await gone.close();
    // Metadata from the fake (GCE_METADATA_HOST), every https://*.googleapis.com request to a closed port.
    const s = new GcsUrlSigner(runtime({ fetch: gone.fetch }), { policy: policy(2), signerEmail: SIGNER });
    const err = await s.signRead('b', 'o', 60).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'auth_unavailable', retryable: true });
    expect((err as Error).message).toMatch(/ECONNREFUSED/);
  });

  test('no credentials at all (no key, no ADC file, not on Google Cloud) → permanent ConfigError, before any request', async () => {
    const restore = applyEnv({ METADATA_SERVER_DETECTION: 'none' });
    try {
      const err = await new GcsUrlSigner(runtime(), { policy: policy(3) }).signRead('b', 'o', 60).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect(err).toMatchObject({ code: 'invalid_config', retryable: false, message: containing('no usable Google credentials') });
      expect(google.requests).toEqual([]);
    } finally {
      restore();
    }
  });
});
