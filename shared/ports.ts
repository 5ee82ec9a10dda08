/**
 * Ports: the only ways the core talks to the outside world. Adapters live in `functions/<cloud>/`
 * and are named `<tech>-<port>.ts`; in-memory fakes live in `shared/testing/`.
 *
 * Every port method that can fail for a transient reason throws a `TransientError`
 * (see `errors.ts`) so the use cases can decide between retry and a failed manifest. Every method
 * that does I/O takes {@link CallOptions}: its `signal` cancels the request itself, and its
 * `deadline` bounds the adapter's retries (see `resilient()`).
 */
import type { ImageFormat, VariantSpec, PixelpipeConfig, QualityTarget } from './config';
import type { CallOptions } from './invocation';

export type { CallOptions } from './invocation';

/** Metadata of a stored object, as far as the pipeline needs it. */
export interface ObjectInfo {
  bucket: string;
  key: string;
  /** GCS generation, S3 version id or ETag: changes with every overwrite of the key. */
  generation: string;
  size: number;
  contentType?: string;
  cacheControl?: string;
  /** User metadata (x-goog-meta-* / x-amz-meta-*), keys lower-case without the prefix. */
  metadata: Record<string, string>;
  updated?: Date;
}

export interface StoredObject extends ObjectInfo {
  body: Buffer;
}

export interface PutOptions extends CallOptions {
  contentType: string;
  cacheControl?: string;
  metadata?: Record<string, string>;
}

export interface GetOptions extends CallOptions {
  /** Reading stops with `ImageRejectedError('too_many_bytes')` once more than this arrived. */
  maxBytes?: number;
}

export interface ListOptions extends CallOptions {
  pageToken?: string;
  pageSize?: number;
  /**
   * Only keys after this one (S3 `StartAfter`, GCS `startOffset` minus the key itself). A key the
   * caller chose, unlike `pageToken`, so it can be checked before it reaches the storage service.
   */
  startAfter?: string;
}

export interface ListPage {
  items: ObjectInfo[];
  nextPageToken?: string;
}

/**
 * The reading half of {@link ObjectStore}, for functions that only read (the notifier): an adapter
 * for it can be much lighter to load than a full storage client.
 */
export interface ObjectReader {
  /**
   * Reads a whole object. Reading stops with `ImageRejectedError('too_many_bytes')` as soon as more than
   * `maxBytes` arrived, so an upload that bypassed the signed size bound cannot exhaust memory.
   * Throws `ObjectNotFoundError` when absent.
   */
  get(bucket: string, key: string, options?: GetOptions): Promise<StoredObject>;
  /** Metadata only; `null` when the object does not exist. */
  head(bucket: string, key: string, options?: CallOptions): Promise<ObjectInfo | null>;
}

/** Object storage (GCS, S3, in-memory). */
export interface ObjectStore extends ObjectReader {
  /** Writes (overwrites) an object and returns its new metadata. */
  put(bucket: string, key: string, body: Buffer, options: PutOptions): Promise<ObjectInfo>;
  /** Lists objects under a prefix, one page at a time, in key order. */
  list(bucket: string, prefix: string, options?: ListOptions): Promise<ListPage>;
  /** Deletes an object; absent objects are not an error. */
  delete(bucket: string, key: string, options?: CallOptions): Promise<void>;
}

/**
 * Where and how a browser sends the bytes. `PUT`: send the file as the body with exactly `headers`
 * (GCS V4 signed URL). `POST`: send `multipart/form-data` with every entry of `fields` followed by the
 * file as the last field named `file` (S3 presigned POST).
 */
export type UploadTarget =
  | { method: 'PUT'; url: string; headers: Record<string, string> }
  | { method: 'POST'; url: string; fields: Record<string, string>; headers: Record<string, string> };

export interface SignUploadRequest {
  bucket: string;
  key: string;
  contentType: string;
  /** Inclusive byte bounds enforced by the storage service, not by us. */
  minBytes: number;
  maxBytes: number;
  expiresInSeconds: number;
  /** Stored as object metadata and part of the signature, so the uploader cannot change it. */
  metadata: Record<string, string>;
}

