/**
 * An independent implementation of Google Cloud Storage's V4 signed-URL check, written from Google's
 * published algorithm (canonical request → string to sign → RSA-SHA256), not from the SDK's signer.
 *
 * Used twice: by `v4-signature.test.ts` to prove that what `GcsUrlSigner` produces is what GCS will
 * accept (and that tampering is caught), and by the fake GCS server (`test/servers/gcs-fake.ts`) to
 * refuse uploads the way GCS does. Keeping one verifier means the fake cannot be more lenient than the
 * unit test that pins the algorithm.
 */
import { createHash, createPublicKey, verify as rsaVerify, type KeyObject } from 'node:crypto';

/** A request as a server sees it. */
export interface V4Request {
  method: string;
  /** Path and query exactly as in the request line, e.g. `/bucket/originals/a%20b?X-Goog-Algorithm=…`. */
  url: string;
  /** Header names lower-case (Node's `IncomingMessage.headers`). */
  headers: Record<string, string | string[] | undefined>;
}

export interface V4VerifyOptions {
  /** Public key (PEM or KeyObject) of each service account allowed to sign, by client email. */
  keys: Record<string, string | KeyObject>;
  now: Date;
  /**
   * The host the signer had in mind, when it differs from the request's Host header (e.g. a proxy in
   * between). Defaults to the Host header as sent, port included.
   */
  host?: string;
  /** Clock skew tolerated for `X-Goog-Date` in the future, seconds (GCS allows a little). */
  skewSeconds?: number;
}

/** Why a request was refused, with the HTTP status and XML error code GCS uses for it. */
export interface V4Failure {
  ok: false;
  status: 400 | 403;
  code: 'SignatureDoesNotMatch' | 'ExpiredToken' | 'AuthorizationQueryParametersError' | 'AccessDenied' | 'MissingSecurityHeader';
  message: string;
}

export interface V4Success {
  ok: true;
  email: string;
  signedHeaders: string[];
  /** Canonical header values of the signed headers, by lower-case name. */
  headerValues: Record<string, string>;
  signedAt: Date;
  expiresAt: Date;
  expiresInSeconds: number;
  bucket: string;
  /** Decoded object name. */
  object: string;
  canonicalRequest: string;
  stringToSign: string;
}

export type V4Result = V4Success | V4Failure;

const MAX_EXPIRES = 7 * 24 * 3600;

/** RFC 3986 percent-encoding: everything but the unreserved characters; `/` too unless `keepSlash`. */
export function rfc3986(value: string, keepSlash = false): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const c = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-._~]/.test(c) || (keepSlash && c === '/')) out += c;
    else out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** `20260102T030405Z` → Date, or null. */
export function parseGoogDate(s: string): Date | null {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) return null;
  const d = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
  return Number.isNaN(d.getTime()) ? null : d;
}

/** The canonical header value: trimmed, runs of whitespace folded, multiple values joined by a comma. */
function canonicalValue(v: string | string[]): string {
  const joined = Array.isArray(v) ? v.join(',') : v;
  return joined.trim().replace(/\s+/g, ' ');
}

/** Splits `/bucket/object…` into bucket and decoded object name (path-style URLs only). */
export function parseResourcePath(rawPath: string): { bucket: string; object: string } | null {
  const m = /^\/([^/]+)\/(.+)$/.exec(rawPath);
  if (!m) return null;
  try {
    return { bucket: decodeURIComponent(m[1]), object: decodeURIComponent(m[2]) };
  } catch {
    return null;
  }
}

/** Builds the V4 canonical request for a received request (the algorithm of Google's "V4 signing process"). */
export function canonicalRequestOf(req: V4Request, signedHeaders: string[], host?: string): string {
  const q = req.url.indexOf('?');
  const rawPath = q < 0 ? req.url : req.url.slice(0, q);
  const rawQuery = q < 0 ? '' : req.url.slice(q + 1);
  const resource = parseResourcePath(rawPath);
  const path = resource ? `/${rfc3986(resource.bucket)}/${rfc3986(resource.object, true)}` : rawPath;
  const params = new URLSearchParams(rawQuery);
  const query = [...params.entries()]
    .filter(([k]) => k !== 'X-Goog-Signature')
    .map(([k, v]) => [rfc3986(k), rfc3986(v)] as const)
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const headers = signedHeaders
    .map((name) => {
      const raw = name === 'host' && host !== undefined ? host : req.headers[name];
      return `${name}:${raw === undefined ? '' : canonicalValue(raw)}\n`;
    })
    .join('');
  const payload = canonicalValue(req.headers['x-goog-content-sha256'] ?? 'UNSIGNED-PAYLOAD');
  return [req.method.toUpperCase(), path, query, headers, signedHeaders.join(';'), payload].join('\n');
}

/**
 * Verifies a V4 signed request: algorithm, credential scope, date and expiry, that every signed header
 * was sent, and the RSA-SHA256 signature over the recomputed string to sign. Never throws.
 */
