/**
 * A local stand-in for API Gateway HTTP API (payload format 2.0): a Node request becomes the event
 * the Lambda upload handler receives in production, and its structured result becomes the response.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';

/** HTTP APIs refuse larger payloads too (10 MB there; the upload endpoint takes a few hundred bytes). */
export const MAX_API_BODY = 1024 * 1024;

/** The body is bigger than an API Gateway would pass on. */
export class PayloadTooLargeError extends Error {}

/** Reads the whole request body, refusing more than `max` bytes as soon as they arrived. */
export async function readBody(req: IncomingMessage, max = MAX_API_BODY): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req) {
    total += (chunk as Buffer).length;
    if (total > max) throw new PayloadTooLargeError(`request body larger than ${max} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, total);
}

const TEXT_TYPES = /^(?:text\/|application\/(?:json|[a-z.+-]*\+json|x-www-form-urlencoded|xml|javascript))/i;

/**
 * Builds the v2 event as API Gateway does: header names lower-case with repeated values joined by
 * commas, cookies split out, and a body that is base64-encoded unless its content type is textual.
 */
export function toApiGatewayV2Event(req: IncomingMessage, body: Buffer, routeKey: string, now = new Date()): APIGatewayProxyEventV2 {
  const url = new URL(req.url ?? '/', 'http://local');
  const headers: Record<string, string> = {};
  let cookies: string[] | undefined;
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i].toLowerCase();
    const value = req.rawHeaders[i + 1];
    if (name === 'cookie') {
      cookies = [
        ...(cookies ?? []),
        ...value
          .split(';')
          .map((c) => c.trim())
          .filter(Boolean),
      ];
      continue;
    }
    headers[name] = headers[name] === undefined ? value : `${headers[name]},${value}`;
  }
  const host = headers.host ?? 'localhost';
  const textual = body.length === 0 || TEXT_TYPES.test(headers['content-type'] ?? '');
  const query: Record<string, string> = {};
  for (const [k, v] of url.searchParams) query[k] = query[k] === undefined ? v : `${query[k]},${v}`;
  return {
    version: '2.0',
    routeKey,
    rawPath: url.pathname,
    rawQueryString: url.search.slice(1),
    ...(cookies ? { cookies } : {}),
    headers,
    ...(url.search ? { queryStringParameters: query } : {}),
    requestContext: {
      accountId: 'local',
      apiId: 'local',
      domainName: host,
      domainPrefix: host.split('.')[0].split(':')[0],
      http: {
        method: req.method ?? 'GET',
        path: url.pathname,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: randomBytes(10).toString('base64url'),
      routeKey,
      stage: '$default',
      time: now.toISOString(),
      timeEpoch: now.getTime(),
    },
    ...(body.length ? { body: textual ? body.toString('utf8') : body.toString('base64') } : {}),
    isBase64Encoded: body.length > 0 && !textual,
  };
}

/** Writes a handler's structured result as API Gateway would (status 200 and no body when absent). */
export function writeApiGatewayResult(res: ServerResponse, result: APIGatewayProxyStructuredResultV2): void {
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(result.headers ?? {})) headers[k.toLowerCase()] = String(v);
  if (result.cookies?.length) headers['set-cookie'] = result.cookies;
  const body = result.body === undefined ? Buffer.alloc(0) : Buffer.from(result.body, result.isBase64Encoded ? 'base64' : 'utf8');
  headers['content-length'] = String(body.length);
  res.writeHead(result.statusCode ?? 200, headers);
  res.end(body);
}
