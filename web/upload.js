// @ts-check
/**
 * pixelpipe browser helper (`pixelpipe/browser`): asks the upload function for a signed target,
 * sends the bytes straight to storage, and optionally waits for the processing manifest.
 * Dependency-free ES module; types live in `upload.d.ts`.
 */

/** @typedef {{ method: 'PUT', url: string, headers: Record<string, string> }} PutTarget */
/** @typedef {{ method: 'POST', url: string, fields: Record<string, string>, headers?: Record<string, string> }} PostTarget */
/** @typedef {PutTarget | PostTarget} UploadTarget */
/** @typedef {{ id: string, key: string, upload: UploadTarget, expiresAt: string, statusUrl?: string }} UploadTicket */
/** @typedef {'request' | 'upload' | 'wait' | 'images'} UploadStage */
/** @typedef {{ loaded: number, total: number, fraction: number, phase: 'upload', id: string }} UploadProgress */
/** @typedef {Record<string, any>} Manifest (full shape in upload.d.ts) */
/** @typedef {(id: string, options: { signal?: AbortSignal }) => Promise<Manifest>} WaitFn */
/**
 * @typedef {object} UploadOptions
 * @property {string} endpoint URL of the upload function (`POST`).
 * @property {string} [token] Sent as `Authorization: Bearer <token>` to the function and the status URL.
 * @property {(p: UploadProgress) => void} [onProgress] Real byte progress of the storage upload; last call has fraction 1.
 * @property {AbortSignal} [signal] Cancels whichever stage is running.
 * @property {boolean | WaitFn} [wait] `true`: poll `statusUrl` (skipped when the function gave none); a function: await it.
 * @property {number} [statusPollMs] First poll interval (default 1000; backs off to 5x).
 * @property {number} [waitTimeoutMs] Give up waiting after this long (default 120000).
 * @property {typeof fetch} [fetch] Injected fetch (tests, instrumentation).
 * @property {string} [profile] A configured profile name (its variants and limits); absent: the function's default profile.
 */
/** @typedef {{ id: string, key: string, expiresAt: string, manifest?: Manifest }} UploadResult */

/** Every failure except cancellation: `code` is machine-readable, `stage` says which step failed. */
export class UploadError extends Error {
  /** @param {string} message @param {{ code: string, stage: UploadStage, status?: number, detail?: string, cause?: unknown }} info */
  constructor(message, { code, stage, status = 0, detail, cause }) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'UploadError';
    /** @type {string} */ this.code = code;
    /** @type {number} HTTP status, 0 when there was no response. */ this.status = status;
    /** @type {UploadStage} */ this.stage = stage;
    /** @type {string | undefined} */ this.detail = detail;
  }
}

// Some platforms leave File.type empty for HEIC/AVIF; the function needs a type to sign for.
const EXT_TYPES = /** @type {Record<string, string>} */ ({ heic: 'image/heic', heif: 'image/heif', avif: 'image/avif', jxl: 'image/jxl' });

/** @param {File} file */
function contentTypeOf(file) {
  if (file.type) return file.type;
  const ext = /\.([a-z0-9]+)$/i.exec(file.name ?? '')?.[1]?.toLowerCase();
  return (ext && EXT_TYPES[ext]) || 'application/octet-stream';
}

/**
 * Uploads one image: request a signed target, send the bytes to storage with real progress, optionally
 * wait for the manifest. A `failed` manifest is returned, not thrown: the upload itself succeeded.
 * Rejects with {@link UploadError}, or a DOMException named `AbortError` when `signal` fires.
 * @param {File} file
 * @param {UploadOptions} options
 * @returns {Promise<UploadResult>}
 */
export async function uploadImage(file, options) {
  const { endpoint, token, onProgress, signal, wait, statusPollMs = 1000, waitTimeoutMs = 120_000 } = options;
  // Called as a plain function: `window.fetch` throws "Illegal invocation" when invoked as a method of `options`.
  const fetchFn = options.fetch ?? globalThis.fetch;
  /** @type {Record<string, string>} */
  const auth = token ? { authorization: `Bearer ${token}` } : {};
  throwIfAborted(signal);
  const ticket = await requestTicket(fetchFn, endpoint, file, auth, signal, options.profile);
  const emit = progressEmitter(onProgress, ticket.id, file.size);
  emit(0);
  throwIfAborted(signal);
  await sendToStorage(ticket.upload, file, emit, signal);
  const result = /** @type {UploadResult} */ ({ id: ticket.id, key: ticket.key, expiresAt: ticket.expiresAt });
  if (typeof wait === 'function') {
    result.manifest = await within((inner) => wait(ticket.id, { signal: inner }), signal, waitTimeoutMs);
  } else if (wait === true && ticket.statusUrl) {
    const url = resolveUrl(ticket.statusUrl, endpoint);
    result.manifest = await within((inner) => pollStatus(fetchFn, url, auth, inner, statusPollMs), signal, waitTimeoutMs);
  }
  return result;
}

