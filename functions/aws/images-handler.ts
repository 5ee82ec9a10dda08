/**
 * The images function's handler for API Gateway HTTP API (payload format 2.0), routes
 * `GET /images`, `GET /images/{id}`, `DELETE /images/{id}` (and their `OPTIONS`). It only translates:
 * routing, CORS, auth and the bodies come from the shared `handleImagesRequest`, so the contract is
 * identical to the GCP function's and the dev stack's.
 */
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { z } from 'zod';
import { handleImagesRequest, type ImagesHttpDeps } from '../../shared/http/images-http';
import { traceIdFrom } from '../../shared/http/upload-http';
import { createInvocation } from '../../shared/invocation';
import type { LambdaContext } from './lambda-invocation';

const apiEventSchema = z.object({
  version: z.literal('2.0'),
  headers: z.record(z.string(), z.string().optional()).optional(),
  rawPath: z.string().optional(),
  rawQueryString: z.string().optional(),
  requestContext: z.object({ http: z.object({ method: z.string().min(1), path: z.string().optional() }), stage: z.string().optional() }),
});

/** Creates the Lambda handler. Never throws. The invocation's deadline is Lambda's remaining time. */
export function createImagesHandler(deps: ImagesHttpDeps): (event: unknown, context?: LambdaContext) => Promise<APIGatewayProxyStructuredResultV2> {
  return async (event, context) => {
    const parsed = apiEventSchema.safeParse(event);
    if (!parsed.success) {
      deps.logger.error('images: not an API Gateway HTTP API v2 event', { reason: 'invalid_event' });
      return {
        statusCode: 400,
        headers: { 'content-type': 'application/json; charset=utf-8' },
        body: JSON.stringify({ error: { code: 'invalid_request', message: 'unsupported event' } }),
      };
    }
    const e = parsed.data;
    const headers: Record<string, string | undefined> = {};
    for (const [k, v] of Object.entries(e.headers ?? {})) headers[k.toLowerCase()] = v;
    // The raw query string: API Gateway joins repeated parameters with commas in `queryStringParameters`.
    const query: Record<string, string | string[]> = {};
    for (const [k, v] of new URLSearchParams(e.rawQueryString ?? '')) {
      const prev = query[k];
      query[k] = prev === undefined ? v : [...(Array.isArray(prev) ? prev : [prev]), v];
    }
    const traceId = traceIdFrom(headers);
    const inv = createInvocation({
      deadline: Date.now() + (context ? context.getRemainingTimeInMillis() : deps.config.invocation.timeoutSeconds * 1000),
      traceId,
      logger: deps.logger.child({ traceId, ...(context?.awsRequestId ? { awsRequestId: context.awsRequestId } : {}) }),
    });
    try {
      const res = await handleImagesRequest(deps, { method: e.requestContext.http.method.toUpperCase(), path: stagelessPath(e), query, headers }, inv);
      return { statusCode: res.status, headers: res.headers, body: res.body, isBase64Encoded: false };
    } finally {
      inv.dispose();
    }
  };
}

/** The request path without a named stage's prefix. */
function stagelessPath(e: z.infer<typeof apiEventSchema>): string {
  const path = e.rawPath ?? e.requestContext.http.path ?? '/';
  const stage = e.requestContext.stage;
  if (stage && stage !== '$default' && (path === `/${stage}` || path.startsWith(`/${stage}/`))) return path.slice(stage.length + 1) || '/';
  return path;
}
