/**
 * The GCP upload function's handler for functions-framework (Express request/response). It only
 * translates: CORS, auth, validation and the response body all come from the shared
 * `handleUploadRequest`, so the contract is identical to the AWS function's.
 */
import type { Request, Response } from '@google-cloud/functions-framework';
import { handleUploadRequest, type UploadHttpDeps } from '../../shared/http/upload-http';

/** Builds the HTTP handler around its dependencies (tests inject fakes). */
export function createUploadHandler(deps: UploadHttpDeps): (req: Request, res: Response) => Promise<void> {
  return async (req, res) => {
    const headers: Record<string, string | undefined> = {};
    for (const [k, v] of Object.entries(req.headers)) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
    // The raw bytes, not Express' parse: size limit, JSON errors and content types are handled alike.
    const out = await handleUploadRequest(deps, { method: req.method, headers, body: req.rawBody });
    res.status(out.status).set(out.headers).send(out.body);
  };
}