export function verifyV4(req: V4Request, options: V4VerifyOptions): V4Result {
  const fail = (status: 400 | 403, code: V4Failure['code'], message: string): V4Failure => ({ ok: false, status, code, message });
  const q = req.url.indexOf('?');
  const params = new URLSearchParams(q < 0 ? '' : req.url.slice(q + 1));
  const algorithm = params.get('X-Goog-Algorithm');
  const credential = params.get('X-Goog-Credential');
  const dateText = params.get('X-Goog-Date');
  const expiresText = params.get('X-Goog-Expires');
  const signedHeadersText = params.get('X-Goog-SignedHeaders');
  const signature = params.get('X-Goog-Signature');
  if (!algorithm || !credential || !dateText || !expiresText || !signedHeadersText || !signature) {
    return fail(
      400,
      'AuthorizationQueryParametersError',
      'a V4 signed URL needs X-Goog-Algorithm, -Credential, -Date, -Expires, -SignedHeaders and -Signature',
    );
  }
  if (algorithm !== 'GOOG4-RSA-SHA256') return fail(400, 'AuthorizationQueryParametersError', `unsupported algorithm ${algorithm}`);
  const signedAt = parseGoogDate(dateText);
  if (!signedAt) return fail(400, 'AuthorizationQueryParametersError', 'X-Goog-Date must look like 20260101T000000Z');
  if (!/^\d+$/.test(expiresText)) return fail(400, 'AuthorizationQueryParametersError', 'X-Goog-Expires must be a number of seconds');
  const expiresInSeconds = Number(expiresText);
  if (expiresInSeconds < 1 || expiresInSeconds > MAX_EXPIRES)
    return fail(400, 'AuthorizationQueryParametersError', 'X-Goog-Expires must be between 1 and 604800');
  // Credential: <email>/<yyyymmdd>/<location>/storage/goog4_request
  const parts = credential.split('/');
  if (parts.length !== 5 || parts[3] !== 'storage' || parts[4] !== 'goog4_request' || parts[1] !== dateText.slice(0, 8)) {
    return fail(
      400,
      'AuthorizationQueryParametersError',
      'X-Goog-Credential must be <email>/<date>/<location>/storage/goog4_request with the date of X-Goog-Date',
    );
  }
  const email = parts[0];
  const key = options.keys[email];
  if (!key) return fail(403, 'AccessDenied', `${email} may not sign requests for this server`);
  const now = options.now.getTime();
  if (signedAt.getTime() - (options.skewSeconds ?? 60) * 1000 > now)
    return fail(400, 'AuthorizationQueryParametersError', 'request is not valid yet (X-Goog-Date is in the future)');
  const expiresAt = new Date(signedAt.getTime() + expiresInSeconds * 1000);
  if (now > expiresAt.getTime()) return fail(400, 'ExpiredToken', `the signed URL expired at ${expiresAt.toISOString()}`);

  const signedHeaders = signedHeadersText.split(';');
  const sorted = [...signedHeaders].sort();
  if (signedHeaders.some((h, i) => h !== sorted[i] || h !== h.toLowerCase() || h === '')) {
    return fail(400, 'AuthorizationQueryParametersError', 'X-Goog-SignedHeaders must be lower-case names sorted and separated by ";"');
  }
  if (!signedHeaders.includes('host')) return fail(400, 'AuthorizationQueryParametersError', 'the host header must be signed');
  for (const name of signedHeaders) {
    if (name !== 'host' && req.headers[name] === undefined) return fail(403, 'SignatureDoesNotMatch', `the signed header ${name} was not sent`);
  }
  const canonicalRequest = canonicalRequestOf(req, signedHeaders, options.host);
  const scope = parts.slice(1).join('/');
  const stringToSign = ['GOOG4-RSA-SHA256', dateText, scope, createHash('sha256').update(canonicalRequest).digest('hex')].join('\n');
  if (!/^[0-9a-f]+$/i.test(signature)) return fail(403, 'SignatureDoesNotMatch', 'X-Goog-Signature must be hex');
  const publicKey = typeof key === 'string' ? createPublicKey(key) : key;
  let valid = false;
  try {
    valid = rsaVerify('RSA-SHA256', Buffer.from(stringToSign, 'utf8'), publicKey, Buffer.from(signature, 'hex'));
  } catch {
    valid = false;
  }
  if (!valid) return fail(403, 'SignatureDoesNotMatch', 'the request signature we calculated does not match the signature you provided');

  const q2 = req.url.indexOf('?');
  const resource = parseResourcePath(q2 < 0 ? req.url : req.url.slice(0, q2));
  const headerValues: Record<string, string> = {};
  for (const name of signedHeaders) {
    const raw = name === 'host' && options.host !== undefined ? options.host : req.headers[name];
    if (raw !== undefined) headerValues[name] = canonicalValue(raw);
  }
  return {
    ok: true,
    email,
    signedHeaders,
    headerValues,
    signedAt,
    expiresAt,
    expiresInSeconds,
    bucket: resource?.bucket ?? '',
    object: resource?.object ?? '',
    canonicalRequest,
    stringToSign,
  };
}

/** Parses `x-goog-content-length-range: min,max` (inclusive); null when malformed. */
export function parseLengthRange(value: string | undefined): { min: number; max: number } | null {
  const m = /^\s*(\d+)\s*,\s*(\d+)\s*$/.exec(value ?? '');
  if (!m) return null;
  const min = Number(m[1]);
  const max = Number(m[2]);
  return min <= max ? { min, max } : null;
}
