/**
 * Independent verification of the S3 upload target. s3rver neither checks signatures nor enforces POST
 * policies, so this test decodes the policy, checks every condition that keeps an upload narrow, and
 * recomputes the SigV4 signature from the documented algorithm (not from the adapter's helpers).
 */
import { createHash, createHmac } from 'node:crypto';
import { S3Client } from '@aws-sdk/client-s3';
import type { SignUploadRequest } from '../../shared/ports';
import { S3UrlSigner, presignGet } from '../../functions/aws/s3-url-signer';

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
  return createHmac('sha256', kSigning(secret, date, region)).update(policyBase64, 'utf8').digest('hex');
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

async function sign(credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }, r = request) {
  const before = Date.now();
  const target = await new S3UrlSigner(new S3Client({ region: REGION, credentials })).signUpload(r);
  if (target.method !== 'POST') throw new Error('expected a POST target');
  const policy = JSON.parse(Buffer.from(target.fields.Policy, 'base64').toString('utf8')) as { expiration: string; conditions: Condition[] };
  return { target, policy, before };
}

/** True when some condition pins `field` to exactly `value` (`{field: value}` or `["eq", "$field", value]`). */
function pinsExactly(conditions: Condition[], field: string, value: string): boolean {
  return conditions.some((c) =>
    Array.isArray(c) ? c[0] === 'eq' && String(c[1]).toLowerCase() === `$${field.toLowerCase()}` && c[2] === value : Object.entries(c).some(([k, v]) => k.toLowerCase() === field.toLowerCase() && v === value),
  );
}

describe('S3 presigned POST (independent verification)', () => {
  test('the policy pins bucket, key, content type, metadata and a byte range, and expires within the configured time', async () => {
    const { target, policy, before } = await sign({ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: SECRET });
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
    // No condition lets the uploader choose: no starts-with, no wildcard key.
    expect(c.filter((x) => Array.isArray(x) && x[0] === 'starts-with')).toEqual([]);
    const expiresAt = Date.parse(policy.expiration);
    expect(expiresAt).toBeGreaterThan(before);
    expect(expiresAt - before).toBeLessThanOrEqual(request.expiresInSeconds * 1000 + 1000);
    expect(expiresAt - Date.now()).toBeGreaterThan((request.expiresInSeconds - 60) * 1000);
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
    doc.conditions = doc.conditions.map((c) => (Array.isArray(c) && c[0] === 'content-length-range' ? ['content-length-range', 1, 5_000_000_000] : c)) as Condition[];
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
    const signer = new S3UrlSigner(new S3Client({ region: REGION, credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: SECRET } }), {
      clock: { now: () => new Date('2026-03-10T12:00:00Z') },
    });
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
    expect(url.searchParams.get('X-Amz-Signature')).toBe(createHmac('sha256', kSigning(SECRET, '20260310', REGION)).update(sts).digest('hex'));
    expect(url.searchParams.get('X-Amz-Expires')).toBe('900');
  });
});
