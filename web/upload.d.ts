/**
 * pixelpipe browser helper (`pixelpipe/browser`): hand-written declarations for `upload.js`.
 * Kept in sync by `test/web/upload.test.ts`, which imports the module through these types.
 */

/** Signed single-request upload: send the file as the body with exactly these headers. */
export interface PutTarget {
  method: 'PUT';
  url: string;
  headers: Record<string, string>;
}

/** Presigned multipart POST: every field in order, then the file as the last field `file`. */
export interface PostTarget {
  method: 'POST';
  url: string;
  fields: Record<string, string>;
  headers?: Record<string, string>;
}

export type UploadTarget = PutTarget | PostTarget;

/** The upload function's `201` response. */
export interface UploadTicket {
  id: string;
  key: string;
  upload: UploadTarget;
  /** ISO timestamp after which the signed target stops working. */
  expiresAt: string;
  /** GET it for the manifest: `200` when done, `404` while pending. */
  statusUrl?: string;
}

export type UploadStage = 'request' | 'upload' | 'wait' | 'images';

export interface UploadProgress {
  /** Bytes of the file sent so far (scaled from the request total for multipart bodies). */
  loaded: number;
  /** The file's size. */
  total: number;
  /** 0..1, never decreasing; below 1 until storage has answered, then exactly 1 (the last call). */
  fraction: number;
  phase: 'upload';
  /** The image id, known from the first progress call on (before the upload finishes). */
  id: string;
}

export type ImageFormat = 'jpeg' | 'webp' | 'avif' | 'png' | 'gif';

export interface ManifestVariant {
  name: string;
  format: ImageFormat;
  key: string;
  contentType: string;
  width: number;
  height: number;
  bytes: number;
  url?: string;
}

/** The processing manifest (also the `data` of the completion CloudEvent). */
export interface Manifest {
  schemaVersion: 1;
  id: string;
  owner: string;
  status: 'processed' | 'failed';
  reason?: { code: string; message: string };
  source: {
    bucket: string;
    key: string;
    generation: string;
    contentType?: string;
    bytes: number;
    width?: number;
    height?: number;
    format?: string;
  };
  variants: ManifestVariant[];
  placeholder: { type: 'thumbhash'; value: string; dataUrl: string } | null;
  durationMs: number;
  createdAt: string;
  [extra: string]: unknown;
}

/** Resolves the manifest some other way (e.g. an event stream). `signal` fires once the upload stops waiting. */
export type WaitFn = (id: string, options: { signal?: AbortSignal }) => Promise<Manifest>;

export interface UploadOptions {
  /** URL of the upload function (`POST`). */
  endpoint: string;
  /** Sent as `Authorization: Bearer <token>` to the function and to the status URL. */
  token?: string;
  onProgress?: (progress: UploadProgress) => void;
  /** Cancels whichever stage is running; the promise rejects with a DOMException named `AbortError`. */
  signal?: AbortSignal;
  /** `true`: poll `statusUrl` (skipped when the function returned none). A function: await it instead. */
  wait?: boolean | WaitFn;
  /** First poll interval in ms (default 1000), backing off to 5x. */
  statusPollMs?: number;
  /** Stop waiting after this many ms (default 120000) with `UploadError` code `wait_timeout`. */
  waitTimeoutMs?: number;
  /** Injected fetch (tests, instrumentation). Defaults to the global one. */
  fetch?: typeof fetch;
  /**
   * A configured profile (its variants and limits), pinned in the signed target so it cannot be switched
   * later; an unknown one rejects with code `unknown_profile`. Absent: the function's default profile.
   */
  profile?: string;
}

export interface UploadResult {
  id: string;
  key: string;
  expiresAt: string;
  /** Present when `wait` was given (and, for `wait: true`, a `statusUrl` was returned). May have `status: 'failed'`. */
  manifest?: Manifest;
}

/**
 * Every failure except cancellation. Codes: the function's own `error.code` (e.g. `too_large`,
 * `content_type_not_allowed`), `http_<status>` without one, `invalid_response`, `network_error`,
 * `storage_rejected`, `timeout`, `wait_timeout`, `wait_failed`.
 */
export declare class UploadError extends Error {
  constructor(message: string, info: { code: string; stage: UploadStage; status?: number; detail?: string; cause?: unknown });
  readonly name: 'UploadError';
  code: string;
  /** HTTP status, 0 when there was no response. */
  status: number;
  stage: UploadStage;
  /** Storage's response text (trimmed to 300 characters) for `storage_rejected`. */
  detail?: string;
}

/**
 * Uploads one image: requests a signed target, sends the bytes straight to storage with real progress,
 * optionally waits for the manifest. Rejects with {@link UploadError}, or a DOMException named
 * `AbortError` (the signal's own reason when it is one) when `signal` fires.
 */
export declare function uploadImage(file: File, options: UploadOptions): Promise<UploadResult>;

/** Options of the images API calls. */
export interface ImagesOptions {
  /** Base URL of the images API (the `/images` collection), e.g. `https://api.example.com/images`. */
  endpoint: string;
  /** Sent as `Authorization: Bearer <token>`. */
  token?: string;
  signal?: AbortSignal;
  fetch?: typeof fetch;
}

/** One row of `GET /images`. */
export interface ImageListItem {
  id: string;
  /** `pending`: stored, not processed yet. */
  status: 'pending' | 'processed' | 'failed';
  uploadedAt?: string;
  bytes: number;
  /** Variant URLs are present only when the deployment has a public (CDN) base URL; `getImage` signs them. */
  manifest?: Manifest;
}

export interface ImageListPage {
  images: ImageListItem[];
  /** Pass back as `cursor` for the next page; absent on the last page. */
  nextCursor?: string;
}

/** The caller's image with usable variant URLs; `null` when not processed yet, unknown, or someone else's. */
export declare function getImage(id: string, options: ImagesOptions): Promise<Manifest | null>;
/** One page of the caller's images, newest first (at most `limit`, 1–100, default 20). */
export declare function listImages(options: ImagesOptions & { limit?: number; cursor?: string }): Promise<ImageListPage>;
/** `true`: deletion accepted (a `deleted` event follows); `false`: no such image of the caller's. Rejects with `UploadError` (stage `images`) otherwise. */
export declare function deleteImage(id: string, options: ImagesOptions): Promise<boolean>;
