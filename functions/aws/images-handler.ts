/**
 * The images function's handler for API Gateway HTTP API (payload format 2.0), routes
 * `GET /images`, `GET /images/{id}`, `DELETE /images/{id}` (and their `OPTIONS`). It only translates:
 * routing, CORS, auth and the bodies come from the shared `handleImagesRequest`, so the contract is
 * identical to the GCP function's and the dev stack's.
 */
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { handleImagesRequest, type ImagesHttpDeps } from '../../shared/http/images-http';
import { traceIdFrom } from '../../shared/http/upload-http';
import { createInvocation } from '../../shared/invocation';
import { httpApiEventSchema, lowerCaseHeaders, stagelessPath, unsupportedEvent } from './http-api';
import { lambdaInvocationInit, type LambdaContext } from './lambda-invocation';

/** Creates the Lambda handler. Never throws. The invocation's deadline is Lambda's remaining time. */
export function createImagesHandler(deps: ImagesHttpDeps): (event: unknown, context?: LambdaContext) => Promise<APIGatewayProxyStructuredResultV2> {
  return async (event, context) => {
    const parsed = httpApiEventSchema.safeParse(event);
    if (!parsed.success) {
      deps.logger.error('images: not an API Gateway HTTP API v2 event', { reason: 'invalid_event' });
      return unsupportedEvent();
    }
    const e = parsed.data;
    const headers = lowerCaseHeaders(e);
    // The raw query string: API Gateway joins repeated parameters with commas in `queryStringParameters`.
    const query: Record<string, string | string[]> = {};
    for (const [k, v] of new URLSearchParams(e.rawQueryString ?? '')) {
      const prev = query[k];
      query[k] = prev === undefined ? v : [...(Array.isArray(prev) ? prev : [prev]), v];
    }
    const inv = createInvocation(lambdaInvocationInit(deps, context, traceIdFrom(headers)));
    try {
      const res = await handleImagesRequest(deps, { method: e.requestContext.http.method.toUpperCase(), path: stagelessPath(e), query, headers }, inv);
      return { statusCode: res.status, headers: res.headers, body: res.body, isBase64Encoded: false };
    } finally {
      inv.dispose();
    }
  };
}
