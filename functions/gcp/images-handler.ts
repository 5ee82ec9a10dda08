/**
 * The GCP images function's handler for functions-framework (Express request/response). It only
 * translates: routing, CORS, auth and the bodies come from the shared `handleImagesRequest`, so the
 * contract is identical to the AWS function's and the dev stack's.
 */
import type { Request, Response } from '@google-cloud/functions-framework';
import { handleImagesRequest, type ImagesHttpDeps } from '../../shared/http/images-http';
import { traceIdFrom } from '../../shared/http/upload-http';
import { createInvocation } from '../../shared/invocation';

/**
 * Builds the HTTP handler around its dependencies (tests inject fakes). The invocation's deadline is
 * the configured function timeout from the request's arrival; a client that hangs up aborts it.
 */
export function createImagesHandler(deps: ImagesHttpDeps): (req: Request, res: Response) => Promise<void> {
  const timeoutMs = deps.config.invocation.timeoutSeconds * 1000;
  return async (req, res) => {
    const deadline = Date.now() + timeoutMs;
    const headers: Record<string, string | undefined> = {};
    for (const [k, v] of Object.entries(req.headers)) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
    const traceId = traceIdFrom(headers);
    const hangUp = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) hangUp.abort(new Error('the client closed the connection'));
    });
    const inv = createInvocation({ deadline, traceId, logger: deps.logger.child({ traceId }), signal: hangUp.signal });
    // The query from the raw URL, not Express's parsed `req.query` (which nests `a[b]=` into objects).
    const url = new URL(req.originalUrl || req.url || '/', 'http://function');
    const query: Record<string, string | string[]> = {};
    for (const [k, v] of url.searchParams) {
      const prev = query[k];
      query[k] = prev === undefined ? v : [...(Array.isArray(prev) ? prev : [prev]), v];
    }
    try {
      const out = await handleImagesRequest(deps, { method: req.method, path: url.pathname, query, headers }, inv);
      res.status(out.status).set(out.headers).send(out.body);
    } finally {
      inv.dispose();
    }
  };
}