/** Produces short-lived, narrowly scoped upload and read URLs. */
export interface UrlSigner {
  /** Signs an upload of exactly one key, one content type and a bounded size. */
  signUpload(request: SignUploadRequest, options?: CallOptions): Promise<UploadTarget>;
  /** Signs a GET of one object for `expiresInSeconds`. */
  signRead(bucket: string, key: string, expiresInSeconds: number, options?: CallOptions): Promise<string>;
}

/** Message attributes subscribers can filter on (Pub/Sub attributes, SNS message attributes). */
export interface EventAttributes {
  type: string;
  imageId: string;
  owner: string;
  status: string;
  [name: string]: string;
}

/** Publishes one serialized CloudEvent to the completion topic. */
export interface EventPublisher {
  /** Returns the broker's message id. Throws `TransientError('publish_failed')` when the broker is unavailable. */
  publish(body: string, attributes: EventAttributes, options?: CallOptions): Promise<string>;
}

/** What `probe` learns from headers alone, before any pixel is decoded. */
export interface ImageProbe {
  /** Type sniffed from the bytes, e.g. `image/jpeg`. */
  mimeType: string;
  format: ImageFormat | 'heif' | 'tiff' | 'svg' | 'gif' | 'pdf';
  /** Dimensions after EXIF orientation. */
  width: number;
  height: number;
  pages: number;
  orientation?: number;
  hasAlpha: boolean;
  space?: string;
  hasProfile: boolean;
}

export interface RenderedOutput {
  variant: string;
  format: 'jpeg' | 'webp' | 'avif' | 'png' | 'gif';
  contentType: string;
  extension: string;
  width: number;
  height: number;
  body: Buffer;
  /** Encoder quality used (lossy formats only). */
  quality?: number;
  /** `quality: "auto"` only: the score that quality achieved, in the target's metric. */
  score?: number;
  /** For `cover` variants: the region of the oriented original this output shows. */
  crop?: CropRect;
}

/** A rectangle in whole pixels of the oriented original. */
export interface CropRect {
  left: number;
  top: number;
  width: number;
  height: number;
}

export interface RenderResult {
  probe: ImageProbe;
  outputs: RenderedOutput[];
  placeholder: { type: 'thumbhash'; value: string; dataUrl: string } | null;
  metrics: { decodeMs: number; encodeMs: Record<string, number> };
  /** What `RenderOptions.analyze` returned; absent when it was not given. */
  analysis?: AnalysisResult | null;
}

/** Turns one original into every configured output. Must decode the pixels at most once. */
export interface ImageProcessor {
  /**
   * Validates the bytes against the limits and renders every variant. Throws `ImageRejectedError`
   * for anything wrong with the image itself (type, size, pixels, frames, corruption).
   */
  render(input: Buffer, variants: VariantSpec[], limits: PixelpipeConfig['limits'], options: RenderOptions): Promise<RenderResult>;
  /**
   * Renders every variant from a flat image of `background` (`#rrggbb`) the size of `source`, with the
   * outputs (sizes, crops, formats, `original` included) that `render` gives an image like `source`:
   * the placeholders of a blocked image. Never looks at the original's pixels. Optional: a processor
   * without it writes no placeholder.
   */
  renderBlank?(source: ImageProbe, variants: VariantSpec[], background: string, options: RenderOptions): Promise<RenderedOutput[]>;
}

export interface RenderOptions {
  webpEffort: number;
  avifEffort: number;
  placeholder: boolean;
  /** What `quality: "auto"` variants aim for; absent: `ssim:0.97`. */
  qualityTarget?: QualityTarget;
  /**
   * Called once, after the single decode and before any variant, with a rung of at most
   * {@link ANALYSIS_MAX_SIDE} px of the oriented pixels (the analysis must not decode again). Its faces place
   * the `position: faces` crops; `null` (analysis off or failed and optional) makes them fall back to `attention`.
   * For an animation, `pixels` is its first frame and `context.frames` up to {@link ANIMATION_MODERATED_FRAMES}
   * later ones (same rung size), for moderation only.
   */
  analyze?: (pixels: AnalysisPixels, context: AnalysisContext) => Promise<AnalysisResult | null>;
}

/** What the processor tells the analysis hook besides the pixels. */
export interface AnalysisContext {
  /** The probed original (size after orientation, format): what a blocked image's placeholders are made for. */
  probe: ImageProbe;
  /** Later frames of an animation, for moderation only. */
  frames?: readonly AnalysisPixels[];
}

