/**
 * {@link UrlSigner} for S3: uploads go through a presigned POST, reads through a SigV4 presigned GET.
 *
 * Why POST and not PUT: a presigned PUT URL cannot bound the body size, so a client could store a
 * multi-gigabyte "image". A POST policy carries a `content-length-range` condition that S3 itself
 * enforces, plus exact-match conditions on key, Content-Type and metadata.
 *
 * Why no AWS SDK at runtime: signing is pure local computation (HMAC-SHA256 over a policy), yet
 * loading `@aws-sdk/client-s3` and `@aws-sdk/s3-presigned-post` costs ≈ 95 ms of the upload Lambda's
 * cold start. `node:crypto` does the same work, so this module only imports SDK *types* (erased).
 */
import { createHash, createHmac } from 'node:crypto';
import { isIP } from 'node:net';
import type { S3Client } from '@aws-sdk/client-s3';
import { ConfigError } from '../../shared/errors';
import { compactUtcTimestamp, encodeRfc3986 } from '../../shared/http/signing';
import type { CallOptions, Clock, SignUploadRequest, UploadTarget, UrlSigner } from '../../shared/ports';
import { cancelled } from '../../shared/resilience';
import { mapAwsError } from './sdk-errors';

/** Options for {@link S3UrlSigner}. */
export interface S3UrlSignerOptions {
  /** Time source for the POST policy (date, credential scope, expiration) and presigned GETs. */
  clock?: Clock;
}

/** Access keys as the signer needs them (the shape of the SDK's credential identity). */
export interface S3SigningCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** Where and as whom to sign: everything the signer needs, without an S3 client. */
export interface S3SigningTarget {
  region: string;
  /** Asked on every signature, so rotating credentials (the SDK's providers) stay current. */
  credentials: () => Promise<S3SigningCredentials>;
  /** Custom endpoint (s3rver, LocalStack, a VPC endpoint); default is the regional AWS endpoint. */
  endpoint?: string;
  /** Address buckets as `<endpoint>/<bucket>` instead of `<bucket>.<host>`. */
  forcePathStyle?: boolean;
}

/** Longest upload policy lifetime handed out (15 minutes), as for GCS. */
export const MAX_UPLOAD_EXPIRY_SECONDS = 15 * 60;

/** Signs S3 uploads (presigned POST) and reads (presigned GET) locally, with SigV4 on `node:crypto`. */
export class S3UrlSigner implements UrlSigner {
  private readonly clock: Clock;
  private readonly resolveTarget: () => Promise<S3SigningTarget>;

  /** `target` is fixed, or asked before every signature (see {@link fromClient}). */
  constructor(target: S3SigningTarget | (() => Promise<S3SigningTarget>), options: S3UrlSignerOptions = {}) {
    this.clock = options.clock ?? { now: () => new Date() };
    this.resolveTarget = typeof target === 'function' ? target : () => Promise.resolve(target);
  }

  /**
   * Signs with an SDK client's region, credentials, endpoint and addressing style (local stack, tests).
   * Only the client's resolved config is read; the client never sends a request for a signature.
   */
  static fromClient(client: S3Client, options: S3UrlSignerOptions = {}): S3UrlSigner {
    const cfg = client.config;
    // Region and endpoint are async providers. The SDK memoizes them, so asking on every signature is
    // cheap, and a provider that failed once (no region configured yet) is asked again next time.
    return new S3UrlSigner(async () => {
      const [region, ep] = await Promise.all([cfg.region(), cfg.endpoint?.()]);
      const endpoint = ep ? `${ep.protocol}//${ep.hostname}${ep.port ? `:${ep.port}` : ''}${ep.path ?? ''}` : undefined;
      return { region, credentials: () => cfg.credentials(), endpoint, forcePathStyle: cfg.forcePathStyle };
    }, options);
  }

  /**
   * Signing is local; only the credential provider may go to the network (IMDS, STS, SSO), and the
   * SDK's providers take no signal. So `options.signal` is checked before the work starts and the
   * deadline is left to the provider's own timeouts.
   */
  async signUpload(r: SignUploadRequest, options: CallOptions = {}): Promise<UploadTarget> {
    if (options.signal?.aborted) throw cancelled(options.signal, 'sign s3 upload');
    // Same bounds as the GCS signer: a leaked upload policy is only useful briefly, and never unbounded.
    if (!Number.isInteger(r.expiresInSeconds) || r.expiresInSeconds < 1 || r.expiresInSeconds > MAX_UPLOAD_EXPIRY_SECONDS) {
      throw new RangeError(`upload policies expire after 1..${MAX_UPLOAD_EXPIRY_SECONDS} s, got ${r.expiresInSeconds}`);
    }
    if (!Number.isInteger(r.minBytes) || !Number.isInteger(r.maxBytes) || r.minBytes < 0 || r.maxBytes < r.minBytes) {
      throw new RangeError(`invalid byte range ${r.minBytes},${r.maxBytes}`);
    }
    let target: S3SigningTarget;
    let creds: S3SigningCredentials;
    try {
      target = await this.resolveTarget();
      creds = await target.credentials();
    } catch (err) {
      // A failing credential provider (no role, expired SSO session) is classified like any SDK failure.
      throw mapAwsError(err, 'sign s3 upload', 'internal');
    }
    return presignPost(bucketUrl(target, r.bucket).post, r, sigV4(target, creds), this.clock.now());
  }

