/**
 * Google's own V4 signed-URL conformance vectors (googleapis/conformance-tests, storage/v1; see
 * fixtures/README.md) against our V4 signer. Every vector our API can express must produce exactly
 * Google's canonical request, string to sign and URL, signed with Google's throwaway test key; the
 * others are listed in SKIPPED with the reason, and each skip checks that its reason applies.
 */
import { sign as rsaSign } from 'node:crypto';
import { buildV4Request, GcsUrlSigner } from '../../functions/gcp/gcs-url-signer';
import { credentialsFromJson } from '../../functions/gcp/google-auth';
import { defaultPolicy } from '../../shared/resilience';
import vectors from './fixtures/gcs-v4-signing/v4_signatures.json';
import key from './fixtures/gcs-v4-signing/test_service_account.not-a-test.json';

interface SigningVector {
  description: string;
  bucket: string;
  object?: string;
  method: string;
  expiration: number;
  timestamp: string;
  headers?: Record<string, string>;
  queryParameters?: Record<string, string>;
  scheme?: string;
  urlStyle?: string;
  bucketBoundHostname?: string;
  hostname?: string;
  clientEndpoint?: string;
  emulatorHostname?: string;
  universeDomain?: string;
  expectedCanonicalRequest: string;
  expectedStringToSign: string;
  expectedUrl: string;
}

interface PostPolicyVector {
  description: string;
  policyInput: Record<string, unknown>;
  policyOutput: { url: string; fields: Record<string, string> };
}

const signingVectors = vectors.signingV4Tests as unknown as SigningVector[];
const postPolicyVectors = vectors.postPolicyV4Tests as unknown as PostPolicyVector[];

/** Vectors our signer cannot express, why, and a check that the reason holds for that vector. */
const SKIPPED: Record<string, { reason: string; applies: (v: SigningVector) => boolean }> = {
  'List Objects': { reason: 'we sign object URLs only; a bucket URL has no object name', applies: (v) => v.object === undefined },
  'Query Parameter Encoding': { reason: 'we sign no query parameters besides the X-Goog-* ones', applies: (v) => v.queryParameters !== undefined },
  'Query Parameter Ordering': { reason: 'we sign no query parameters besides the X-Goog-* ones', applies: (v) => v.queryParameters !== undefined },
  'Signed Payload Instead of UNSIGNED-PAYLOAD': {
    reason: 'we never sign a payload hash: x-goog-content-length-range bounds the body instead',
    applies: (v) => Object.keys(v.headers ?? {}).some((h) => h.toLowerCase() === 'x-goog-content-sha256'),
  },
  'Virtual Hosted Style': { reason: 'we build path-style URLs only', applies: (v) => v.urlStyle === 'VIRTUAL_HOSTED_STYLE' },
  'Universe domain with virtual hosted style': { reason: 'we build path-style URLs only', applies: (v) => v.urlStyle === 'VIRTUAL_HOSTED_STYLE' },
  'HTTP Bucket Bound Hostname Support': { reason: 'we build path-style URLs only', applies: (v) => v.urlStyle === 'BUCKET_BOUND_HOSTNAME' },
  'HTTPS Bucket Bound Hostname Support': { reason: 'we build path-style URLs only', applies: (v) => v.urlStyle === 'BUCKET_BOUND_HOSTNAME' },
};

/**
 * Where the vectors and HTTP disagree. For a non-default port Google's vectors sign `host:localhost`,
 * but a client of `http://localhost:8080` sends `Host: localhost:8080` (RFC 9110 §7.2), which is what
 * we sign and what a verifier sees. And for an endpoint given as `storage.googleapis.com:443` they keep
 * the default port in the URL, which the WHATWG URL origin we build on drops (same origin, same host
 * header, so the signature is identical).
 */
const HOST_WITH_PORT = new Set(['Simple GET with non-default hostname', 'Endpoint on client with scheme', 'Endpoint on client takes precedence over emulator']);
const DEFAULT_PORT_IN_URL = new Set(['Simple GET with endpoint on client']);

/**
 * Our signer has one `host` option where Google's SDKs have several (hostname, client endpoint,
 * emulator host, universe domain); this is the one that wins in the SDKs, as the vectors expect.
 */
function hostOption(v: SigningVector): string | undefined {
  const value = v.hostname ?? v.clientEndpoint ?? v.emulatorHostname ?? (v.universeDomain ? `storage.${v.universeDomain}` : undefined);
  if (value === undefined) return undefined;
  return /^https?:\/\//.test(value) ? value : `${v.scheme ?? 'https'}://${value}`;
}

