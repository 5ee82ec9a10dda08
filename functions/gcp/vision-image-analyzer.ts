/**
 * {@link ImageAnalyzer} on Google Cloud Vision's `images:annotate` (REST, v1): FACE_DETECTION,
 * LABEL_DETECTION and SAFE_SEARCH_DETECTION, only those requested, in one request per image with the
 * analysis rung inline as a base64 JPEG (`image.content`; no `gcsImageUri`, which would need the
 * caller's read access to the originals bucket and a second fetch on Google's side).
 *
 * Why REST and not `@google-cloud/vision`: the same reason as `google-http.ts` — the client library
 * brings google-gax and gRPC (≈ 150–300 ms of cold start) for one HTTPS POST. Credentials (and the
 * quota project of user credentials, `x-goog-user-project`) come from `google-auth.ts`.
 *
 * Moderation: SafeSearch answers likelihoods, not scores. The verdict is `flagged` when `adult`,
 * `violence` or `racy` is at least LIKELY (configurable). Google's documentation describes LIKELY as
 * "it is likely" and VERY_LIKELY as "it is very likely" that the image belongs to the vertical, and
 * warns that the buckets are not calibrated probabilities; POSSIBLE fires on beach and gym photos, so
 * flagging there would hold back ordinary uploads, while VERY_LIKELY alone misses much racy content.
 * `spoof` and `medical` are recorded but do not flag: they describe the kind of picture, not a harm.
 */
import { PixelpipeError, TransientError } from '../../shared/errors';
import { clampBox, encodeAnalysisJpeg } from '../../shared/image/analysis-jpeg';
import type { AnalysisKind, AnalysisPixels, AnalysisResult, CallOptions, DetectedFace, ImageAnalyzer, ImageLabel, ModerationResult } from '../../shared/ports';
import { cancelled, defaultPolicy, resilient, type ResiliencePolicy } from '../../shared/resilience';
import { isNetworkError } from './gcs-errors';
import type { RequestAuthorizer } from './google-auth';

/** SafeSearch's likelihood buckets, in increasing order. */
export const LIKELIHOODS = ['VERY_UNLIKELY', 'UNLIKELY', 'POSSIBLE', 'LIKELY', 'VERY_LIKELY'] as const;
export type Likelihood = (typeof LIKELIHOODS)[number];
/** SafeSearch's verticals. */
export const SAFE_SEARCH_CATEGORIES = ['adult', 'spoof', 'medical', 'violence', 'racy'] as const;
export type SafeSearchCategory = (typeof SAFE_SEARCH_CATEGORIES)[number];

/** Default moderation threshold (see the module comment). */
export const DEFAULT_FLAG_LIKELIHOOD: Likelihood = 'LIKELY';
export const DEFAULT_FLAG_CATEGORIES: readonly SafeSearchCategory[] = ['adult', 'violence', 'racy'];

/** Options of {@link VisionImageAnalyzer}. */
export interface VisionImageAnalyzerOptions {
  /** API base URL; default `https://vision.googleapis.com` (a regional one such as `https://eu-vision.googleapis.com` keeps images in the EU). */
  endpoint?: string;
  /** Transport (default: Node's `fetch`); tests point it at the local fake. */
  fetch?: typeof fetch;
  policy?: ResiliencePolicy;
  /** FACE_DETECTION `maxResults` (default 50: group photos). */
  maxFaces?: number;
  /** LABEL_DETECTION `maxResults` (default 10). */
  maxLabels?: number;
  /** Likelihood from which a flagging category flags the image (default LIKELY). */
  flagAt?: Likelihood;
  /** Categories that flag (default adult, violence, racy). */
  flagCategories?: readonly SafeSearchCategory[];
}

const FEATURE: Record<AnalysisKind, string> = { faces: 'FACE_DETECTION', labels: 'LABEL_DETECTION', moderation: 'SAFE_SEARCH_DETECTION' };

// gRPC codes in a per-image `error` (google.rpc.Status) that may pass on their own:
// DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, INTERNAL, UNAVAILABLE.
const TRANSIENT_RPC_CODES = new Set([4, 8, 10, 13, 14]);
const TRANSIENT_STATUSES = new Set(['RESOURCE_EXHAUSTED', 'UNAVAILABLE', 'DEADLINE_EXCEEDED', 'INTERNAL', 'ABORTED']);

interface Vertex {
  x?: number;
  y?: number;
}
interface AnnotateImageResponse {
  faceAnnotations?: { boundingPoly?: { vertices?: Vertex[] }; fdBoundingPoly?: { vertices?: Vertex[] }; detectionConfidence?: number }[];
  labelAnnotations?: { description?: string; score?: number }[];
  safeSearchAnnotation?: Partial<Record<SafeSearchCategory, string>>;
  error?: { code?: number; message?: string };
}

