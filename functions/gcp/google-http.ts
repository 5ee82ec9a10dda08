/**
 * The one HTTP call path of the GCP adapters that talk to Google's REST APIs directly (the Storage
 * JSON API, Pub/Sub `publish`); tokens and IAM `signBlob` go through google-auth-library (`google-auth.ts`).
 *
 * Why not the client libraries: `@google-cloud/storage` and `@google-cloud/pubsub` (with google-gax
 * and gRPC) cost 150–310 ms to load, which is the whole cold-start budget of the upload and notify
 * functions, while each of them needs one or two plain HTTPS requests. `fetch` is built into Node.
 */

/** A non-2xx answer from a Google API. `code` carries the HTTP status, as the client libraries' errors do. */
export class GoogleApiError extends Error {
  override readonly name = 'GoogleApiError';

  constructor(
    readonly code: number,
    message: string,
    /** Google's canonical status (`NOT_FOUND`, `PERMISSION_DENIED`, …) when the body had one. */
    readonly status?: string,
  ) {
    super(message);
  }
}

/** Options of {@link googleFetch}. */
export interface GoogleFetchOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  /** Per-request deadline; the request is aborted (not just abandoned) when it passes. */
  timeoutMs?: number;
  /** The caller's cancellation (an attempt's timeout, the invocation's end): aborts the request and its body. */
  signal?: AbortSignal;
}

/** Default per-request deadline: a stalled connection must not eat the function's whole timeout. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

/**
 * Sends one request and returns the response when it is 2xx; otherwise throws {@link GoogleApiError}
 * with the message Google put in its JSON error body (or the start of the text body). Network
 * failures and timeouts propagate as `fetch` raises them (`TypeError` with a `cause` carrying the
 * socket error code, or an `AbortError`/`TimeoutError`), which `mapStorageError` classifies.
 */
export async function googleFetch(url: string, options: GoogleFetchOptions = {}): Promise<Response> {
  const res = await fetch(url, {
    method: options.method ?? 'GET',
    headers: options.headers,
    body: options.body as BodyInit | undefined,
    signal: requestSignal(options),
    redirect: 'error',
  });
  if (res.ok) return res;
  const text = await res.text().catch(() => '');
  throw new GoogleApiError(res.status, `${options.method ?? 'GET'} ${redactUrl(url)} → HTTP ${res.status}: ${errorDetail(text)}`, errorStatus(text));
}

/** The request's own timeout, combined with the caller's signal when there is one. */
function requestSignal(options: GoogleFetchOptions): AbortSignal {
  const timeout = AbortSignal.timeout(options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS);
  return options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
}

/** Like {@link googleFetch}, parsing a JSON body. */
export async function googleJson<T>(url: string, options: GoogleFetchOptions = {}): Promise<T> {
  const res = await googleFetch(url, options);
  return (await res.json()) as T;
}

function parseError(text: string): { message?: unknown; status?: unknown; error_description?: unknown } | undefined {
  try {
    const body = JSON.parse(text) as { error?: unknown; error_description?: unknown };
    if (body.error && typeof body.error === 'object') return body.error;
    // OAuth token endpoints answer `{"error": "invalid_grant", "error_description": "…"}`.
    if (typeof body.error === 'string') return { message: body.error, status: body.error, error_description: body.error_description };
  } catch {
    // Not JSON: fall through to the raw text.
  }
  return undefined;
}

function errorDetail(text: string): string {
  const e = parseError(text);
  const parts = [e?.message, e?.error_description].filter((p): p is string => typeof p === 'string' && p.length > 0);
  return (parts.length ? parts.join(': ') : text || '(empty body)').slice(0, 300);
}

function errorStatus(text: string): string | undefined {
  const s = parseError(text)?.status;
  return typeof s === 'string' ? s : undefined;
}

/** Error messages end up in logs: keep the path, drop query strings (tokens, signatures). */
function redactUrl(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}