/**
 * Frames of an animation that are analysed: the first (faces, labels, moderation) and up to this many
 * more, spread evenly over the animation, that moderation checks too — so that flagged content in a later
 * frame cannot slip past `PIXELPIPE_MODERATION=block`. Bounded because each is one more analyzer call.
 */
export const ANIMATION_MODERATED_FRAMES = 3;

/** Long side of the pixels handed to an analyzer: enough for faces down to ≈ 20 px, cheap to infer. */
export const ANALYSIS_MAX_SIDE = 640;

/** What an {@link ImageAnalyzer} can be asked for. */
export const ANALYSIS_KINDS = ['faces', 'labels', 'moderation'] as const;
export type AnalysisKind = (typeof ANALYSIS_KINDS)[number];

/**
 * Decoded pixels handed to an analyzer: interleaved 8-bit samples, row-major, no padding between rows.
 * They must show the whole auto-oriented original (downscaled, never cropped), so that a box expressed
 * as fractions of these pixels is the same box on the oriented original.
 */
export interface AnalysisPixels {
  data: Uint8Array;
  width: number;
  height: number;
  /** 1 grey, 2 grey + alpha, 3 sRGB, 4 sRGB + alpha. */
  channels: 1 | 2 | 3 | 4;
}

/** A rectangle as fractions (0–1) of the oriented original's width and height. */
export interface NormalizedBox {
  left: number;
  top: number;
  width: number;
  height: number;
}

export interface DetectedFace {
  box: NormalizedBox;
  /** Detector confidence, 0–1. */
  score: number;
  /**
   * The face's embedding (128 numbers; closer in Euclidean distance = more alike), only with
   * `PIXELPIPE_FACE_DESCRIPTORS=true`. Biometric data: see the README's *Face descriptors*.
   */
  descriptor?: number[];
}

export interface ImageLabel {
  name: string;
  score: number;
}

/**
 * Moderation outcome. `unavailable` means the analyzer cannot moderate (or was not asked to): it is
 * never to be read as `ok`.
 */
export interface ModerationResult {
  verdict: 'ok' | 'flagged' | 'unavailable';
  categories: { name: string; score: number }[];
}

/** What one analysis of one image found; only the requested analyses are present. */
export interface AnalysisResult {
  faces?: DetectedFace[];
  labels?: ImageLabel[];
  /** Present whenever moderation was requested, with verdict `unavailable` if the analyzer cannot moderate. */
  moderation?: ModerationResult;
  /** Requested analyses this analyzer cannot perform (they are absent above, or `unavailable`). */
  unavailable: AnalysisKind[];
  /** Which adapter and model produced it, e.g. `face-api/tiny_face_detector@416`. */
  analyzer: string;
  /** Wall time of this analysis, including a lazy model load on first use. */
  ms: number;
}

/**
 * Sees what is in a picture. Called once per image on a small rung (≤ 640 px long side) of the pixels
 * the processor already decoded, never on the full-size original and never with a second decode.
 *
 * Throws `TransientError('analyzer_unavailable')` when a remote service failed in a way that may pass;
 * any other error is permanent for this analyzer configuration (broken runtime, missing model files).
 */
export interface ImageAnalyzer {
  /** Stable adapter/model identifier recorded in manifests. */
  readonly name: string;
  /** Analyses this adapter can really perform. */
  readonly supports: readonly AnalysisKind[];
  analyze(pixels: AnalysisPixels, analyses: readonly AnalysisKind[], options?: CallOptions): Promise<AnalysisResult>;
}

/** Time source, injectable so tests control expiry and durations. */
export interface Clock {
  now(): Date;
}

/** Id source, injectable so tests get stable keys. */
export interface IdGenerator {
  /** A new, unguessable image id made of `[a-z0-9-]`. */
  newId(): string;
}

/** Structured logger: one JSON object per line, parsed natively by Cloud Logging and CloudWatch. */
export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  /** A logger that adds `fields` to every line. */
  child(fields: Record<string, unknown>): Logger;
}

/** Who is calling the upload function. */
export interface Principal {
  /** Token subject; becomes (sanitized) the owner segment of the key. */
  subject: string;
  anonymous: boolean;
}

/** Verifies the `Authorization` header. Throws `ClientError(401)` when the caller is not authenticated. */
export interface Authenticator {
  authenticate(authorizationHeader: string | undefined, options?: CallOptions): Promise<Principal>;
}
