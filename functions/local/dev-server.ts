/**
 * The dev server's routes (node:http, no framework):
 *
 *   GET  /                    the demo page (files of `web/`)
 *   POST /api/uploads         the production upload handler, through a local API Gateway translation
 *   GET  /api/images          the images API (functions/aws/images-handler.ts): the caller's images, newest first
 *   GET  /api/images/:id      the manifest with URLs (200), or 404 while pending / not the caller's
 *   DELETE /api/images/:id    deletes the original (202); the cascade removes the rest
 *   GET  /api/events          Server-Sent Events: `event: completion`, data = the CloudEvent JSON
 *   GET  /api/profiles        the configured profile names and the default: { profiles: string[], default: string }
 *   GET  /healthz             { ok: true }
 */
import { readFile, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { Logger } from '../../shared/ports';
import { PayloadTooLargeError, readBody, toApiGatewayV2Event, writeApiGatewayResult } from './api-gateway';
import type { SseHub } from './sse-hub';

/** What the routes call: the production upload and images handlers and the SSE hub. */
export interface DevServerDeps {
  webDir: string;
  /** The Lambda upload handler. */
  uploadHandler: (event: unknown) => Promise<APIGatewayProxyStructuredResultV2>;
  /** The Lambda images handler. */
  imagesHandler: (event: unknown) => Promise<APIGatewayProxyStructuredResultV2>;
  sse: SseHub;
  /** The configured profiles, for the upload form's selector. */
  profiles: { names: string[]; default: string };
  /** Origins allowed to call the read-only API cross-origin (the page opened as localhost vs 127.0.0.1). */
  corsOrigins: string[];
  /** Origin of the local S3 endpoint, for the page's Content-Security-Policy. */
  storageOrigin: string;
  logger: Logger;
}

const STATIC_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
};

/** Creates the request listener. It never throws; unexpected errors become a logged 500. */
export function createDevRequestListener(deps: DevServerDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const csp = [
    "default-src 'self'",
    `img-src 'self' data: ${deps.storageOrigin}`,
    `connect-src 'self' ${deps.storageOrigin}`,
    // app.js sets inline `style` attributes (aspect ratio, placeholder backgrounds).
    "style-src 'self' 'unsafe-inline'",
    "script-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
  ].join('; ');

  return (req, res) => {
    route(req, res).catch((err) => {
      deps.logger.error('dev server: request failed', { err, method: req.method, url: req.url });
      if (!res.headersSent) sendJson(res, 500, { error: { code: 'internal', message: 'internal error' } });
      else res.destroy();
    });
  };

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://local');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    const cors = corsFor(req.headers.origin);

    if (path === '/api/uploads') {
      let body: Buffer;
      try {
        body = await readBody(req);
      } catch (err) {
        if (err instanceof PayloadTooLargeError) return sendJson(res, 413, { error: { code: 'payload_too_large', message: err.message } });
        throw err;
      }
      return writeApiGatewayResult(res, await deps.uploadHandler(toApiGatewayV2Event(req, body, `${method} /api/uploads`)));
    }
    if (path === '/api/events') {
      if (method !== 'GET') return methodNotAllowed(res, 'GET');
      deps.sse.add(req, res, cors);
      return;
    }
    if (path === '/api/images' || path.startsWith('/api/images/')) {
      // As API Gateway would route it: the function sees the path below the `/api` mount.
      const event = toApiGatewayV2Event(req, Buffer.alloc(0), `${method} ${path === '/api/images' ? '/images' : '/images/{id}'}`);
      event.rawPath = path.slice('/api'.length);
      event.requestContext.http.path = event.rawPath;
      return writeApiGatewayResult(res, await deps.imagesHandler(event));
    }
    if (path === '/api/profiles') {
      if (method !== 'GET' && method !== 'HEAD') return methodNotAllowed(res, 'GET');
      return sendJson(res, 200, { profiles: deps.profiles.names, default: deps.profiles.default }, cors);
    }
    if (path === '/healthz') return sendJson(res, 200, { ok: true });
    if (path.startsWith('/api/')) return sendJson(res, 404, { error: { code: 'not_found', message: `no route for ${path}` } });
    if (method !== 'GET' && method !== 'HEAD') return methodNotAllowed(res, 'GET');
    return serveStatic(req, res, path);
  }

  async function serveStatic(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    let rel: string;
    try {
      rel = decodeURIComponent(path);
    } catch {
      return sendText(res, 400, 'bad path');
    }
    if (rel.endsWith('/')) rel += 'index.html';
    const file = normalize(join(deps.webDir, rel));
    const type = STATIC_TYPES[extname(file).toLowerCase()];
    // normalize() resolved any `..`: the result must still be inside web/.
    if (!file.startsWith(deps.webDir + sep) || rel.includes('\0') || !type) return sendText(res, 404, 'not found');
    const info = await stat(file).catch(() => null);
    if (!info?.isFile()) return sendText(res, 404, 'not found');
    const body = await readFile(file);
    res.writeHead(200, {
      'content-type': type,
      'content-length': String(body.length),
      // The page is edited while the stack runs: always revalidate.
      'cache-control': 'no-cache',
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      ...(type.startsWith('text/html') ? { 'content-security-policy': csp } : {}),
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  function corsFor(origin: string | undefined): Record<string, string> {
    if (!origin || !deps.corsOrigins.includes(origin)) return {};
    return {
      'access-control-allow-origin': origin,
      'access-control-allow-methods': 'GET, OPTIONS',
      'access-control-allow-headers': 'authorization',
      vary: 'Origin',
    };
  }
}

function methodNotAllowed(res: ServerResponse, allow: string): void {
  sendJson(res, 405, { error: { code: 'method_not_allowed', message: `use ${allow}` } }, { allow });
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(text)),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

function sendText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': String(Buffer.byteLength(text)) });
  res.end(text);
}
