/**
 * {@link UrlSigner} on GCS V4 signed URLs, computed here (Google's "V4 signing process") rather than by
 * `@google-cloud/storage`: loading that SDK cost the upload function about 150 ms of cold start, and
 * signing is a few string operations plus one RSA signature.
 *
 * An upload URL pins one object key, one content type, a byte range (`x-goog-content-length-range`,
 * enforced by GCS) and the object metadata (`x-goog-meta-*`): all are signed headers, so a holder of
 * the URL cannot change any of them. The browser must send exactly `UploadTarget.headers`.
 *
 * Only the signature bytes come from `google-auth-library` (see `google-auth.ts` for where the
 * credentials come from); the canonical request, the string to sign and the URL are built here:
 * - with a service-account key (local development, tests) the library signs locally;
 * - with an impersonated service account's ADC file, the library's IAM `signBlob` as that account;
 * - without a key (Cloud Functions / Cloud Run, workload identity federation) IAM `signBlob` for the
 *   runtime service account, which therefore needs `roles/iam.serviceAccountTokenCreator` on itself;
 * - with `signerEmail` (`PIXELPIPE_SIGNER_SERVICE_ACCOUNT`) always IAM `signBlob` as that account.
 */
import { createHash } from 'node:crypto';
import { ConfigError } from '../../shared/errors';
import { compactUtcTimestamp, encodeRfc3986 } from '../../shared/http/signing';
import type { CallOptions, Clock, SignUploadRequest, UploadTarget, UrlSigner } from '../../shared/ports';
import { defaultPolicy, resilient, type ResiliencePolicy } from '../../shared/resilience';
import { mapAuthError, type GoogleCredentials } from './google-auth';

/** Longest upload URL lifetime we hand out: a leaked URL is only useful briefly. */
export const MAX_UPLOAD_EXPIRY_SECONDS = 15 * 60;
/** V4 limit. */
const MAX_READ_EXPIRY_SECONDS = 7 * 24 * 3600;
const DEFAULT_HOST = 'https://storage.googleapis.com';
const ALGORITHM = 'GOOG4-RSA-SHA256';

/** Options of {@link GcsUrlSigner}. */
export interface GcsUrlSignerOptions {
  clock?: Clock;
  policy?: ResiliencePolicy;
  /**
   * Public base URL of the URLs, `scheme://host[:port]` (default `https://storage.googleapis.com`). A
   * host without a scheme gets `https://`, as `STORAGE_EMULATOR_HOST` does in Google's SDK.
   */
  host?: string;
  /**
   * Sign as this service account (`PIXELPIPE_SIGNER_SERVICE_ACCOUNT`, through IAM `signBlob`) instead of
   * the one the credentials are.
   */
  signerEmail?: string;
}

const META_KEY = /^[a-z0-9][a-z0-9_-]{0,127}$/;
// Header values must survive a browser's fetch(): printable ASCII only (request-upload URI-encodes names).
const META_VALUE = /^[\x20-\x7e]{0,2048}$/;
const CONTENT_TYPE = /^[\x21-\x7e][\x20-\x7e]{0,255}$/;

/** One URL to sign: the method, the object and what the holder must send (signed headers, lower-case names). */
interface SignedRequest {
  method: 'GET' | 'PUT';
  bucket: string;
  key: string;
  seconds: number;
  headers: Record<string, string>;
}

/** Signs GCS V4 upload (PUT) and read (GET) URLs. */
export class GcsUrlSigner implements UrlSigner {
  private readonly clock: Clock;
  private readonly policy: ResiliencePolicy;
  private readonly origin: string;
  private readonly hostHeader: string;

  constructor(
    private readonly credentials: GoogleCredentials,
    private readonly options: GcsUrlSignerOptions = {},
  ) {
    this.clock = options.clock ?? { now: () => new Date() };
    // Signing with a key is local; with IAM signBlob (and a token from the metadata server) it is a
    // network call worth retrying.
    this.policy = options.policy ?? defaultPolicy('gcs-signer', { timeoutMs: 10_000 });
    ({ origin: this.origin, host: this.hostHeader } = parseHost(options.host ?? DEFAULT_HOST));
  }

  async signUpload(r: SignUploadRequest, options: CallOptions = {}): Promise<UploadTarget> {
    if (!Number.isInteger(r.expiresInSeconds) || r.expiresInSeconds < 1 || r.expiresInSeconds > MAX_UPLOAD_EXPIRY_SECONDS) {
      throw new RangeError(`upload URLs expire after 1..${MAX_UPLOAD_EXPIRY_SECONDS} s, got ${r.expiresInSeconds}`);
    }
    if (!Number.isInteger(r.minBytes) || !Number.isInteger(r.maxBytes) || r.minBytes < 0 || r.maxBytes < r.minBytes) {
      throw new RangeError(`invalid byte range ${r.minBytes},${r.maxBytes}`);
    }
    // A signed header value must be exactly what the browser sends; a line break could smuggle headers.
    if (!CONTENT_TYPE.test(r.contentType)) throw new RangeError('the content type must be printable ASCII');
    const headers: Record<string, string> = {
      'content-type': r.contentType,
      'x-goog-content-length-range': `${r.minBytes},${r.maxBytes}`,
    };
    for (const [k, v] of Object.entries(r.metadata)) {
      const key = k.toLowerCase();
      if (!META_KEY.test(key)) throw new RangeError(`metadata key "${k}" is not a valid header name part`);
      if (!META_VALUE.test(v)) throw new RangeError(`metadata value of "${k}" must be printable ASCII (URI-encode it)`);
      headers[`x-goog-meta-${key}`] = v;
    }
    const url = await this.sign({ method: 'PUT', bucket: r.bucket, key: r.key, seconds: r.expiresInSeconds, headers }, options);
    return { method: 'PUT', url, headers };
  }

