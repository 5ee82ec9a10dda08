/**
 * The upload function's handler for API Gateway HTTP API (payload format 2.0). It only translates:
 * CORS, auth, validation and the response body all come from the shared `handleUploadRequest`, so the
 * contract is identical to the GCP function's.
 */
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { handleUploadRequest, traceIdFrom, type UploadHttpDeps } from '../../shared/http/upload-http';
import { createInvocation } from '../../shared/invocation';
import { httpApiEventSchema, lowerCaseHeaders, stagelessPath, unsupportedEvent, type HttpApiEvent } from './http-api';
import { lambdaInvocationInit, type LambdaContext } from './lambda-invocation';

/** Base64 bodies larger than this are not decoded (the shared code accepts 16 KiB of JSON). */
const MAX_RAW_BODY = 64 * 1024;

/**
 * Creates the Lambda handler for `POST /uploads` and its `OPTIONS` preflight. Never throws. The
 * invocation's deadline is Lambda's remaining time.
 */
export function createUploadHandler(deps: UploadHttpDeps): (event: unknown, context?: LambdaContext) => Promise<APIGatewayProxyStructuredResultV2> {
  return async (event, context) => {
    const parsed = httpApiEventSchema.safeParse(event);
    if (!parsed.success) {
      deps.logger.error('upload: not an API Gateway HTTP API v2 event', { reason: 'invalid_event' });
      return unsupportedEvent();
    }
    const e = parsed.data;
    const headers = lowerCaseHeaders(e);
    const raw = e.body ?? '';
    // An oversized body is passed on undecoded: the shared code answers 413 for it either way. API
    // Gateway passes a compressed body as sent (base64), and the shared code refuses it unread.
    const body = e.isBase64Encoded && raw.length <= MAX_RAW_BODY ? Buffer.from(raw, 'base64').toString('utf8') : raw;
    const inv = createInvocation(lambdaInvocationInit(deps, context, traceIdFrom(headers)));
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
function unroutedPath(e: HttpApiEvent): string | undefined {
  if (e.routeKey !== undefined && e.routeKey !== '$default') return undefined;
  return stagelessPath(e);
}
