/**
 * The upload endpoint's HTTP behaviour, independent of the platform's request types, so the GCP
 * (functions-framework/Express) and AWS (API Gateway v2) handlers are thin translations of it.
 */
import { randomBytes } from 'node:crypto';
import type { PixelpipeConfig } from '../config';
import { ClientError, PixelpipeError } from '../errors';
import { callOptions, type Invocation } from '../invocation';
import type { Authenticator, Logger } from '../ports';
import { requestUpload, type UploadDeps } from '../usecases/request-upload';

export interface HttpRequest {
  method: string;
  /**
   * The request path without the query, where no router matched it already (functions-framework,
   * a Lambda function URL). Only {@link UPLOAD_PATHS} answer; absent means a router did the matching.
   */
  path?: string;
  /** Header names lower-case. */
  headers: Record<string, string | undefined>;
  /** Raw body text or bytes, or an already parsed object. Ignored when `readBody` is given. */
  body?: unknown;
  /**
   * Reads the raw body, at most `maxBytes` of it (more: `ClientError(413)`). Called only once the
   * request passed every check that needs no body, so refused requests are never read.
   */
  readBody?: (maxBytes: number, signal: AbortSignal) => Promise<Buffer>;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface UploadHttpDeps extends UploadDeps {
  authenticator: Authenticator;
  logger: Logger;
  config: PixelpipeConfig;
}

/** The largest JSON body accepted; a real one is under 1 KiB. */
export const MAX_BODY = 16 * 1024;

/**
 * The paths the upload endpoint answers where nothing routed the request: the function's own URL
 * (`/`) and `/uploads`, the path the README and the AWS HTTP API use. Anything else is a 404, so the
 * function does not pose as every path of its host.
 */
export const UPLOAD_PATHS: readonly string[] = ['/', '/uploads'];

/**
 * Handles one request: path, CORS, method, content encoding, JSON, auth, use case, and error → status
 * mapping, within the invocation `inv` (its deadline bounds the key fetch and the signing). Never throws.
 */
export async function handleUploadRequest(deps: UploadHttpDeps, req: HttpRequest, inv: Invocation): Promise<HttpResponse> {
  const cors = corsHeaders(deps.config, req.headers.origin);
  const log = inv.logger;
  try {
    if (req.path !== undefined && !UPLOAD_PATHS.includes(req.path)) throw new ClientError(404, 'not_found', 'no such endpoint');
    if (req.headers.origin && !cors['access-control-allow-origin']) {
      throw new ClientError(403, 'origin_not_allowed', 'this origin may not call the upload endpoint');
    }
    if (req.method === 'OPTIONS') return { status: 204, headers: { ...cors, 'access-control-max-age': '600' }, body: '' };
    if (req.method !== 'POST') throw new ClientError(405, 'method_not_allowed', 'use POST');
    // A compressed body is refused unread: 211 bytes of brotli inflate to 128 MiB, and nothing here
    // needs compression for a body of under 1 KiB.
    if (!isIdentityEncoding(req.headers['content-encoding'])) {
      throw new ClientError(415, 'content_encoding_not_allowed', 'send the body without Content-Encoding');
    }
    const body = parseBody(req.readBody ? await req.readBody(MAX_BODY, inv.signal) : req.body);
    const principal = await deps.authenticator.authenticate(req.headers.authorization, callOptions(inv));
    const response = await requestUpload(deps, principal, body, inv);
    log.info('upload signed', { imageId: response.id, owner: response.key.split('/').slice(-2, -1)[0] });
    return json(201, response, cors);
  } catch (err) {
    if (err instanceof ClientError) {
      log.info('upload request refused', { reason: err.code, status: err.status });
      return json(
        err.status,
        { error: { code: err.code, message: err.message } },
        { ...cors, ...(err.status === 401 ? { 'www-authenticate': 'Bearer' } : {}) },
      );
    }
    if (err instanceof PixelpipeError && err.retryable) {
      log.error('upload request failed (transient)', { err, reason: err.code });
      return json(503, { error: { code: err.code, message: 'temporarily unavailable, retry later' } }, { ...cors, 'retry-after': '2' });
    }
    log.error('upload request failed', { err, reason: 'internal' });
    return json(500, { error: { code: 'internal', message: 'internal error' } }, cors);
  }
}

/** True for no `Content-Encoding` or only `identity` (RFC 9110 §8.4; the tokens are case-insensitive). */
export function isIdentityEncoding(header: string | undefined): boolean {
  if (header === undefined) return true;
  return header
    .split(',')
    .map((t) => t.trim().toLowerCase())
    .every((t) => t === '' || t === 'identity');
}

function parseBody(body: unknown): unknown {
  if (body === undefined || body === null || body === '') throw new ClientError(400, 'invalid_json', 'a JSON body is required');
  if (Buffer.isBuffer(body)) {
    if (body.length > MAX_BODY) throw new ClientError(413, 'payload_too_large', 'the request body is too large');
    if (body.length === 0) throw new ClientError(400, 'invalid_json', 'a JSON body is required');
    body = body.toString('utf8');
  }
  if (typeof body !== 'string') return body;
  if (body.length > MAX_BODY) throw new ClientError(413, 'payload_too_large', 'the request body is too large');
  try {
    return JSON.parse(body) as unknown;
  } catch {
    throw new ClientError(400, 'invalid_json', 'the body is not valid JSON');
  }
}

function json(status: number, body: unknown, headers: Record<string, string>): HttpResponse {
  return { status, headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers }, body: JSON.stringify(body) };
}

/** CORS headers for an allowed origin only; never `*`, because the endpoint takes credentials. */
export function corsHeaders(config: PixelpipeConfig, origin: string | undefined): Record<string, string> {
  if (!origin || !config.upload.corsOrigins.includes(origin)) return {};
  return {
    'access-control-allow-origin': origin,
    'access-control-allow-methods': 'POST, OPTIONS',
    'access-control-allow-headers': 'authorization, content-type, traceparent',
    vary: 'Origin',
  };
}

/**
 * The trace id that follows the image end to end: W3C `traceparent`, Google's `x-cloud-trace-context`,
 * AWS's `x-amzn-trace-id`, or a fresh one.
 */
export function traceIdFrom(headers: Record<string, string | undefined>): string {
  const tp = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(headers.traceparent ?? '');
  if (tp && !/^0+$/.test(tp[1])) return tp[1];
  const gcp = /^([0-9a-fA-F]{32})(?:\/|$)/.exec(headers['x-cloud-trace-context'] ?? '');
  if (gcp) return gcp[1].toLowerCase();
  const aws = /Root=1-([0-9a-f]{8})-([0-9a-f]{24})/.exec(headers['x-amzn-trace-id'] ?? '');
  if (aws) return aws[1] + aws[2];
  return randomBytes(16).toString('hex');
}
