/**
 * API Gateway HTTP API (payload format 2.0) at the edge of the upload and images functions: the event's
 * shape, its headers and path as the shared HTTP code expects them, and the answer to an event that is
 * not one.
 */
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { z } from 'zod';

export const httpApiEventSchema = z.object({
  version: z.literal('2.0'),
  headers: z.record(z.string(), z.string().optional()).optional(),
  body: z.string().optional(),
  isBase64Encoded: z.boolean().optional(),
  routeKey: z.string().optional(),
  rawPath: z.string().optional(),
  rawQueryString: z.string().optional(),
  requestContext: z.object({ http: z.object({ method: z.string().min(1), path: z.string().optional() }), stage: z.string().optional() }),
});

export type HttpApiEvent = z.infer<typeof httpApiEventSchema>;

/** The answer to anything that is not an HTTP API v2 event (logged by the caller). */
export function unsupportedEvent(): APIGatewayProxyStructuredResultV2 {
  return {
    statusCode: 400,
    headers: { 'content-type': 'application/json; charset=utf-8' },
    body: JSON.stringify({ error: { code: 'invalid_request', message: 'unsupported event' } }),
  };
}

/** Header names lower-cased: HTTP APIs already do it; normalising again costs nothing and guards other callers. */
export function lowerCaseHeaders(e: HttpApiEvent): Record<string, string | undefined> {
  const headers: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(e.headers ?? {})) headers[k.toLowerCase()] = v;
  return headers;
}

/** The request path without a named stage's prefix: it is not part of the function's path. */
export function stagelessPath(e: HttpApiEvent): string {
  const path = e.rawPath ?? e.requestContext.http.path ?? '/';
  const stage = e.requestContext.stage;
  if (stage && stage !== '$default' && (path === `/${stage}` || path.startsWith(`/${stage}/`))) return path.slice(stage.length + 1) || '/';
  return path;
}
