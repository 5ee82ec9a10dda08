/**
 * Independent verification of the S3 upload target. s3rver neither checks signatures nor enforces POST
 * policies, so this test decodes the policy, checks every condition that keeps an upload narrow, and
 * recomputes the SigV4 signature from the documented algorithm ("Authenticating Requests in
 * Browser-Based Uploads Using POST (AWS Signature Version 4)"), not from the adapter's helpers.
 * Also: the signing target read from the Lambda environment, and one built from an SDK client.
 */
import { createHash, createHmac } from 'node:crypto';
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { AnonymousAuthenticator } from '../../shared/auth/jwt-authenticator';
import { testInvocation } from '../../shared/testing/invocation';
import { loadConfig } from '../../shared/config';
import { ConfigError, PixelpipeError } from '../../shared/errors';
import { handleUploadRequest } from '../../shared/http/upload-http';
import { createLogger } from '../../shared/logger';
import type { SignUploadRequest } from '../../shared/ports';
import { FixedClock, SequentialIds } from '../../shared/testing/fakes';
import { MAX_UPLOAD_EXPIRY_SECONDS, S3UrlSigner, presignGet, s3SigningTargetFromEnv, type S3SigningTarget } from '../../functions/aws/s3-url-signer';

const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const REGION = 'eu-west-1';

/** AWS SigV4, as documented: kDate = HMAC("AWS4" + secret, date) → region → service → "aws4_request". */
function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}
function kSigning(secret: string, date: string, region: string): Buffer {
  return hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), 's3'), 'aws4_request');
}
/** A POST policy's signature is the hex HMAC of the base64 policy document itself. */
function policySignature(secret: string, date: string, region: string, policyBase64: string): string {
  return createHmac('sha256', kSigning(secret, date, region))
    .update(policyBase64, 'utf8')
    .digest('hex');
}

type Condition = Record<string, string> | [string, string, string] | ['content-length-range', number, number];

const request: SignUploadRequest = {
  bucket: 'pixelpipe-prod-originals-123456789012-eu-west-1',
  key: 'originals/alice/6f1c2a4e-8b3d-4c5e-9f70-1a2b3c4d5e6f',
  contentType: 'image/png',
  minBytes: 1,
  maxBytes: 5_000_000,
  expiresInSeconds: 600,
  metadata: { 'pixelpipe-trace': '4bf92f3577b34da6a3ce929d0e0e4736', 'pixelpipe-filename': 'holiday%20photo.png' },
};

/** The signer's time: a fixed instant with milliseconds, so the expiration check is exact. */
const NOW = new Date('2026-03-10T12:34:56.789Z');

async function sign(credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }, r = request) {
  const signer = new S3UrlSigner({ region: REGION, credentials: () => Promise.resolve(credentials) }, { clock: new FixedClock(NOW.getTime()) });
  const target = await signer.signUpload(r);
  if (target.method !== 'POST') throw new Error('expected a POST target');
  const policy = JSON.parse(Buffer.from(target.fields.Policy, 'base64').toString('utf8')) as { expiration: string; conditions: Condition[] };
  return { target, policy };
}

/** The POST policy document inside the base64 `Policy` field. */
function decodePolicy(policyBase64: string): { expiration: string; conditions: Condition[] } {
  return JSON.parse(Buffer.from(policyBase64, 'base64').toString('utf8')) as { expiration: string; conditions: Condition[] };
}

/** True when some condition pins `field` to exactly `value` (`{field: value}` or `["eq", "$field", value]`). */
function pinsExactly(conditions: Condition[], field: string, value: string): boolean {
  return conditions.some((c) =>
    Array.isArray(c)
      ? c[0] === 'eq' && String(c[1]).toLowerCase() === `$${field.toLowerCase()}` && c[2] === value
      : Object.entries(c).some(([k, v]) => k.toLowerCase() === field.toLowerCase() && v === value),
  );
}

