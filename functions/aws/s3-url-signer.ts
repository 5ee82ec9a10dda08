/**
 * {@link UrlSigner} for S3: uploads go through a presigned POST, reads through a SigV4 presigned GET.
 *
 * Why POST and not PUT: a presigned PUT URL cannot bound the body size, so a client could store a
 * multi-gigabyte "image". A POST policy carries a `content-length-range` condition that S3 itself
 * enforces, plus exact-match conditions on key, Content-Type and metadata.
 */
import { createHash, createHmac } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import { createPresignedPost } from '@aws-sdk/s3-presigned-post';
import type { Clock, SignUploadRequest, UploadTarget, UrlSigner } from '../../shared/ports';
import { mapAwsError } from './sdk-errors';

/** Options for {@link S3UrlSigner}. */
export interface S3UrlSignerOptions {
  /** Time source for presigned GETs (the POST policy uses the SDK's clock, corrected for skew). */
  clock?: Clock;
}

/** Longest upload policy lifetime handed out (15 minutes), as for GCS. */
export const MAX_UPLOAD_EXPIRY_SECONDS = 15 * 60;

/** Signs S3 uploads (presigned POST) and reads (presigned GET) with the client's credentials. */
export class S3UrlSigner implements UrlSigner {
  private readonly clock: Clock;

  constructor(
    private readonly client: S3Client,
    options: S3UrlSignerOptions = {},
  ) {
    this.clock = options.clock ?? { now: () => new Date() };
  }

  async signUpload(r: SignUploadRequest): Promise<UploadTarget> {
    // Same bounds as the GCS signer: a leaked upload policy is only useful briefly, and never unbounded.
    if (!Number.isInteger(r.expiresInSeconds) || r.expiresInSeconds < 1 || r.expiresInSeconds > MAX_UPLOAD_EXPIRY_SECONDS) {
      throw new RangeError(`upload policies expire after 1..${MAX_UPLOAD_EXPIRY_SECONDS} s, got ${r.expiresInSeconds}`);
    }
    if (!Number.isInteger(r.minBytes) || !Number.isInteger(r.maxBytes) || r.minBytes < 0 || r.maxBytes < r.minBytes) {
      throw new RangeError(`invalid byte range ${r.minBytes},${r.maxBytes}`);
    }
    const meta: Record<string, string> = {};
    for (const [k, v] of Object.entries(r.metadata)) meta[`x-amz-meta-${k.toLowerCase()}`] = v;
    try {
      // Every entry of `Fields` also becomes an exact-match condition, so the browser must send them unchanged.
      const { url, fields } = await createPresignedPost(this.client, {
        Bucket: r.bucket,
        Key: r.key,
        Expires: r.expiresInSeconds,
        Fields: { 'Content-Type': r.contentType, ...meta },
        Conditions: [
          ['eq', '$key', r.key],
          ['eq', '$Content-Type', r.contentType],
          ['content-length-range', r.minBytes, r.maxBytes],
        ],
      });
      return { method: 'POST', url, fields, headers: {} };
    } catch (err) {
      throw mapAwsError(err, 'sign s3 upload', 'internal');
    }
  }

  async signRead(bucket: string, key: string, expiresInSeconds: number): Promise<string> {
    const cfg = this.client.config;
    const [region, creds] = await Promise.all([cfg.region(), cfg.credentials()]);
    const url = await objectUrl(this.client, bucket, key, region);
    return presignGet(url, { region, accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey, sessionToken: creds.sessionToken }, this.clock.now(), expiresInSeconds);
  }
}

/**
 * The object's URL as the client would address it: the configured endpoint (path style when asked),
 * else virtual-hosted style, falling back to path style for bucket names that break TLS wildcards.
 */
async function objectUrl(client: S3Client, bucket: string, key: string, region: string): Promise<URL> {
  const path = key.split('/').map(encodeRfc3986).join('/');
  const ep = client.config.endpoint ? await client.config.endpoint() : undefined;
  if (ep) {
    const base = `${ep.protocol}//${ep.hostname}${ep.port ? `:${ep.port}` : ''}${(ep.path ?? '').replace(/\/$/, '')}`;
    return client.config.forcePathStyle ? new URL(`${base}/${bucket}/${path}`) : new URL(`${ep.protocol}//${bucket}.${ep.hostname}${ep.port ? `:${ep.port}` : ''}/${path}`);
  }
  if (client.config.forcePathStyle || bucket.includes('.')) return new URL(`https://s3.${region}.amazonaws.com/${bucket}/${path}`);
  return new URL(`https://${bucket}.s3.${region}.amazonaws.com/${path}`);
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
  const amzDate = now.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
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
  const signature = createHmac('sha256', signingKey(creds.secretAccessKey, day, creds.region, 's3')).update(stringToSign, 'utf8').digest('hex');
  return `${url.origin}${url.pathname}?${canonicalQuery}&X-Amz-Signature=${signature}`;
}

/** kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request"). */
function signingKey(secret: string, day: string, region: string, service: string): Buffer {
  const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data, 'utf8').digest();
  return hmac(hmac(hmac(hmac(`AWS4${secret}`, day), region), service), 'aws4_request');
}

function sha256Hex(s: string): string {
  return createHash('sha256').update(s, 'utf8').digest('hex');
}

/** URI-encodes everything but the RFC 3986 unreserved characters, as SigV4 requires. */
function encodeRfc3986(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
