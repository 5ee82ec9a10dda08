/**
 * Text rules both cloud URL signers follow (AWS SigV4 and GCS V4 were designed alike): the same
 * percent-encoding of paths and query values, and the same compact UTC timestamp.
 */

/** Percent-encodes everything but the RFC 3986 unreserved characters (`A-Z a-z 0-9 - . _ ~`). */
export function encodeRfc3986(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** `20260102T030405Z`: the `X-Amz-Date` / `X-Goog-Date` format. */
export function compactUtcTimestamp(d: Date): string {
  return d
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '');
}