function rsaHex(stringToSign: string): string {
  return rsaSign('sha256', Buffer.from(stringToSign, 'utf8'), key.private_key).toString('hex');
}

function built(v: SigningVector) {
  const base = new URL(hostOption(v) ?? 'https://storage.googleapis.com');
  const parts = buildV4Request({
    method: v.method,
    bucket: v.bucket,
    key: v.object!,
    host: base.host,
    headers: v.headers ?? {},
    email: key.client_email,
    now: new Date(v.timestamp),
    expiresInSeconds: v.expiration,
  });
  return { ...parts, url: `${base.origin}${parts.resource}&X-Goog-Signature=${rsaHex(parts.stringToSign)}` };
}

function signerFor(v: SigningVector): GcsUrlSigner {
  return new GcsUrlSigner(credentialsFromJson(key, 'conformance test key'), {
    host: hostOption(v),
    clock: { now: () => new Date(v.timestamp) },
    policy: defaultPolicy('sign', { attempts: 1 }),
  });
}

const run = signingVectors.filter((v) => !(v.description in SKIPPED));
const exact = run.filter((v) => !HOST_WITH_PORT.has(v.description));
// signRead takes no headers and signs GET only; the rest goes through the canonical-request function alone.
const viaSignRead = run.filter((v) => v.method === 'GET' && v.headers === undefined);

describe('Google V4 signing vectors (signingV4Tests)', () => {
  test('every vector is either run or skipped with a reason, and every skip names a vector', () => {
    const names = signingVectors.map((v) => v.description);
    expect(Object.keys(SKIPPED).filter((n) => !names.includes(n))).toEqual([]);
    expect(run.length + Object.keys(SKIPPED).length).toBe(signingVectors.length);
    expect(run.length).toBeGreaterThanOrEqual(20);
  });

  test.each(exact.map((v) => [v.description, v] as const))('%s: canonical request, string to sign and URL exactly', (_name, v) => {
    const out = built(v);
    expect(out.canonicalRequest).toBe(v.expectedCanonicalRequest);
    expect(out.stringToSign).toBe(v.expectedStringToSign);
    if (DEFAULT_PORT_IN_URL.has(v.description))
      expect(out.url).toBe(v.expectedUrl.replace('https://storage.googleapis.com:443/', 'https://storage.googleapis.com/'));
    else expect(out.url).toBe(v.expectedUrl);
  });

  test.each([...HOST_WITH_PORT].map((n) => [n, signingVectors.find((v) => v.description === n)!] as const))(
    'known difference: %s signs the host header with its port, otherwise Google’s canonical request',
    (_name, v) => {
      const out = built(v);
      expect(v.expectedCanonicalRequest).toContain('\nhost:localhost\n');
      expect(out.canonicalRequest).toBe(v.expectedCanonicalRequest.replace('\nhost:localhost\n', '\nhost:localhost:8080\n'));
      expect(out.url.split('&X-Goog-Signature=')[0]).toBe(v.expectedUrl.split('&X-Goog-Signature=')[0]);
    },
  );

  test.each(viaSignRead.map((v) => [v.description, v] as const))('%s: GcsUrlSigner.signRead with the test key gives the URL', async (_name, v) => {
    const url = await signerFor(v).signRead(v.bucket, v.object!, v.expiration);
    if (HOST_WITH_PORT.has(v.description)) {
      // Same URL up to the signature, which covers `host:localhost:8080` (see HOST_WITH_PORT).
      expect(url.split('&X-Goog-Signature=')[0]).toBe(v.expectedUrl.split('&X-Goog-Signature=')[0]);
      expect(url).toBe(built(v).url);
    } else if (DEFAULT_PORT_IN_URL.has(v.description)) {
      expect(url).toBe(v.expectedUrl.replace('https://storage.googleapis.com:443/', 'https://storage.googleapis.com/'));
    } else {
      expect(url).toBe(v.expectedUrl);
    }
  });

  test.each(Object.entries(SKIPPED).map(([name, s]) => [name, s.reason, s] as const))('skipped: %s — %s', (name, _reason, s) => {
    expect(s.applies(signingVectors.find((v) => v.description === name)!)).toBe(true);
  });
});

describe('Google V4 POST policy vectors (postPolicyV4Tests)', () => {
  // GcsUrlSigner hands out PUT URLs (signed headers pin type, size range and metadata); it builds no
  // POST policy form, so none of these can be expressed.
  test.each(postPolicyVectors.map((v) => [v.description, v] as const))('skipped: %s — we sign PUT URLs, not POST policy forms', (_name, v) => {
    expect(v.policyOutput.fields).toHaveProperty('policy');
    expect(v.policyOutput.url).not.toContain('X-Goog-Signature');
  });
});