/* ---------- images API (GET /images, GET /images/{id}, DELETE /images/{id}) ---------- */

/**
 * @typedef {object} ImagesOptions
 * @property {string} endpoint Base URL of the images API (the `/images` collection), e.g. `https://api.example.com/images`.
 * @property {string} [token] Sent as `Authorization: Bearer <token>`.
 * @property {AbortSignal} [signal]
 * @property {typeof fetch} [fetch]
 */

/**
 * @param {ImagesOptions} options @param {string} path @param {'GET' | 'DELETE'} method
 * @returns {Promise<{ res: Response, body: any }>}
 */
async function callImages(options, path, method) {
  const fetchFn = options.fetch ?? globalThis.fetch;
  throwIfAborted(options.signal);
  const base = resolveUrl(options.endpoint.replace(/\/+$/, ''), options.endpoint);
  const res = await fetchFn(`${base}${path}`, {
    method,
    headers: { accept: 'application/json', ...(options.token ? { authorization: `Bearer ${options.token}` } : {}) },
    cache: 'no-store',
    signal: options.signal,
  }).catch((err) => {
    throw failure(err, options.signal, 'images');
  });
  return { res, body: await readJson(res, options.signal, 'images') };
}

/**
 * The caller's image with usable variant URLs, or `null` when there is none to show (not processed
 * yet, unknown, or someone else's: the API does not tell these apart).
 * @param {string} id @param {ImagesOptions} options @returns {Promise<Manifest | null>}
 */
export async function getImage(id, options) {
  const { res, body } = await callImages(options, `/${encodeURIComponent(id)}`, 'GET');
  if (res.status === 404) return null;
  if (!res.ok) throw errorFromResponse(res, body, 'images');
  return body;
}

/**
 * One page of the caller's images, newest first. Pass the returned `nextCursor` back as `cursor`.
 * @param {ImagesOptions & { limit?: number, cursor?: string }} options
 * @returns {Promise<{ images: Array<{ id: string, status: 'pending' | 'processed' | 'failed', uploadedAt?: string, bytes: number, manifest?: Manifest }>, nextCursor?: string }>}
 */
export async function listImages(options) {
  const q = new URLSearchParams();
  if (options.limit !== undefined) q.set('limit', String(options.limit));
  if (options.cursor !== undefined) q.set('cursor', options.cursor);
  const qs = q.toString();
  const { res, body } = await callImages(options, qs ? `?${qs}` : '', 'GET');
  if (!res.ok) throw errorFromResponse(res, body, 'images');
  if (!body || !Array.isArray(body.images))
    throw new UploadError('images API returned an unexpected body', { code: 'invalid_response', stage: 'images', status: res.status });
  return body;
}

/**
 * Deletes the caller's image: `true` once the deletion was accepted (the rest is removed
 * asynchronously and a `deleted` event follows), `false` when there is no such image of the caller's
 * (already deleted, never existed, or someone else's).
 * @param {string} id @param {ImagesOptions} options @returns {Promise<boolean>}
 */
export async function deleteImage(id, options) {
  const { res, body } = await callImages(options, `/${encodeURIComponent(id)}`, 'DELETE');
  if (res.status === 404) return false;
  if (!res.ok) throw errorFromResponse(res, body, 'images');
  return true;
}

/** @param {typeof fetch} fetchFn @param {string} endpoint @param {File} file @param {Record<string, string>} auth @param {AbortSignal | undefined} signal @param {string | undefined} profile */
async function requestTicket(fetchFn, endpoint, file, auth, signal, profile) {
  const res = await fetchFn(endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', ...auth },
    body: JSON.stringify({ contentType: contentTypeOf(file), size: file.size, filename: file.name, ...(profile ? { profile } : {}) }),
    signal,
  }).catch((err) => {
    throw failure(err, signal, 'request');
  });
  const body = await readJson(res, signal, 'request');
  if (!res.ok) throw errorFromResponse(res, body, 'request');
  const t = body?.upload;
  if (typeof body?.id !== 'string' || typeof body.key !== 'string' || !t || typeof t.url !== 'string' || (t.method !== 'PUT' && t.method !== 'POST')) {
    throw new UploadError('upload endpoint returned an unexpected body', { code: 'invalid_response', stage: 'request', status: res.status });
  }
  return /** @type {UploadTicket} */ (body);
}