/** Faces, labels and SafeSearch moderation from Google Cloud Vision. */
export class VisionImageAnalyzer implements ImageAnalyzer {
  readonly name = 'google-vision';
  readonly supports: readonly AnalysisKind[] = ['faces', 'labels', 'moderation'];
  private readonly url: string;
  private readonly fetch: typeof fetch;
  private readonly policy: ResiliencePolicy;
  private readonly maxFaces: number;
  private readonly maxLabels: number;
  private readonly flagAt: number;
  private readonly flagCategories: readonly SafeSearchCategory[];

  constructor(
    private readonly auth: RequestAuthorizer,
    options: VisionImageAnalyzerOptions = {},
  ) {
    this.url = `${(options.endpoint ?? 'https://vision.googleapis.com').replace(/\/$/, '')}/v1/images:annotate`;
    this.fetch = options.fetch ?? fetch;
    this.policy = options.policy ?? defaultPolicy('vision', { attempts: 3, timeoutMs: 10_000 });
    this.maxFaces = options.maxFaces ?? 50;
    this.maxLabels = options.maxLabels ?? 10;
    this.flagAt = LIKELIHOODS.indexOf(options.flagAt ?? DEFAULT_FLAG_LIKELIHOOD);
    if (this.flagAt < 0) throw new RangeError(`flagAt must be one of ${LIKELIHOODS.join(', ')}`);
    this.flagCategories = options.flagCategories ?? DEFAULT_FLAG_CATEGORIES;
  }

  async analyze(pixels: AnalysisPixels, analyses: readonly AnalysisKind[], options: CallOptions = {}): Promise<AnalysisResult> {
    const started = Date.now();
    const wanted = [...new Set(analyses)];
    const result: AnalysisResult = { unavailable: [], analyzer: this.name, ms: 0 };
    if (wanted.length === 0) return result;
    const content = (await encodeAnalysisJpeg(pixels)).toString('base64');
    const features = wanted.map((k) => ({
      type: FEATURE[k],
      ...(k === 'faces' ? { maxResults: this.maxFaces } : k === 'labels' ? { maxResults: this.maxLabels } : {}),
    }));
    const body = JSON.stringify({ requests: [{ image: { content }, features }] });
    const answer = await this.annotate(body, options);
    if (wanted.includes('faces')) result.faces = mapFaces(answer, pixels);
    if (wanted.includes('labels')) result.labels = mapLabels(answer);
    if (wanted.includes('moderation')) result.moderation = this.mapModeration(answer);
    result.ms = Date.now() - started;
    return result;
  }

  private annotate(body: string, options: CallOptions): Promise<AnnotateImageResponse> {
    const what = 'vision images:annotate';
    return resilient(
      this.policy,
      what,
      async (signal) => {
        // Credential failures are already classified by google-auth.ts (auth_unavailable or permanent).
        const headers = { ...(await this.auth.headers()), 'content-type': 'application/json' };
        let res: Response;
        let text: string;
        try {
          res = await this.fetch(this.url, { method: 'POST', headers, body, signal, redirect: 'error' });
          text = await res.text();
        } catch (err) {
          if (signal.aborted) throw cancelled(signal, what);
          // fetch's TypeError (refused, reset, DNS, TLS) or a body cut off mid-read: no answer was had.
          throw new TransientError('analyzer_unavailable', `${what} failed${isNetworkError(err) ? ' (network)' : ''}: ${message(err)}`, err);
        }
        if (!res.ok) throw httpError(res.status, text, what);
        return parseAnswer(text, what);
      },
      options,
    ).catch((err: unknown) => {
      // resilient() reports a cut attempt as storage_timeout; for this port it is an unavailable analyzer.
      throw err instanceof TransientError && err.code === 'storage_timeout' ? new TransientError('analyzer_unavailable', err.message, err) : err;
    });
  }

  private mapModeration(answer: AnnotateImageResponse): ModerationResult {
    const safe = answer.safeSearchAnnotation ?? {};
    const categories: { name: string; score: number }[] = [];
    let flagged = false;
    let known = false;
    for (const name of SAFE_SEARCH_CATEGORIES) {
      const level = LIKELIHOODS.indexOf(safe[name] as Likelihood);
      // UNKNOWN (or absent): Vision could not tell; recorded as nothing rather than as a low score.
      if (level < 0) continue;
      categories.push({ name, score: likelihoodScore(level) });
      if (this.flagCategories.includes(name)) {
        known = true;
        if (level >= this.flagAt) flagged = true;
      }
    }
    // Not one flagging category was judged: that is no verdict, and never "ok".
    return { verdict: flagged ? 'flagged' : known ? 'ok' : 'unavailable', categories };
  }
}