describe('S3 presigned POST (independent verification)', () => {
  test('the policy pins bucket, key, content type, metadata and a byte range, and expires at clock + expiry', async () => {
    const { target, policy } = await sign({ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: SECRET });
    expect(target.url).toBe(`https://${request.bucket}.s3.${REGION}.amazonaws.com/`);
    const c = policy.conditions;
    expect(pinsExactly(c, 'bucket', request.bucket)).toBe(true);
    expect(c).toContainEqual(['eq', '$key', request.key]);
    expect(c).toContainEqual(['eq', '$Content-Type', 'image/png']);
    expect(c).toContainEqual(['content-length-range', 1, 5_000_000]);
    for (const [k, v] of Object.entries(request.metadata)) {
      expect(pinsExactly(c, `x-amz-meta-${k}`, v)).toBe(true);
      expect(target.fields[`x-amz-meta-${k}`]).toBe(v);
    }
    expect(pinsExactly(c, 'key', request.key)).toBe(true);
    expect(pinsExactly(c, 'Content-Type', 'image/png')).toBe(true);
    // No condition lets the uploader choose: no starts-with, no wildcard key, one size range only.
    expect(c.filter((x) => Array.isArray(x) && x[0] === 'starts-with')).toEqual([]);
    expect(c.filter((x) => Array.isArray(x) && x[0] === 'content-length-range')).toEqual([['content-length-range', 1, 5_000_000]]);
    // Nothing pins a different key or content type next to the right one (S3 requires all to hold).
    expect(c.filter((x) => !Array.isArray(x) && 'key' in x)).toEqual([{ key: request.key }]);
    // The injected clock dates everything: policy expiration, X-Amz-Date and the credential scope.
    expect(policy.expiration).toBe(new Date(NOW.getTime() + request.expiresInSeconds * 1000).toISOString());
    expect(target.fields['X-Amz-Date']).toBe('20260310T123456Z');
    expect(target.fields['X-Amz-Credential']).toBe(`AKIDEXAMPLE/20260310/${REGION}/s3/aws4_request`);
    expect(pinsExactly(c, 'X-Amz-Date', '20260310T123456Z')).toBe(true);
  });

  test('the form fields keep the names, casing and order the SDK produced (browsers send them as given)', async () => {
    const { target } = await sign({ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: SECRET, sessionToken: 'TOKEN' });
    expect(Object.keys(target.fields)).toEqual([
      'Content-Type',
      'x-amz-meta-pixelpipe-trace',
      'x-amz-meta-pixelpipe-filename',
      'bucket',
      'X-Amz-Algorithm',
      'X-Amz-Credential',
      'X-Amz-Date',
      'X-Amz-Security-Token',
      'key',
      'Policy',
      'X-Amz-Signature',
    ]);
    expect(target.headers).toEqual({});
    const { target: noToken } = await sign({ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: SECRET });
    expect(noToken.fields).not.toHaveProperty('X-Amz-Security-Token');
    expect(decodePolicy(noToken.fields.Policy).conditions).not.toContainEqual(
      expect.objectContaining({ 'X-Amz-Security-Token': expect.anything() as unknown }),
    );
  });

  test('metadata names are lower-cased, as S3 stores them', async () => {
    const { target, policy } = await sign({ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: SECRET }, { ...request, metadata: { 'Pixelpipe-Trace': 'abc' } });
    expect(target.fields['x-amz-meta-pixelpipe-trace']).toBe('abc');
    expect(pinsExactly(policy.conditions, 'x-amz-meta-pixelpipe-trace', 'abc')).toBe(true);
  });

  test('expiry and byte range outside the allowed bounds are refused before signing', async () => {
    const credentials = jest.fn(() => Promise.resolve({ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: SECRET }));
    const signer = new S3UrlSigner({ region: REGION, credentials });
    for (const r of [
      { ...request, expiresInSeconds: 0 },
      { ...request, expiresInSeconds: MAX_UPLOAD_EXPIRY_SECONDS + 1 },
      { ...request, expiresInSeconds: 1.5 },
      { ...request, minBytes: -1 },
      { ...request, minBytes: 10, maxBytes: 9 },
      { ...request, maxBytes: 1.5 },
    ]) {
      await expect(signer.signUpload(r)).rejects.toBeInstanceOf(RangeError);
    }
    expect(credentials).not.toHaveBeenCalled();
    await expect(signer.signUpload({ ...request, expiresInSeconds: MAX_UPLOAD_EXPIRY_SECONDS })).resolves.toMatchObject({ method: 'POST' });
  });

  test('a failing credential source is mapped onto the error hierarchy; its message reaches the log, not the HTTP answer', async () => {
    const providerMessage = 'Could not load credentials from any providers';
    const signer = new S3UrlSigner({
      region: REGION,
      credentials: () => Promise.reject(Object.assign(new Error(providerMessage), { name: 'CredentialsProviderError' })),
    });
    const err = await signer.signUpload(request).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PixelpipeError);
    expect(err).toMatchObject({ code: 'internal', retryable: true });

    // The same signer behind the upload endpoint: the caller gets a generic 503, the operator the cause.
    const lines: string[] = [];
    const config = loadConfig({ PIXELPIPE_AUTH_MODE: 'anonymous' });
    const res = await handleUploadRequest(
      {
        config,
        authenticator: new AnonymousAuthenticator(),
        signer,
        ids: new SequentialIds(),
        clock: new FixedClock(NOW.getTime()),
        logger: createLogger({ sink: (l) => lines.push(l) }),
      },
      { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ contentType: 'image/png', size: 1000, filename: 'a.png' }) },
      testInvocation({ logger: createLogger({ sink: (l) => lines.push(l) }) }),
    );
    expect(res.status).toBe(503);
    expect(JSON.parse(res.body)).toEqual({ error: { code: 'internal', message: 'temporarily unavailable, retry later' } });
    expect(JSON.stringify(res)).not.toContain(providerMessage);
    expect(lines.join('\n')).toContain(providerMessage);
  });

  test('every form field the browser must send is covered by the policy (S3 rejects uncovered fields)', async () => {
    const { target, policy } = await sign({ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: SECRET, sessionToken: 'FwoGZXIvYXdzEXAMPLETOKEN' });
    for (const [name, value] of Object.entries(target.fields)) {
      if (name === 'Policy' || name === 'X-Amz-Signature') continue;
      expect([name, pinsExactly(policy.conditions, name, value)]).toEqual([name, true]);
    }
    expect(target.fields['X-Amz-Security-Token']).toBe('FwoGZXIvYXdzEXAMPLETOKEN');
    expect(target.fields['X-Amz-Algorithm']).toBe('AWS4-HMAC-SHA256');
  });

  test('the signature is the documented SigV4 HMAC of the policy, and a tampered policy does not match it', async () => {
    const { target } = await sign({ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: SECRET });
    const cred = target.fields['X-Amz-Credential'];
    const m = /^AKIDEXAMPLE\/(\d{8})\/([a-z0-9-]+)\/s3\/aws4_request$/.exec(cred);
    expect(m).not.toBeNull();
    const [, date, region] = m!;
    expect(region).toBe(REGION);
    expect(target.fields['X-Amz-Date'].slice(0, 8)).toBe(date);
    expect(target.fields['X-Amz-Signature']).toBe(policySignature(SECRET, date, region, target.fields.Policy));

    const doc = JSON.parse(Buffer.from(target.fields.Policy, 'base64').toString('utf8')) as { conditions: Condition[] };
    doc.conditions = doc.conditions.map<Condition>((c) =>
      Array.isArray(c) && c[0] === 'content-length-range' ? ['content-length-range', 1, 5_000_000_000] : c,
    );
    const tampered = Buffer.from(JSON.stringify(doc)).toString('base64');
    expect(policySignature(SECRET, date, region, tampered)).not.toBe(target.fields['X-Amz-Signature']);
    expect(policySignature('another-secret', date, region, target.fields.Policy)).not.toBe(target.fields['X-Amz-Signature']);
  });

  test('the byte range follows the request (declared size is the upper bound)', async () => {
    const { policy } = await sign({ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: SECRET }, { ...request, minBytes: 1, maxBytes: 42 });
    expect(policy.conditions).toContainEqual(['content-length-range', 1, 42]);
  });
});