/** @param {UploadTarget} target @param {File} file @param {(fraction: number, final?: boolean) => void} emit @param {AbortSignal | undefined} signal */
function sendToStorage(target, file, emit, signal) {
  return new Promise((resolve, reject) => {
    const xhr = new globalThis.XMLHttpRequest();
    const onAbort = () => xhr.abort();
    /** @param {() => void} settle */
    const done = (settle) => {
      signal?.removeEventListener('abort', onAbort);
      settle();
    };
    xhr.open(target.method, target.url);
    /** @type {Blob | FormData} */
    let body = file;
    if (target.method === 'POST') {
      // Presigned POST policies (S3, GCS) ignore every field after `file`, so it must come last.
      const form = new FormData();
      for (const [name, value] of Object.entries(target.fields ?? {})) form.append(name, value);
      form.append('file', file, file.name);
      body = form;
    }
    for (const [name, value] of Object.entries(target.headers ?? {})) {
      // FormData needs the browser's own multipart boundary; a preset Content-Type would break it.
      if (target.method === 'POST' && name.toLowerCase() === 'content-type') continue;
      xhr.setRequestHeader(name, value);
    }
    // Registered before send(): browsers only report upload progress for listeners present at send time.
    xhr.upload.onprogress = (e) => {
      // Multipart totals include the form overhead, so report the fraction and scale it onto the file's size.
      if (e.lengthComputable && e.total > 0) emit(e.loaded / e.total);
    };
    xhr.onload = () =>
      done(() => {
        if (xhr.status >= 200 && xhr.status < 300) {
          emit(1, true);
          resolve(undefined);
          return;
        }
        const text = String(xhr.responseText ?? '').trim();
        const storageCode = /<Code>([^<]+)<\/Code>/.exec(text)?.[1];
        reject(
          new UploadError(`storage rejected the upload (HTTP ${xhr.status}${storageCode ? ` ${storageCode}` : ''})`, {
            code: 'storage_rejected',
            stage: 'upload',
            status: xhr.status,
            detail: text.slice(0, 300),
          }),
        );
      });
    xhr.onerror = () =>
      done(() => reject(new UploadError('network error while uploading to storage (offline or CORS?)', { code: 'network_error', stage: 'upload' })));
    xhr.ontimeout = () => done(() => reject(new UploadError('storage upload timed out', { code: 'timeout', stage: 'upload' })));
    xhr.onabort = () => done(() => reject(abortError(signal)));
    signal?.addEventListener('abort', onAbort, { once: true });
    xhr.send(body);
  });
}

/** @param {typeof fetch} fetchFn @param {string} url @param {Record<string, string>} auth @param {AbortSignal | undefined} signal @param {number} baseMs */
async function pollStatus(fetchFn, url, auth, signal, baseMs) {
  let delay = Math.max(baseMs, 10);
  for (;;) {
    // A dropped connection while waiting is not a verdict; keep polling until the timeout.
    const res = await fetchFn(url, { headers: { accept: 'application/json', ...auth }, cache: 'no-store', signal }).catch(() => {
      if (signal?.aborted) throw abortError(signal);
      return undefined;
    });
    if (res?.status === 200) {
      const manifest = await readJson(res, signal, 'wait');
      if (manifest && typeof manifest === 'object') return manifest;
      throw new UploadError('status URL returned an unexpected body', { code: 'invalid_response', stage: 'wait', status: 200 });
    }
    // 404 = not processed yet; 429/5xx = transient. Anything else (401, 403, 410...) will not improve.
    if (res && res.status !== 404 && res.status !== 429 && res.status < 500) {
      throw errorFromResponse(res, await readJson(res, signal, 'wait'), 'wait');
    }
    await sleep(delay, signal);
    delay = Math.min(delay * 1.5, baseMs * 5);
  }
}