/**
 * A likelihood bucket as a score: VERY_UNLIKELY 0, UNLIKELY 0.25, POSSIBLE 0.5, LIKELY 0.75,
 * VERY_LIKELY 1. Only an ordering (Google does not publish probabilities for the buckets), so that
 * manifests from both clouds can be sorted and filtered the same way.
 */
export function likelihoodScore(level: number): number {
  return level / (LIKELIHOODS.length - 1);
}

function mapFaces(answer: AnnotateImageResponse, pixels: AnalysisPixels): DetectedFace[] {
  const faces: DetectedFace[] = [];
  for (const f of answer.faceAnnotations ?? []) {
    // fdBoundingPoly is the tight box around the skin of the face (what Rekognition and face-api report);
    // boundingPoly is wider (hair and chin, for "meme" overlays). Vertices are pixels of the sent image.
    const vertices = f.fdBoundingPoly?.vertices?.length ? f.fdBoundingPoly.vertices : (f.boundingPoly?.vertices ?? []);
    if (vertices.length === 0) continue;
    // Vision omits a coordinate that is 0.
    const xs = vertices.map((v) => v.x ?? 0);
    const ys = vertices.map((v) => v.y ?? 0);
    const left = Math.min(...xs) / pixels.width;
    const top = Math.min(...ys) / pixels.height;
    const box = clampBox(left, top, Math.max(...xs) / pixels.width - left, Math.max(...ys) / pixels.height - top);
    if (box.width > 0 && box.height > 0) faces.push({ box, score: clamp(f.detectionConfidence) });
  }
  return faces;
}

function mapLabels(answer: AnnotateImageResponse): ImageLabel[] {
  return (answer.labelAnnotations ?? [])
    .filter((l) => typeof l.description === 'string' && l.description !== '')
    .map((l) => ({ name: l.description as string, score: clamp(l.score) }));
}

function clamp(v: number | undefined): number {
  return typeof v === 'number' && Number.isFinite(v) ? Math.min(1, Math.max(0, v)) : 0;
}

/** The one image's answer; its own `error` (the batch call succeeds when an image fails) is mapped like an HTTP one. */
function parseAnswer(text: string, what: string): AnnotateImageResponse {
  let parsed: { responses?: unknown };
  try {
    parsed = JSON.parse(text) as { responses?: unknown };
  } catch {
    throw new TransientError('analyzer_unavailable', `${what}: unreadable answer (${text.slice(0, 100)})`);
  }
  const first: unknown = Array.isArray(parsed.responses) ? (parsed.responses as unknown[])[0] : undefined;
  if (!first || typeof first !== 'object') throw new TransientError('analyzer_unavailable', `${what}: the answer has no responses[0]`);
  const answer = first as AnnotateImageResponse;
  if (answer.error && (answer.error.code ?? 0) !== 0) {
    const detail = `${what}: image error ${answer.error.code}: ${answer.error.message ?? ''}`;
    if (TRANSIENT_RPC_CODES.has(answer.error.code ?? 0)) throw new TransientError('analyzer_unavailable', detail);
    throw new PixelpipeError('internal', detail, { retryable: false });
  }
  return answer;
}

/**
 * Non-2xx: 408, 429 and 5xx, or a RESOURCE_EXHAUSTED/UNAVAILABLE status whatever the HTTP code → transient;
 * 400 INVALID_ARGUMENT, 401, 403 (API not enabled, no permission, billing off), 404 → permanent, as the
 * Pub/Sub publisher maps them: retrying cannot fix the request or the deployment.
 */
function httpError(status: number, text: string, what: string): PixelpipeError {
  let rpc: string | undefined;
  let msg = text.slice(0, 300);
  try {
    const e = (JSON.parse(text) as { error?: { status?: unknown; message?: unknown } }).error;
    if (typeof e?.status === 'string') rpc = e.status;
    if (typeof e?.message === 'string') msg = e.message.slice(0, 300);
  } catch {
    // Not JSON (a proxy's page): the status alone decides.
  }
  const detail = `${what} → HTTP ${status}${rpc ? ` ${rpc}` : ''}: ${msg}`;
  if (status === 408 || status === 429 || status >= 500 || (rpc !== undefined && TRANSIENT_STATUSES.has(rpc)))
    return new TransientError('analyzer_unavailable', detail);
  return new PixelpipeError('internal', detail, { retryable: false });
}

function message(err: unknown): string {
  const m = err instanceof Error ? err.message : String(err);
  const cause = (err as { cause?: { message?: unknown } } | null)?.cause?.message;
  return typeof cause === 'string' ? `${m}: ${cause}` : m;
}