describe('S3 presigned GET (signRead)', () => {
  test('reproduces the signature of the AWS documentation example for query-string authentication', () => {
    // "Authenticating Requests: Using Query Parameters (AWS Signature Version 4)", Amazon S3 API Reference.
    const url = presignGet(
      new URL('https://examplebucket.s3.amazonaws.com/test.txt'),
      { region: 'us-east-1', accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: SECRET },
      new Date('2013-05-24T00:00:00Z'),
      86400,
    );
    expect(new URL(url).searchParams.get('X-Amz-Signature')).toBe('aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404');
    expect(url).toContain('X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request');
  });

  test('keys with spaces, plus signs and unicode are signed in canonical encoding', async () => {
    const signer = new S3UrlSigner(
      { region: REGION, credentials: () => Promise.resolve({ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: SECRET }) },
      {
        clock: { now: () => new Date('2026-03-10T12:00:00Z') },
      },
    );
    const url = new URL(await signer.signRead('pixelpipe-variants', 'variants/a b+c/фото.webp', 900));
    expect(url.host).toBe('pixelpipe-variants.s3.eu-west-1.amazonaws.com');
    expect(url.pathname).toBe('/variants/a%20b%2Bc/%D1%84%D0%BE%D1%82%D0%BE.webp');
    // Recompute independently from the canonical request.
    const q = [...url.searchParams.entries()].filter(([k]) => k !== 'X-Amz-Signature');
    const canonicalQuery = q
      .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
      .sort()
      .join('&');
    const canonical = ['GET', url.pathname, canonicalQuery, `host:${url.host}`, '', 'host', 'UNSIGNED-PAYLOAD'].join('\n');
    const sts = ['AWS4-HMAC-SHA256', '20260310T120000Z', `20260310/${REGION}/s3/aws4_request`, createHash('sha256').update(canonical).digest('hex')].join('\n');
    expect(url.searchParams.get('X-Amz-Signature')).toBe(
      createHmac('sha256', kSigning(SECRET, '20260310', REGION))
        .update(sts)
        .digest('hex'),
    );
    expect(url.searchParams.get('X-Amz-Expires')).toBe('900');
  });
});