  async signRead(bucket: string, key: string, expiresInSeconds: number, options: CallOptions = {}): Promise<string> {
    if (!Number.isInteger(expiresInSeconds) || expiresInSeconds < 1 || expiresInSeconds > MAX_READ_EXPIRY_SECONDS) {
      throw new RangeError(`read URLs expire after 1..${MAX_READ_EXPIRY_SECONDS} s, got ${expiresInSeconds}`);
    }
    return this.sign({ method: 'GET', bucket, key, seconds: expiresInSeconds, headers: {} }, options);
  }

  private sign({ method, bucket, key, seconds, headers }: SignedRequest, call: CallOptions): Promise<string> {
    if (!bucket || !key) throw new RangeError('a signed URL needs a bucket and an object key');
    const now = this.clock.now();
    return resilient(
      this.policy,
      `sign ${method} ${bucket}/${key}`,
      async (signal) => {
        try {
          const email = await this.signerEmail();
          const { stringToSign, resource } = buildV4Request({ method, bucket, key, host: this.hostHeader, headers, email, now, expiresInSeconds: seconds });
          const signature = await this.credentials.signBlob(email, stringToSign, { signal });
          return `${this.origin}${resource}&X-Goog-Signature=${signature.toString('hex')}`;
        } catch (err) {
          throw mapAuthError(err, 'signing');
        }
      },
      call,
    );
  }

  private async signerEmail(): Promise<string> {
    if (this.options.signerEmail) return this.options.signerEmail;
    const email = await this.credentials.serviceAccountEmail();
    if (!email) {
      throw new ConfigError(
        'PIXELPIPE_SIGNER_SERVICE_ACCOUNT',
        `${await this.credentials.source()} credentials are not a service account and cannot sign URLs: set it to a service account you hold roles/iam.serviceAccountTokenCreator on`,
      );
    }
    return email;
  }
}

/** What {@link buildV4Request} signs: one request as Google's V4 algorithm sees it. */
export interface V4RequestInput {
  method: string;
  bucket: string;
  key: string;
  /** The `host` header the client will send (`host[:port]`). */
  host: string;
  /** Further signed headers; names are compared case-insensitively. */
  headers: Record<string, string>;
  /** The signing service account, named in the credential scope. */
  email: string;
  now: Date;
  expiresInSeconds: number;
}

/** The texts of a V4 signature, before the RSA step. */
export interface V4Request {
  canonicalRequest: string;
  stringToSign: string;
  /** Path and query of the signed URL without `X-Goog-Signature`, to be put after the origin. */
  resource: string;
}

/**
 * Google's "V4 signing process" (path-style, `UNSIGNED-PAYLOAD`) as a pure function, so that it can be
 * checked against Google's published conformance vectors without credentials or a clock.
 */
export function buildV4Request(r: V4RequestInput): V4Request {
  const stamp = compactUtcTimestamp(r.now);
  const scope = `${stamp.slice(0, 8)}/auto/storage/goog4_request`;
  const signed: Record<string, string> = { host: r.host };
  for (const [name, value] of Object.entries(r.headers)) signed[name.toLowerCase()] = value;
  const names = Object.keys(signed).sort();
  const path = `/${encodeRfc3986(r.bucket)}/${r.key.split('/').map(encodeRfc3986).join('/')}`;
  // All five parameter names are ASCII and already in byte order; values are encoded like the path.
  const query = [
    ['X-Goog-Algorithm', ALGORITHM],
    ['X-Goog-Credential', `${r.email}/${scope}`],
    ['X-Goog-Date', stamp],
    ['X-Goog-Expires', String(r.expiresInSeconds)],
    ['X-Goog-SignedHeaders', names.join(';')],
  ]
    .map(([k, v]) => `${k}=${encodeRfc3986(v)}`)
    .join('&');
  const canonicalRequest = [
    r.method,
    path,
    query,
    names.map((n) => `${n}:${signed[n].trim().replace(/\s+/g, ' ')}\n`).join(''),
    names.join(';'),
    // The body is not part of the signature; the range header bounds its size instead.
    'UNSIGNED-PAYLOAD',
  ].join('\n');
  const stringToSign = [ALGORITHM, stamp, scope, createHash('sha256').update(canonicalRequest).digest('hex')].join('\n');
  return { canonicalRequest, stringToSign, resource: `${path}?${query}` };
}

/** The URL origin and the `host` header value a client will send to it (with a non-default port). */
function parseHost(value: string): { origin: string; host: string } {
  let u: URL;
  try {
    u = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `https://${value}`);
  } catch {
    throw new RangeError(`GcsUrlSigner: host "${value}" is not a URL`);
  }
  if ((u.protocol !== 'https:' && u.protocol !== 'http:') || (u.pathname !== '/' && u.pathname !== '') || u.search || u.hash || u.username) {
    throw new RangeError(`GcsUrlSigner: host "${value}" must be scheme://host[:port] (path-style URLs are built on it)`);
  }
  return { origin: u.origin, host: u.host };
}
