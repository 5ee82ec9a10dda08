/**
 * Independent check of the GCS V4 signed URLs that GcsUrlSigner produces: a test service account key,
 * the real SDK signing locally (no network), and our own implementation of Google's documented V4
 * algorithm (test/gcp/v4-verify.ts) recomputing the canonical request and verifying the RSA signature.
 */
import { generateKeyPairSync } from 'node:crypto';
import { Storage } from '@google-cloud/storage';
import { GcsUrlSigner } from '../../functions/gcp/gcs-url-signer';
import { createSigningStorage } from '../../functions/gcp/storage-client';
import type { SignUploadRequest } from '../../shared/ports';
import { defaultPolicy } from '../../shared/resilience';
import { canonicalRequestOf, verifyV4, type V4Request } from './v4-verify';

process.env.METADATA_SERVER_DETECTION = 'none';

const EMAIL = 'uploader@pixelpipe-test.iam.gserviceaccount.com';
const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
const keys = { [EMAIL]: publicKey };
const storage = new Storage({
  projectId: 'pixelpipe-test',
  credentials: { client_email: EMAIL, private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() },
});
const policy = () => defaultPolicy('sign', { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 });
const signer = new GcsUrlSigner(storage, { policy: policy() });

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
    expect(r.signedHeaders).toEqual(expect.arrayContaining(['content-type', 'x-goog-content-length-range', 'x-goog-meta-pixelpipe-trace', 'x-goog-meta-pixelpipe-filename']));
    expect(r.expiresInSeconds).toBeLessThanOrEqual(900);
    expect(r.expiresInSeconds).toBe(600);
    expect(r.headerValues['x-goog-content-length-range']).toBe('1,123456');
    // The canonical request has Google's documented shape.
    const lines = r.canonicalRequest.split('\n');
    expect(lines[0]).toBe('PUT');
    expect(lines[1]).toBe(`/${request.bucket}/${request.key}`);
    expect(lines[2]).toMatch(/^X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Credential=uploader%40pixelpipe-test\.iam\.gserviceaccount\.com%2F\d{8}%2Fauto%2Fstorage%2Fgoog4_request&X-Goog-Date=\d{8}T\d{6}Z&X-Goog-Expires=600&X-Goog-SignedHeaders=/);
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
    expect(check(asSent(target.url, { ...target.headers, 'x-goog-content-length-range': '1,999999999' }))).toMatchObject({ ok: false, code: 'SignatureDoesNotMatch' });
    expect(check(asSent(target.url, { ...target.headers, 'x-goog-meta-pixelpipe-trace': 'f'.repeat(32) }))).toMatchObject({ ok: false, code: 'SignatureDoesNotMatch' });
    expect(check(asSent(withQuery(target.url, 'X-Goog-Expires', '604800'), target.headers))).toMatchObject({ ok: false, code: 'SignatureDoesNotMatch' });
    expect(check(asSent(target.url, target.headers, 'GET'))).toMatchObject({ ok: false, code: 'SignatureDoesNotMatch' });
    const { 'x-goog-content-length-range': _dropped, ...withoutRange } = target.headers;
    expect(check(asSent(target.url, withoutRange))).toMatchObject({ ok: false, code: 'SignatureDoesNotMatch' });
    // Another service account's key does not verify it; an unknown signer is refused outright.
    expect(verifyV4(asSent(target.url, target.headers), { keys: { [EMAIL]: other.publicKey }, now })).toMatchObject({ ok: false, code: 'SignatureDoesNotMatch' });
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

describe('signing as a dedicated service account (PIXELPIPE_SIGNER_SERVICE_ACCOUNT)', () => {
  test('the URL names that account and carries its IAM signBlob signature', async () => {
    const SIGNER = 'signer@pixelpipe-test.iam.gserviceaccount.com';
    const s = createSigningStorage({ projectId: 'pixelpipe-test', signerServiceAccount: SIGNER });
    // Stand in for a keyless runtime: a client without a key, and IAM signBlob signing with the signer's key.
    const auth = s.authClient as unknown as {
      getClient: () => Promise<unknown>;
      signBlob: (crypto: unknown, email: string, data: string, endpoint: string) => Promise<string>;
    };
    const calls: string[] = [];
    auth.getClient = async () => ({});
    auth.signBlob = async (_c, email, data) => {
      calls.push(email);
      const { sign } = await import('node:crypto');
      return sign('RSA-SHA256', Buffer.from(data), other.privateKey).toString('base64');
    };
    const target = await new GcsUrlSigner(s, { policy: policy() }).signUpload(request);
    if (target.method !== 'PUT') throw new Error('expected PUT');
    expect(calls).toEqual([SIGNER]);
    expect(new URL(target.url).searchParams.get('X-Goog-Credential')).toMatch(/^signer@pixelpipe-test\.iam\.gserviceaccount\.com\//);
    expect(verifyV4(asSent(target.url, target.headers), { keys: { [SIGNER]: other.publicKey }, now: new Date() }).ok).toBe(true);
  });
});