describe('signing target from the Lambda environment', () => {
  const lambdaEnv = { AWS_REGION: 'eu-west-1', AWS_ACCESS_KEY_ID: 'ASIAEXAMPLE', AWS_SECRET_ACCESS_KEY: SECRET, AWS_SESSION_TOKEN: 'IQoJb3JpZ2luX2VjEXAMPLE' };

  test.each(['AWS_REGION', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'])('a missing %s is a ConfigError naming it', (name) => {
    for (const value of [undefined, '', '  ']) {
      const env: NodeJS.ProcessEnv = { ...lambdaEnv, [name]: value };
      let err: unknown;
      try {
        s3SigningTargetFromEnv(env);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect(err).toMatchObject({ variable: name, code: 'invalid_config', retryable: false });
      expect((err as Error).message).toContain(name);
    }
  });

  test('the session token of the execution role is carried into the credential and the signed form', async () => {
    const target = s3SigningTargetFromEnv(lambdaEnv);
    expect(target.region).toBe('eu-west-1');
    expect(target.endpoint).toBeUndefined();
    await expect(target.credentials()).resolves.toEqual({ accessKeyId: 'ASIAEXAMPLE', secretAccessKey: SECRET, sessionToken: 'IQoJb3JpZ2luX2VjEXAMPLE' });

    const form = await new S3UrlSigner(target, { clock: new FixedClock(NOW.getTime()) }).signUpload(request);
    if (form.method !== 'POST') throw new Error('expected a POST target');
    expect(form.url).toBe(`https://${request.bucket}.s3.eu-west-1.amazonaws.com/`);
    expect(form.fields['X-Amz-Security-Token']).toBe('IQoJb3JpZ2luX2VjEXAMPLE');
    const policy = JSON.parse(Buffer.from(form.fields.Policy, 'base64').toString('utf8')) as { conditions: Condition[] };
    expect(pinsExactly(policy.conditions, 'X-Amz-Security-Token', 'IQoJb3JpZ2luX2VjEXAMPLE')).toBe(true);
    expect(form.fields['X-Amz-Signature']).toBe(policySignature(SECRET, '20260310', 'eu-west-1', form.fields.Policy));
  });

  test('without a session token (long-term keys) no token field or condition appears', async () => {
    const target = s3SigningTargetFromEnv({ ...lambdaEnv, AWS_SESSION_TOKEN: '' });
    await expect(target.credentials()).resolves.toEqual({ accessKeyId: 'ASIAEXAMPLE', secretAccessKey: SECRET });
  });

  test('AWS_ENDPOINT_URL_S3 overrides AWS_ENDPOINT_URL, which overrides the regional endpoint', async () => {
    const url = async (env: NodeJS.ProcessEnv, bucket = 'originals') => {
      const t = await new S3UrlSigner(s3SigningTargetFromEnv({ ...lambdaEnv, ...env })).signUpload({ ...request, bucket });
      return t.url;
    };
    expect(s3SigningTargetFromEnv({ ...lambdaEnv, AWS_ENDPOINT_URL: 'https://s3.example.net' }).endpoint).toBe('https://s3.example.net');
    expect(s3SigningTargetFromEnv({ ...lambdaEnv, AWS_ENDPOINT_URL: 'https://all.example.net', AWS_ENDPOINT_URL_S3: 'https://s3.example.net' }).endpoint).toBe(
      'https://s3.example.net',
    );
    expect(await url({ AWS_ENDPOINT_URL: 'https://storage.example.net' })).toBe('https://originals.storage.example.net/');
    expect(await url({ AWS_ENDPOINT_URL: 'https://storage.example.net', AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:4569' })).toBe(
      'http://127.0.0.1:4569/originals',
    );
    expect(await url({}, 'dotted.bucket.name')).toBe('https://s3.eu-west-1.amazonaws.com/dotted.bucket.name');
  });

  test.each([
    ['AWS_ENDPOINT_URL_S3', 'not a url'],
    ['AWS_ENDPOINT_URL', 'ftp://s3.example.net'],
  ])('an unusable %s is a ConfigError naming it', (name, value) => {
    expect(() => s3SigningTargetFromEnv({ ...lambdaEnv, [name]: value })).toThrow(expect.objectContaining({ variable: name }) as Error);
  });
});

describe('signing target from an SDK client (local stack, tools)', () => {
  const keys = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: SECRET };
  const clients: S3Client[] = [];
  const client = (config: S3ClientConfig) => {
    const c = new S3Client(config);
    clients.push(c);
    return c;
  };
  afterAll(() => clients.forEach((c) => c.destroy()));

  test("uses the client's region, credentials, endpoint and path style, with the URLs the SDK produced", async () => {
    const s3rver = S3UrlSigner.fromClient(
      client({ region: 'us-east-1', endpoint: 'http://127.0.0.1:4569', forcePathStyle: true, credentials: { ...keys, sessionToken: 'T' } }),
      {
        clock: new FixedClock(NOW.getTime()),
      },
    );
    const form = await s3rver.signUpload(request);
    if (form.method !== 'POST') throw new Error('expected a POST target');
    expect(form.url).toBe(`http://127.0.0.1:4569/${request.bucket}`);
    expect(form.fields['X-Amz-Credential']).toBe('AKIDEXAMPLE/20260310/us-east-1/s3/aws4_request');
    expect(form.fields['X-Amz-Security-Token']).toBe('T');
    expect(form.fields['X-Amz-Signature']).toBe(policySignature(SECRET, '20260310', 'us-east-1', form.fields.Policy));
    expect(new URL(await s3rver.signRead('variants', 'a/b c.webp', 60)).href).toMatch(/^http:\/\/127\.0\.0\.1:4569\/variants\/a\/b%20c\.webp\?/);

    const aws = S3UrlSigner.fromClient(client({ region: REGION, credentials: keys }));
    expect((await aws.signUpload(request)).url).toBe(`https://${request.bucket}.s3.${REGION}.amazonaws.com/`);
    expect((await aws.signUpload({ ...request, bucket: 'my.dotted.bucket' })).url).toBe(`https://s3.${REGION}.amazonaws.com/my.dotted.bucket`);
  });

  test('only region and keys from the identity reach the signature (no extra identity fields)', async () => {
    const target: S3SigningTarget = {
      region: REGION,
      credentials: () => Promise.resolve(Object.assign({ ...keys }, { expiration: new Date(), region: 'us-west-2' })),
    };
    const form = await new S3UrlSigner(target, { clock: new FixedClock(NOW.getTime()) }).signUpload(request);
    if (form.method !== 'POST') throw new Error('expected a POST target');
    expect(form.fields['X-Amz-Credential']).toBe(`AKIDEXAMPLE/20260310/${REGION}/s3/aws4_request`);
  });
});
