/**
 * Our hand-written signers against the official SDKs, with one fixed clock: the AWS SDK's
 * `createPresignedPost`, `getSignedUrl` and its SigV4 signer, and `@google-cloud/storage`'s V4
 * `getSignedUrl` with Google's throwaway conformance key (fixtures/README.md). Where an SDK and the
 * published algorithm disagree, the test asserts the difference instead of copying the SDK.
 */
import { createHmac, createPublicKey, createHash, verify as rsaVerify } from 'node:crypto';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createPresignedPost } from '@aws-sdk/s3-presigned-post';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { Storage } from '@google-cloud/storage';
import { getSigningKey, SignatureV4 } from '@smithy/signature-v4';
import { S3UrlSigner } from '../../functions/aws/s3-url-signer';
import { buildV4Request, GcsUrlSigner } from '../../functions/gcp/gcs-url-signer';
import { credentialsFromJson } from '../../functions/gcp/google-auth';
import { encodeRfc3986 } from '../../shared/http/signing';
import type { SignUploadRequest } from '../../shared/ports';
import { defaultPolicy } from '../../shared/resilience';
import { FixedClock } from '../../shared/testing/fakes';
import key from './fixtures/gcs-v4-signing/test_service_account.not-a-test.json';

// Whole seconds: the SDK writes the policy expiration without milliseconds (see the POST test).
const NOW = new Date('2030-01-02T03:04:05Z');
const clock = new FixedClock(NOW.getTime());
const REGION = 'eu-west-1';
const LONG_TERM = { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' };
const SESSION = {
  ...LONG_TERM,
  accessKeyId: 'ASIAIOSFODNN7EXAMPLE',
  sessionToken: 'IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD+token/with+slash=',
};

/** Object keys that stress path encoding. */
const KEYS = [
  'originals/alice/6f1c2a4e-8b3d-4c5e-9f70-1a2b3c4d5e6f',
  'with space/and  two',
  'unicode/Fête à Zürich 東京 🎉.jpg',
  'plus+and~tilde',
  'nested/a/b/c/d.png',
  "reserved!'()*&$@=;:,?#[]%.bin",
];
const BUCKETS = ['pixelpipe-originals', 'dotted.bucket.example'];

interface AwsSetup {
  name: string;
  credentials: typeof LONG_TERM & { sessionToken?: string };
  endpoint?: string;
  forcePathStyle?: boolean;
}
const AWS_SETUPS: AwsSetup[] = [
  { name: 'AWS endpoint, long-term keys', credentials: LONG_TERM },
  { name: 'AWS endpoint, session token', credentials: SESSION },
  { name: 'custom endpoint, path style', credentials: LONG_TERM, endpoint: 'http://127.0.0.1:4569', forcePathStyle: true },
];

function s3Client(s: AwsSetup): S3Client {
  // WHEN_REQUIRED: otherwise the SDK adds checksum parameters (x-amz-checksum-mode, -crc32) to a GET, which we do not use.
  return new S3Client({
    region: REGION,
    credentials: s.credentials,
    endpoint: s.endpoint,
    forcePathStyle: s.forcePathStyle,
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestChecksumCalculation: 'WHEN_REQUIRED',
  });
}

const cases = AWS_SETUPS.flatMap((setup) => BUCKETS.flatMap((bucket) => KEYS.map((k) => [setup.name, bucket, k, setup] as const)));

describe('S3 POST policy vs @aws-sdk/s3-presigned-post createPresignedPost', () => {
  afterEach(() => jest.restoreAllMocks());

  test.each(cases)('%s, bucket %s, key %j', async (_name, bucket, objectKey, setup) => {
    const request: SignUploadRequest = {
      bucket,
      key: objectKey,
      contentType: 'image/png',
      minBytes: 1,
      maxBytes: 5_000_000,
      expiresInSeconds: 600,
      metadata: {
        'pixelpipe-trace': '4bf92f3577b34da6a3ce929d0e0e4736',
        'pixelpipe-filename': encodeURIComponent('Fête à Zürich.png'),
        'pixelpipe-profile': 'avatar',
      },
    };
    const client = s3Client(setup);
    const ours = await S3UrlSigner.fromClient(client, { clock }).signUpload(request);
    if (ours.method !== 'POST') throw new Error('expected a POST target');
    const ourPolicy = JSON.parse(Buffer.from(ours.fields.Policy, 'base64').toString('utf8')) as { expiration: string; conditions: unknown[] };

    // Feed the SDK the conditions we pin beyond its own field conditions, and the fields we hand out.
    const extra = ourPolicy.conditions.filter((c) => Array.isArray(c));
    const given = Object.fromEntries(Object.entries(ours.fields).filter(([k]) => k === 'Content-Type' || k.startsWith('x-amz-meta-')));
    jest.spyOn(Date, 'now').mockReturnValue(NOW.getTime());
    const sdk = await createPresignedPost(client, {
      Bucket: bucket,
      Key: objectKey,
      Conditions: extra as never,
      Fields: given,
      Expires: request.expiresInSeconds,
    });
    const sdkPolicy = JSON.parse(Buffer.from(sdk.fields.Policy, 'base64').toString('utf8')) as { expiration: string; conditions: unknown[] };

    expect(ours.url).toBe(sdk.url);
    const strip = (f: Record<string, string>) => Object.entries(f).filter(([k]) => k !== 'Policy' && k !== 'X-Amz-Signature');
    // Same fields in the same order: the file part must come after all of them.
    expect(strip(ours.fields)).toEqual(strip(sdk.fields));
    expect(ourPolicy.conditions).toEqual(sdkPolicy.conditions);
    // Known difference: AWS's documented policy example writes "…T12:00:00.000Z"; the SDK drops the
    // milliseconds. Both are ISO 8601 for the same instant, but the policy bytes differ, so the
    // signatures are compared over our bytes with the SDK's key derivation.
    expect(ourPolicy.expiration).toBe('2030-01-02T03:14:05.000Z');
    expect(sdkPolicy.expiration).toBe('2030-01-02T03:14:05Z');
    const sha256 = client.config.sha256;
    const signingKey = await getSigningKey(sha256, setup.credentials, '20300102', REGION, 's3');
    expect(ours.fields['X-Amz-Signature']).toBe(createHmac('sha256', signingKey).update(ours.fields.Policy, 'utf8').digest('hex'));
    // And the SDK's own signature is that same HMAC over its bytes (the key derivation is shared).
    expect(sdk.fields['X-Amz-Signature']).toBe(createHmac('sha256', signingKey).update(sdk.fields.Policy, 'utf8').digest('hex'));
  });
});

describe('S3 presigned GET vs @aws-sdk/s3-request-presigner getSignedUrl', () => {
  test.each(cases)('%s, bucket %s, key %j', async (_name, bucket, objectKey, setup) => {
    const client = s3Client(setup);
    const ours = new URL(await S3UrlSigner.fromClient(client, { clock }).signRead(bucket, objectKey, 600));
    const sdk = new URL(await getSignedUrl(client, new GetObjectCommand({ Bucket: bucket, Key: objectKey }), { expiresIn: 600, signingDate: NOW }));

    expect(ours.origin).toBe(sdk.origin);
    expect(ours.pathname).toBe(sdk.pathname);
    // Known difference: getSignedUrl also signs X-Amz-Content-Sha256=UNSIGNED-PAYLOAD and the SDK's
    // operation marker x-id=GetObject as query parameters; AWS's query-string authentication needs
    // neither, and our URL carries neither.
    const params = (u: URL) => Object.fromEntries([...u.searchParams].filter(([k]) => k !== 'X-Amz-Signature'));
    expect(params(sdk)).toEqual({ ...params(ours), 'X-Amz-Content-Sha256': 'UNSIGNED-PAYLOAD', 'x-id': 'GetObject' });

    // The same request through the SDK's SigV4 signer (what getSignedUrl uses) gives our signature. The
    // payload hash comes from this header; kept out of the query and the signed headers it is only that.
    const signer = new SignatureV4({
      credentials: setup.credentials,
      region: REGION,
      service: 's3',
      sha256: client.config.sha256,
      uriEscapePath: false,
      applyChecksum: false,
    });
    const payload = 'x-amz-content-sha256';
    const presigned = await signer.presign(
      {
        method: 'GET',
        protocol: ours.protocol,
        hostname: ours.hostname,
        port: ours.port ? Number(ours.port) : undefined,
        path: ours.pathname,
        headers: { host: ours.host, [payload]: 'UNSIGNED-PAYLOAD' },
        query: {},
      },
      { signingDate: NOW, expiresIn: 600, unhoistableHeaders: new Set([payload]), unsignableHeaders: new Set([payload]) },
    );
    expect(presigned.query).toEqual(Object.fromEntries(ours.searchParams));
  });
});

describe('GCS V4 vs @google-cloud/storage getSignedUrl (v4), Google conformance key', () => {
  const storage = new Storage({ projectId: key.project_id, credentials: { client_email: key.client_email, private_key: key.private_key } });
  const signer = new GcsUrlSigner(credentialsFromJson(key, 'conformance test key'), { clock, policy: defaultPolicy('sign', { attempts: 1 }) });
  const publicKey = createPublicKey(key.private_key);
  const gcsCases = BUCKETS.flatMap((bucket) => KEYS.map((k) => [bucket, k] as const));

  test.each(gcsCases)('signRead (GET), bucket %s, key %j', async (bucket, objectKey) => {
    const ours = await signer.signRead(bucket, objectKey, 600);
    const [sdk] = await storage
      .bucket(bucket)
      .file(objectKey)
      .getSignedUrl({ version: 'v4', action: 'read', accessibleAt: NOW, expires: NOW.getTime() + 600_000 });
    expect(ours).toBe(sdk);
  });

  const upload = (bucket: string, objectKey: string, metadata: Record<string, string>): SignUploadRequest => ({
    bucket,
    key: objectKey,
    contentType: 'image/jpeg',
    minBytes: 1,
    maxBytes: 123_456,
    expiresInSeconds: 600,
    metadata,
  });
  const sdkUpload = async (r: SignUploadRequest) => {
    const [url] = await storage
      .bucket(r.bucket)
      .file(r.key)
      .getSignedUrl({
        version: 'v4',
        action: 'write',
        accessibleAt: NOW,
        expires: NOW.getTime() + r.expiresInSeconds * 1000,
        contentType: r.contentType,
        extensionHeaders: Object.fromEntries<string>([
          ['x-goog-content-length-range', `${r.minBytes},${r.maxBytes}`],
          ...Object.entries(r.metadata).map(([k, v]): [string, string] => [`x-goog-meta-${k}`, v]),
        ]),
      });
    return url;
  };

  test.each(gcsCases)('signUpload (PUT with type, size range and metadata), bucket %s, key %j', async (bucket, objectKey) => {
    const r = upload(bucket, objectKey, {
      'pixelpipe-trace': '0123456789abcdef0123456789abcdef',
      'pixelpipe-filename': encodeURIComponent('Fête (1).jpg'),
      'pixelpipe-profile': 'avatar',
    });
    const ours = await signer.signUpload(r);
    expect(ours.url).toBe(await sdkUpload(r));
  });

  test('known difference: metadata names a-b and a_b — the SDK orders header lines by localeCompare, Google’s algorithm by code point', async () => {
    const r = upload('pixelpipe-originals', 'originals/alice/x', { 'a-b': '1', a_b: '2' });
    const ours = new URL((await signer.signUpload(r)).url);
    const sdk = new URL(await sdkUpload(r));
    // Everything but the signature agrees, including the signed-header list in byte order.
    const params = (u: URL) => Object.fromEntries([...u.searchParams].filter(([k]) => k !== 'X-Goog-Signature'));
    expect(params(sdk)).toEqual(params(ours));
    expect(ours.searchParams.get('X-Goog-SignedHeaders')).toBe('content-type;host;x-goog-content-length-range;x-goog-meta-a-b;x-goog-meta-a_b');
    expect(ours.searchParams.get('X-Goog-Signature')).not.toBe(sdk.searchParams.get('X-Goog-Signature'));

    const headers = { 'content-type': r.contentType, 'x-goog-content-length-range': '1,123456', 'x-goog-meta-a-b': '1', 'x-goog-meta-a_b': '2' };
    const v4 = buildV4Request({
      method: 'PUT',
      bucket: r.bucket,
      key: r.key,
      host: 'storage.googleapis.com',
      headers,
      email: key.client_email,
      now: NOW,
      expiresInSeconds: 600,
    });
    // Ours: header lines in code-point order, as the signed-header list (and the "Header Ordering" vector).
    expect(v4.canonicalRequest).toContain('x-goog-meta-a-b:1\nx-goog-meta-a_b:2\n');
    const verifies = (stringToSign: string, u: URL) =>
      rsaVerify('sha256', Buffer.from(stringToSign), publicKey, Buffer.from(u.searchParams.get('X-Goog-Signature')!, 'hex'));
    expect(verifies(v4.stringToSign, ours)).toBe(true);
    // The SDK signed the two lines swapped (locale order puts "_" before "-"), against its own list.
    const swapped = v4.canonicalRequest.replace('x-goog-meta-a-b:1\nx-goog-meta-a_b:2\n', 'x-goog-meta-a_b:2\nx-goog-meta-a-b:1\n');
    const sdkStringToSign = v4.stringToSign.replace(/[0-9a-f]{64}$/, createHash('sha256').update(swapped).digest('hex'));
    expect(verifies(sdkStringToSign, sdk)).toBe(true);
    expect(verifies(v4.stringToSign, sdk)).toBe(false);
  });

  test('the keys above are encoded as RFC 3986 per segment, with "/" kept', () => {
    // Guards the table: the unicode and reserved-character keys really exercise percent-encoding.
    expect(KEYS.map((k) => k.split('/').map(encodeRfc3986).join('/')).filter((e, i) => e !== KEYS[i]).length).toBeGreaterThanOrEqual(4);
  });
});
