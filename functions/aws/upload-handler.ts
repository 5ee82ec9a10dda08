/**
 * The upload function's handler for API Gateway HTTP API (payload format 2.0). It only translates:
 * CORS, auth, validation and the response body all come from the shared `handleUploadRequest`, so the
 * contract is identical to the GCP function's.
 */
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { z } from 'zod';
import { handleUploadRequest, type UploadHttpDeps } from '../../shared/http/upload-http';

const apiEventSchema = z.object({
  version: z.literal('2.0'),
  headers: z.record(z.string(), z.string().optional()).optional(),
  body: z.string().optional(),
  isBase64Encoded: z.boolean().optional(),
  requestContext: z.object({ http: z.object({ method: z.string().min(1) }) }),
});

/** Base64 bodies larger than this are not decoded (the shared code accepts 16 KiB of JSON). */
const MAX_RAW_BODY = 64 * 1024;

/** Creates the Lambda handler for `POST /uploads` and its `OPTIONS` preflight. Never throws. */
export function createUploadHandler(deps: UploadHttpDeps): (event: unknown) => Promise<APIGatewayProxyStructuredResultV2> {
  return async (event) => {
    const parsed = apiEventSchema.safeParse(event);
    if (!parsed.success) {
      deps.logger.error('upload: not an API Gateway HTTP API v2 event', { reason: 'invalid_event' });
      return {
        statusCode: 400,
        headers: { 'content-type': 'application/json; charset=utf-8' },
        body: JSON.stringify({ error: { code: 'invalid_request', message: 'unsupported event' } }),
      };
    }
    const e = parsed.data;
    // HTTP APIs already lower-case header names; normalising again costs nothing and guards other callers.
    const headers: Record<string, string | undefined> = {};
    for (const [k, v] of Object.entries(e.headers ?? {})) headers[k.toLowerCase()] = v;
    const raw = e.body ?? '';
    // An oversized body is passed on undecoded: the shared code answers 413 for it either way.
    const body = e.isBase64Encoded && raw.length <= MAX_RAW_BODY ? Buffer.from(raw, 'base64').toString('utf8') : raw;
    const res = await handleUploadRequest(deps, { method: e.requestContext.http.method.toUpperCase(), headers, body });
    return { statusCode: res.status, headers: res.headers, body: res.body, isBase64Encoded: false };
  };
}
