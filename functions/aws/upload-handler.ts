/**
 * The upload function's handler for API Gateway HTTP API (payload format 2.0). It only translates:
 * CORS, auth, validation and the response body all come from the shared `handleUploadRequest`, so the
 * contract is identical to the GCP function's.
 */
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { z } from 'zod';
import { handleUploadRequest, traceIdFrom, type UploadHttpDeps } from '../../shared/http/upload-http';
import { createInvocation } from '../../shared/invocation';

const apiEventSchema = z.object({
  version: z.literal('2.0'),
  headers: z.record(z.string(), z.string().optional()).optional(),
  body: z.string().optional(),
  isBase64Encoded: z.boolean().optional(),
  routeKey: z.string().optional(),
  rawPath: z.string().optional(),
  requestContext: z.object({ http: z.object({ method: z.string().min(1), path: z.string().optional() }), stage: z.string().optional() }),
});

/** The part of Lambda's context the handler uses. */
export interface LambdaContextLike {
  getRemainingTimeInMillis(): number;
}

/** Base64 bodies larger than this are not decoded (the shared code accepts 16 KiB of JSON). */
const MAX_RAW_BODY = 64 * 1024;

/**
 * Creates the Lambda handler for `POST /uploads` and its `OPTIONS` preflight. Never throws. The
 * invocation's deadline is Lambda's remaining time.
 */
export function createUploadHandler(deps: UploadHttpDeps): (event: unknown, context?: LambdaContextLike) => Promise<APIGatewayProxyStructuredResultV2> {
  return async (event, context) => {
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
    // An oversized body is passed on undecoded: the shared code answers 413 for it either way. API
    // Gateway passes a compressed body as sent (base64), and the shared code refuses it unread.
    const body = e.isBase64Encoded && raw.length <= MAX_RAW_BODY ? Buffer.from(raw, 'base64').toString('utf8') : raw;
    const traceId = traceIdFrom(headers);
    const inv = createInvocation({
      // Without a Lambda context (dev stack, tests): the configured timeout.
      deadline: Date.now() + (context ? context.getRemainingTimeInMillis() : deps.config.invocation.timeoutSeconds * 1000),
      traceId,
      logger: deps.logger.child({ traceId }),
    });
    try {
      const res = await handleUploadRequest(deps, { method: e.requestContext.http.method.toUpperCase(), path: unroutedPath(e), headers, body }, inv);
      return { statusCode: res.status, headers: res.headers, body: res.body, isBase64Encoded: false };
    } finally {
      inv.dispose();
    }
  };
}

/**
 * The path to check, when API Gateway did not route the request itself: a `$default` route and Lambda
 * function URLs pass every path. A named stage's prefix is not part of the function's path.
 */
function unroutedPath(e: z.infer<typeof apiEventSchema>): string | undefined {
  if (e.routeKey !== undefined && e.routeKey !== '$default') return undefined;
  let path = e.rawPath ?? e.requestContext.http.path ?? '/';
  const stage = e.requestContext.stage;
  if (stage && stage !== '$default' && (path === `/${stage}` || path.startsWith(`/${stage}/`))) path = path.slice(stage.length + 1) || '/';
  return path;
}