  async signRead(bucket: string, key: string, expiresInSeconds: number, options: CallOptions = {}): Promise<string> {
    if (options.signal?.aborted) throw cancelled(options.signal, 'sign s3 read');
    const target = await this.resolveTarget();
    const url = new URL(`${bucketUrl(target, bucket).objectBase}${key.split('/').map(encodeRfc3986).join('/')}`);
    return presignGet(url, sigV4(target, await target.credentials()), this.clock.now(), expiresInSeconds);
  }
}

/**
 * The upload Lambda's signing target, read from its environment: `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
 * `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN` (optional) and an optional endpoint override
 * (`AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`). Throws a {@link ConfigError} naming the first
 * missing or invalid variable.
 *
 * Why only the environment: Lambda always puts the execution role's temporary credentials in these
 * variables, and reading them costs nothing at cold start. Other credential sources (shared profiles,
 * SSO, container or instance metadata credentials) are deliberately not supported here, because
 * supporting them means loading the SDK's provider chain, which is what this module exists to avoid.
 * Code that needs them builds an `S3Client` and uses {@link S3UrlSigner.fromClient}.
 */
export function s3SigningTargetFromEnv(env: NodeJS.ProcessEnv): S3SigningTarget {
  const read = (name: string): string | undefined => env[name]?.trim() || undefined;
  const required = (name: string): string => {
    const value = read(name);
    if (value === undefined) throw new ConfigError(name, 'must be set (Lambda sets it from the execution role)');
    return value;
  };
  const region = required('AWS_REGION');
  const credentials: S3SigningCredentials = { accessKeyId: required('AWS_ACCESS_KEY_ID'), secretAccessKey: required('AWS_SECRET_ACCESS_KEY') };
  const sessionToken = read('AWS_SESSION_TOKEN');
  if (sessionToken !== undefined) credentials.sessionToken = sessionToken;
  // The S3-specific override wins over the global one, as in the SDK's own configuration rules.
  const endpointVariable = ['AWS_ENDPOINT_URL_S3', 'AWS_ENDPOINT_URL'].find((name) => read(name) !== undefined);
  if (endpointVariable === undefined) return { region, credentials: () => Promise.resolve(credentials) };
  const endpoint = read(endpointVariable)!;
  if (!URL.canParse(endpoint) || !/^https?:$/.test(new URL(endpoint).protocol)) {
    throw new ConfigError(endpointVariable, `must be an http(s) URL, got ${JSON.stringify(endpoint)}`);
  }
  return { region, credentials: () => Promise.resolve(credentials), endpoint };
}

/**
 * Where a bucket is addressed: `post` is the form action, `objectBase` the prefix of an object URL.
 * Path style (`<endpoint>/<bucket>`) when asked, for an endpoint whose host is an IP address (no
 * bucket subdomain possible), and for bucket names with dots (they break the TLS wildcard
 * certificate); else virtual-hosted (`<bucket>.<host>`). Without an endpoint, the regional AWS one.
 * These are the URLs the SDK produced for AWS and for s3rver.
 */
function bucketUrl(target: S3SigningTarget, bucket: string): { post: string; objectBase: string } {
  const ep = new URL(target.endpoint ?? `https://s3.${target.region}.amazonaws.com`);
  const basePath = ep.pathname.replace(/\/+$/, '');
  if (target.forcePathStyle || bucket.includes('.') || isIP(ep.hostname.replace(/^\[|\]$/g, '')) !== 0) {
    const base = `${ep.origin}${basePath}/${bucket}`;
    return { post: base, objectBase: `${base}/` };
  }
  const base = `${ep.protocol}//${bucket}.${ep.host}${basePath}/`;
  return { post: base, objectBase: base };
}