/** Monotonic fractions (events repeat/reorder); below 1 until storage answers, as XHR counts bytes "sent" once buffered. */
function progressEmitter(/** @type {((p: UploadProgress) => void) | undefined} */ onProgress, /** @type {string} */ id, /** @type {number} */ size) {
  let last = -1;
  return (/** @type {number} */ raw, final = false) => {
    const fraction = final ? 1 : Math.min(0.999, Math.max(0, raw));
    if (!onProgress || (fraction <= last && !final)) return;
    last = fraction;
    // A broken UI callback must not wedge the upload; surface it as an uncaught error instead.
    try {
      onProgress({ loaded: Math.floor(fraction * size), total: size, fraction, phase: 'upload', id });
    } catch (err) {
      queueMicrotask(() => {
        throw err;
      });
    }
  };
}

/**
 * Runs `task` against cancellation and a deadline. The task gets its own signal, fired once the race is
 * decided, so a poll loop or event listener does not outlive a timeout.
 * @template T @param {(signal: AbortSignal) => Promise<T>} task @param {AbortSignal | undefined} signal @param {number} ms @returns {Promise<T>}
 */
function within(task, signal, ms) {
  const inner = new AbortController();
  return new Promise((resolve, reject) => {
    // setTimeout overflows above 2^31-1 ms and would fire at once; treat such values as "no timeout".
    const timer =
      ms < 2 ** 31 - 1
        ? setTimeout(() => finish(reject, new UploadError(`no result within ${ms} ms`, { code: 'wait_timeout', stage: 'wait' })), ms)
        : undefined;
    const onAbort = () => finish(reject, abortError(signal));
    /** @param {(v: any) => void} settle @param {unknown} value */
    function finish(settle, value) {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      inner.abort();
      settle(value);
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    Promise.resolve()
      .then(() => task(inner.signal))
      .then(
        (v) => finish(resolve, v),
        (err) => finish(reject, failure(err, signal, 'wait')),
      );
  });
}

/** @param {number} ms @param {AbortSignal | undefined} signal */
function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(undefined);
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Parses a JSON body; `undefined` when the body is empty or not JSON (error pages, proxies). @param {Response} res @param {AbortSignal | undefined} signal @param {UploadStage} stage */
async function readJson(res, signal, stage) {
  const text = await res.text().catch((err) => {
    throw failure(err, signal, stage);
  });
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return undefined;
  }
}

/** @param {Response} res @param {any} body @param {UploadStage} stage */
function errorFromResponse(res, body, stage) {
  const e = body?.error;
  const code = typeof e?.code === 'string' ? e.code : `http_${res.status}`;
  const message = typeof e?.message === 'string' ? e.message : `HTTP ${res.status} ${res.statusText ?? ''}`.trim();
  return new UploadError(message, { code, stage, status: res.status });
}

/** Maps a thrown fetch/wait error: cancellation stays an AbortError, UploadErrors pass through, the rest is a network failure. @param {unknown} err @param {AbortSignal | undefined} signal @param {UploadStage} stage */
function failure(err, signal, stage) {
  if (signal?.aborted) return abortError(signal);
  if (err instanceof UploadError || (typeof err === 'object' && err !== null && /** @type {any} */ (err).name === 'AbortError')) return err;
  const msg = err instanceof Error ? err.message : String(err);
  return new UploadError(stage === 'wait' ? `waiting failed: ${msg}` : `network error: ${msg}`, {
    code: stage === 'wait' ? 'wait_failed' : 'network_error',
    stage,
    cause: err,
  });
}

/** Reuses the signal's own reason when it is an AbortError, so callers can compare identities. @param {AbortSignal | undefined} signal */
function abortError(signal) {
  const reason = signal?.reason;
  // Duck-typed: DOMException is not an Error subclass in every realm (e.g. Node test sandboxes).
  if (typeof reason === 'object' && reason !== null && reason.name === 'AbortError') return reason;
  const err = new DOMException('The upload was aborted', 'AbortError');
  // A custom reason (a string, a TimeoutError) is kept as the cause rather than lost.
  if (reason !== undefined) Object.defineProperty(err, 'cause', { value: reason, configurable: true });
  return err;
}

/** @param {AbortSignal | undefined} signal */
const throwIfAborted = (signal) => {
  if (signal?.aborted) throw abortError(signal);
};

/** The status URL is relative to the upload endpoint, which may itself be relative to the page. @param {string} url @param {string} endpoint */
function resolveUrl(url, endpoint) {
  try {
    return new URL(url, new URL(endpoint, globalThis.location?.href)).href;
  } catch {
    return url;
  }
}
