/**
 * The GCP upload function's handler for functions-framework (Express request/response). It only
 * translates: path, CORS, auth, validation and the response body all come from the shared
 * `handleUploadRequest`, so the contract is identical to the AWS function's.
 */
import type { Readable } from 'node:stream';
import type { Request, Response } from '@google-cloud/functions-framework';
import { ClientError } from '../../shared/errors';
import { handleUploadRequest, traceIdFrom, type HttpRequest, type UploadHttpDeps } from '../../shared/http/upload-http';
import { createInvocation } from '../../shared/invocation';
import { guardedEntityHeaders } from './body-guard';

/**
 * Builds the HTTP handler around its dependencies (tests inject fakes). The invocation's deadline is
 * the configured function timeout from the request's arrival; a client that hangs up aborts it.
 */
export function createUploadHandler(deps: UploadHttpDeps): (req: Request, res: Response) => Promise<void> {
  // PIXELPIPE_FUNCTION_TIMEOUT_SECONDS: the deploy sets it to the function's --timeout.
  const timeoutMs = deps.config.invocation.timeoutSeconds * 1000;
  return async (req, res) => {
    const deadline = Date.now() + timeoutMs;
    const headers: Record<string, string | undefined> = {};
    for (const [k, v] of Object.entries(req.headers)) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
    const guarded = guardedEntityHeaders(req);
    if (guarded) Object.assign(headers, guarded);
    const traceId = traceIdFrom(headers);
    const hangUp = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) hangUp.abort(new Error('the client closed the connection'));
    });
    const inv = createInvocation({ deadline, traceId, logger: deps.logger.child({ traceId }), signal: hangUp.signal });
    // Behind the body guard the body is still unread and the handler reads it, bounded; without it
    // (the factory used on its own) the framework has parsed it and kept the raw bytes.
    const body: Pick<HttpRequest, 'body' | 'readBody'> = guarded
      ? { readBody: (maxBytes, signal) => readBounded(req, declaredLength(headers), maxBytes, signal) }
      : { body: req.rawBody };
    try {
      const out = await handleUploadRequest(deps, { method: req.method, path: typeof req.path === 'string' ? req.path : undefined, headers, ...body }, inv);
      res.status(out.status).set(out.headers).send(out.body);
    } finally {
      inv.dispose();
    }
  };
}

function declaredLength(headers: Record<string, string | undefined>): number | undefined {
  const n = Number(headers['content-length']);
  return headers['content-length'] !== undefined && Number.isFinite(n) ? n : undefined;
}

/**
 * Reads a request body of at most `maxBytes`. A longer one (declared or arriving) is a 413 and the rest
 * is discarded unbuffered; a body still incomplete when `signal` aborts is a 408.
 */
function readBounded(stream: Readable, declared: number | undefined, maxBytes: number, signal: AbortSignal): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const tooLarge = (): ClientError => new ClientError(413, 'payload_too_large', 'the request body is too large');
    if (declared !== undefined && declared > maxBytes) {
      stream.resume();
      reject(tooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let total = 0;
    const done = (err: Error | undefined): void => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
      signal.removeEventListener('abort', onAbort);
      if (err) {
        // Drain without keeping anything, so the connection is left in a defined state.
        stream.resume();
        reject(err);
      } else resolve(Buffer.concat(chunks));
    };
    const onData = (chunk: Buffer): void => {
      total += chunk.length;
      if (total > maxBytes) done(tooLarge());
      else chunks.push(chunk);
    };
    const onEnd = (): void => done(undefined);
    const onError = (): void => done(new ClientError(400, 'invalid_request', 'the request body broke off'));
    const onAbort = (): void => done(new ClientError(408, 'request_timeout', 'the request body did not arrive in time'));
    if (signal.aborted) return onAbort();
    if (stream.readableEnded) return resolve(Buffer.alloc(0));
    signal.addEventListener('abort', onAbort, { once: true });
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('error', onError);
  });
}