/**
 * A browser-based upload form (AWS "Authenticating Requests in Browser-Based Uploads Using POST
 * (AWS Signature Version 4)"): a policy document of an expiration and conditions, base64-encoded, and
 * its signature, hex HMAC-SHA256 of the base64 text with the SigV4 signing key.
 *
 * Every field handed to the browser is also pinned by an exact-match condition, because S3 refuses a
 * form carrying any field the policy does not mention, and so the holder cannot change any of them.
 */
function presignPost(url: string, r: SignUploadRequest, creds: SigV4Credentials, now: Date): UploadTarget {
  const amzDate = compactUtcTimestamp(now);
  const day = amzDate.slice(0, 8);
  const credential = `${creds.accessKeyId}/${day}/${creds.region}/s3/aws4_request`;
  // Field names and order as the SDK's createPresignedPost produced them: browsers, web/upload.js and
  // the local stack send them as given, and the file part must come after all of them.
  const fields: Record<string, string> = { 'Content-Type': r.contentType };
  for (const [k, v] of Object.entries(r.metadata)) fields[`x-amz-meta-${k.toLowerCase()}`] = v;
  fields.bucket = r.bucket;
  fields['X-Amz-Algorithm'] = 'AWS4-HMAC-SHA256';
  fields['X-Amz-Credential'] = credential;
  fields['X-Amz-Date'] = amzDate;
  if (creds.sessionToken) fields['X-Amz-Security-Token'] = creds.sessionToken;
  fields.key = r.key;

  const conditions: unknown[] = [
    ['eq', '$key', r.key],
    ['eq', '$Content-Type', r.contentType],
    ['content-length-range', r.minBytes, r.maxBytes],
    ...Object.entries(fields).map(([k, v]) => ({ [k]: v })),
  ];
  const policy = Buffer.from(JSON.stringify({ expiration: new Date(now.getTime() + r.expiresInSeconds * 1000).toISOString(), conditions }), 'utf8').toString(
    'base64',
  );
  fields.Policy = policy;
  fields['X-Amz-Signature'] = createHmac('sha256', signingKey(creds.secretAccessKey, day, creds.region, 's3'))
    .update(policy, 'utf8')
    .digest('hex');
  return { method: 'POST', url, fields, headers: {} };
}

/** Credentials and region for {@link presignGet}. */
export interface SigV4Credentials {
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/**
 * SigV4 query-string authentication of a GET (AWS "Authenticating Requests: Using Query Parameters"):
 * only `host` is signed and the payload is `UNSIGNED-PAYLOAD`, so any HTTP client can follow the URL.
 * `url` must already carry its path in canonical (RFC 3986) encoding.
 */
export function presignGet(url: URL, creds: SigV4Credentials, now: Date, expiresInSeconds: number): string {
  const amzDate = compactUtcTimestamp(now);
  const day = amzDate.slice(0, 8);
  const scope = `${day}/${creds.region}/s3/aws4_request`;
  const query: Array<[string, string]> = [
    ['X-Amz-Algorithm', 'AWS4-HMAC-SHA256'],
    ['X-Amz-Credential', `${creds.accessKeyId}/${scope}`],
    ['X-Amz-Date', amzDate],
    ['X-Amz-Expires', String(expiresInSeconds)],
    ...(creds.sessionToken ? ([['X-Amz-Security-Token', creds.sessionToken]] as Array<[string, string]>) : []),
    ['X-Amz-SignedHeaders', 'host'],
  ];
  const canonicalQuery = query
    .map(([k, v]) => [encodeRfc3986(k), encodeRfc3986(v)])
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const canonicalRequest = ['GET', url.pathname, canonicalQuery, `host:${url.host}\n`, 'host', 'UNSIGNED-PAYLOAD'].join('\n');
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256Hex(canonicalRequest)].join('\n');
  const signature = createHmac('sha256', signingKey(creds.secretAccessKey, day, creds.region, 's3'))
    .update(stringToSign, 'utf8')
    .digest('hex');
  return `${url.origin}${url.pathname}?${canonicalQuery}&X-Amz-Signature=${signature}`;
}

/** Region and keys only: an SDK identity may carry more (expiration, scope) that must not leak into a signature. */
function sigV4(target: S3SigningTarget, creds: S3SigningCredentials): SigV4Credentials {
  return { region: target.region, accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey, sessionToken: creds.sessionToken };
}

/** kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request"). */
function signingKey(secret: string, day: string, region: string, service: string): Buffer {
  const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data, 'utf8').digest();
  return hmac(hmac(hmac(hmac(`AWS4${secret}`, day), region), service), 'aws4_request');
}

function sha256Hex(s: string): string {
  return createHash('sha256').update(s, 'utf8').digest('hex');
}
