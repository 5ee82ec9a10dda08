/**
 * The images API's HTTP behaviour, independent of the platform's request types, so the GCP
 * (functions-framework) and AWS (API Gateway v2) handlers and the dev stack are thin translations:
 *
 *   GET    /images?limit=&cursor=   the caller's images, newest first   200 { images, nextCursor? }
 *   GET    /images/{id}             the manifest with usable URLs        200 Manifest | 404
 *   DELETE /images/{id}             delete the original (cascade does the rest)  202 | 404
 *
 * The `/images` prefix is optional (`/` and `/{id}` answer too), so the function's own URL works.
 */
import { z } from 'zod';
import type { PixelpipeConfig } from '../config';
import { ClientError, PixelpipeError } from '../errors';
import { callOptions, type Invocation } from '../invocation';
import type { Authenticator, Logger } from '../ports';
import { getImage, listImages, requestImageDeletion, type ImagesDeps } from '../usecases/images';
import { corsHeaders, type HttpResponse } from './upload-http';

export interface ImagesHttpRequest {
  method: string;
  /** The path below the API's base (`/images`, `/images/<id>`, or `/`, `/<id>`), without the query. */
  path: string;
  /** Query parameters; a repeated one is refused. */
  query: Record<string, string | string[] | undefined>;
  /** Header names lower-case. */
  headers: Record<string, string | undefined>;
}

export interface ImagesHttpDeps extends ImagesDeps {
  authenticator: Authenticator;
  logger: Logger;
  config: PixelpipeConfig;
}

const COLLECTION = /^(?:\/images)?\/?$/;
const ITEM = /^(?:\/images)?\/([^/]+)$/;
// Ids are [a-z0-9-]: anything longer or stranger is a 404 before any storage call.
const idSchema = z.string().max(64);
const querySchema = z.record(z.string(), z.string().max(2048));

/**
 * Handles one request: route, CORS, method, auth, use case, and error → status mapping, within the
 * invocation `inv`. Never throws.
 */
export async function handleImagesRequest(deps: ImagesHttpDeps, req: ImagesHttpRequest, inv: Invocation): Promise<HttpResponse> {
  const cors = imagesCors(deps.config, req.headers.origin);
  const log = inv.logger;
  const item = ITEM.exec(req.path);
  const collection = COLLECTION.test(req.path);
  const allowed = collection ? ['GET'] : ['GET', 'DELETE'];
  try {
    if (!item && !collection) throw new ClientError(404, 'not_found', 'no such endpoint');
    if (req.headers.origin && !cors['access-control-allow-origin']) throw new ClientError(403, 'origin_not_allowed', 'this origin may not call the images API');
    if (req.method === 'OPTIONS') return { status: 204, headers: { ...cors, 'access-control-max-age': '600' }, body: '' };
    if (!allowed.includes(req.method)) throw new ClientError(405, 'method_not_allowed', `use ${allowed.join(' or ')}`);
    const principal = await deps.authenticator.authenticate(req.headers.authorization, callOptions(inv));
    if (collection) {
      const query = querySchema.safeParse(req.query);
      if (!query.success) throw new ClientError(400, 'invalid_request', 'query: each parameter once, at most 2048 characters');
      const page = await listImages(deps, inv, principal, query.data);
      log.info('images listed', { count: page.images.length, more: page.nextCursor !== undefined });
      return json(200, page, cors);
    }
    const id = idSchema.safeParse(safeDecode(item![1]));
    if (!id.success) throw new ClientError(404, 'not_found', 'no such image');
    if (req.method === 'DELETE') return json(202, await requestImageDeletion(deps, inv, principal, id.data), cors);
    return json(200, await getImage(deps, inv, principal, id.data), cors);
  } catch (err) {
    if (err instanceof ClientError) {
      log.info('images request refused', { reason: err.code, status: err.status });
      return json(
        err.status,
        { error: { code: err.code, message: err.message } },
        { ...cors, ...(err.status === 401 ? { 'www-authenticate': 'Bearer' } : {}), ...(err.status === 405 ? { allow: allowed.join(', ') } : {}) },
      );
    }
    if (err instanceof PixelpipeError && err.retryable) {
      log.error('images request failed (transient)', { err, reason: err.code });
      return json(503, { error: { code: err.code, message: 'temporarily unavailable, retry later' } }, { ...cors, 'retry-after': '2' });
    }
    log.error('images request failed', { err, reason: 'internal' });
    return json(500, { error: { code: 'internal', message: 'internal error' } }, cors);
  }
}

/** The upload endpoint's CORS rules (same allowed origins, never `*`), with this API's methods. */
function imagesCors(config: PixelpipeConfig, origin: string | undefined): Record<string, string> {
  const cors = corsHeaders(config, origin);
  if (cors['access-control-allow-origin']) cors['access-control-allow-methods'] = 'GET, DELETE, OPTIONS';
  return cors;
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return '';
  }
}

function json(status: number, body: unknown, headers: Record<string, string>): HttpResponse {
  return { status, headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers }, body: JSON.stringify(body) };
}
