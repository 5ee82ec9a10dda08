/**
 * {@link ImageAnalyzer} on Amazon Rekognition's image APIs: `DetectFaces`, `DetectLabels` and
 * `DetectModerationLabels`, with the analysis rung sent inline as JPEG bytes (no S3 round trip: the
 * process function already holds the pixels, and an S3 reference would need `s3:GetObject` for
 * Rekognition's service principal on the originals bucket).
 *
 * Only the requested analyses are called (each is billed as one image), concurrently, each through
 * `resilient()` within the caller's deadline. Rekognition's boxes are already fractions of the image
 * (`BoundingBox.Left/Top/Width/Height`), so they are clamped to the frame and passed on as they are.
 */
import {
  DetectFacesCommand,
  DetectLabelsCommand,
  DetectModerationLabelsCommand,
  type DetectFacesCommandOutput,
  type DetectLabelsCommandOutput,
  type DetectModerationLabelsCommandOutput,
  type RekognitionClient,
} from '@aws-sdk/client-rekognition';
import { PixelpipeError, TransientError } from '../../shared/errors';
import { clampBox, encodeAnalysisJpeg } from '../../shared/image/analysis-jpeg';
import type { AnalysisKind, AnalysisPixels, AnalysisResult, CallOptions, DetectedFace, ImageAnalyzer, ImageLabel, ModerationResult } from '../../shared/ports';
import { cancelled, defaultPolicy, resilient, type ResiliencePolicy } from '../../shared/resilience';
import { mapAwsError } from './sdk-errors';

/**
 * Default `MinConfidence` (percent) of `DetectModerationLabels`: Rekognition's own default when the
 * parameter is omitted. Any moderation label returned at or above it flags the image, so raising it
 * (`PIXELPIPE_MODERATION_MIN_CONFIDENCE`) trades missed content for fewer false flags.
 */
export const DEFAULT_MODERATION_MIN_CONFIDENCE = 50;
/** Default `MinConfidence` (percent) of `DetectLabels`: Rekognition's own default. */
export const DEFAULT_LABEL_MIN_CONFIDENCE = 55;
/** Labels kept per image: enough to tag and search, small enough for a manifest and an event. */
export const DEFAULT_MAX_LABELS = 10;

/** Options of {@link RekognitionImageAnalyzer}. */
export interface RekognitionImageAnalyzerOptions {
  /** `DetectModerationLabels` `MinConfidence`, 0–100; default {@link DEFAULT_MODERATION_MIN_CONFIDENCE}. */
  moderationMinConfidence?: number;
  /** `DetectLabels` `MinConfidence`, 0–100; default {@link DEFAULT_LABEL_MIN_CONFIDENCE}. */
  labelMinConfidence?: number;
  /** `DetectLabels` `MaxLabels`; default {@link DEFAULT_MAX_LABELS}. */
  maxLabels?: number;
  /** Retries, per-attempt timeout and breaker shared by the three calls. */
  policy?: ResiliencePolicy;
}

// Permanent for this request: the image or a parameter is wrong, and sending it again cannot help.
// The image is our own JPEG of the rung, so these are pipeline bugs, not the uploader's fault.
const PERMANENT_NAMES = new Set(['InvalidImageFormatException', 'ImageTooLargeException', 'InvalidParameterException', 'InvalidS3ObjectException']);
// Rekognition's names for "try again later" that the shared AWS mapper does not know.
const TRANSIENT_NAMES = new Set(['ProvisionedThroughputExceededException', 'ThrottlingException', 'InternalServerError', 'LimitExceededException']);

/**
 * Maps a Rekognition failure: throttling, provisioned throughput, 5xx, an unreadable 2xx answer, timeouts and network failures →
 * `TransientError('analyzer_unavailable')`; invalid image/parameter → permanent `internal`; access denied
 * and other 4xx → permanent, as `mapAwsError` maps them for the other AWS adapters.
 */
export function mapRekognitionError(err: unknown, what: string): PixelpipeError {
  if (err instanceof PixelpipeError) return err;
  const name = (err as { name?: unknown } | null)?.name;
  if (typeof name === 'string' && PERMANENT_NAMES.has(name)) {
    return new PixelpipeError('internal', `${what}: ${name} (${(err as Error).message})`, { retryable: false, cause: err });
  }
  if (typeof name === 'string' && TRANSIENT_NAMES.has(name))
    return new TransientError('analyzer_unavailable', `${what}: ${name} (${(err as Error).message})`, err);
  // A 2xx whose body did not parse (cut off in transit, a proxy's page): the same request may well succeed.
  const status = (err as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
  if (status !== undefined && status >= 200 && status < 300) {
    return new TransientError('analyzer_unavailable', `${what}: unreadable answer (${(err as Error).message.split('\n')[0]})`, err);
  }
  const mapped = mapAwsError(err, what, 'analyzer_unavailable');
  // The shared mapper calls a timeout `storage_timeout`; for the analyzer it is an unavailable service.
  return mapped.retryable && mapped.code !== 'analyzer_unavailable' ? new TransientError('analyzer_unavailable', mapped.message, err) : mapped;
}

/** Faces, labels and moderation from Amazon Rekognition. Takes a configured client (use `maxAttempts: 1`: `resilient()` retries). */
export class RekognitionImageAnalyzer implements ImageAnalyzer {
  readonly name = 'aws-rekognition';
  readonly supports: readonly AnalysisKind[] = ['faces', 'labels', 'moderation'];
  private readonly policy: ResiliencePolicy;
  private readonly moderationMinConfidence: number;
  private readonly labelMinConfidence: number;
  private readonly maxLabels: number;

  constructor(
    private readonly client: RekognitionClient,
    options: RekognitionImageAnalyzerOptions = {},
  ) {
    this.moderationMinConfidence = percent(options.moderationMinConfidence ?? DEFAULT_MODERATION_MIN_CONFIDENCE, 'moderationMinConfidence');
    this.labelMinConfidence = percent(options.labelMinConfidence ?? DEFAULT_LABEL_MIN_CONFIDENCE, 'labelMinConfidence');
    this.maxLabels = options.maxLabels ?? DEFAULT_MAX_LABELS;
    if (!Number.isInteger(this.maxLabels) || this.maxLabels < 1) throw new RangeError(`maxLabels must be a positive integer, got ${this.maxLabels}`);
    this.policy = options.policy ?? defaultPolicy('rekognition', { attempts: 3, timeoutMs: 10_000 });
  }

  async analyze(pixels: AnalysisPixels, analyses: readonly AnalysisKind[], options: CallOptions = {}): Promise<AnalysisResult> {
    const started = Date.now();
    const wanted = new Set(analyses);
    const Image = { Bytes: await encodeAnalysisJpeg(pixels) };
    // One failed operation fails the analysis: the others are cancelled rather than left running (and billed).
    const siblings = new AbortController();
    const signal = options.signal ? AbortSignal.any([options.signal, siblings.signal]) : siblings.signal;
    options = { ...options, signal };
    const [faces, labels, moderation] = await Promise.all([
      wanted.has('faces')
        ? this.call('DetectFaces', (s) => this.client.send(new DetectFacesCommand({ Image, Attributes: ['DEFAULT'] }), { abortSignal: s }), options)
        : undefined,
      wanted.has('labels')
        ? this.call(
            'DetectLabels',
            (s) =>
              this.client.send(
                new DetectLabelsCommand({ Image, MaxLabels: this.maxLabels, MinConfidence: this.labelMinConfidence, Features: ['GENERAL_LABELS'] }),
                {
                  abortSignal: s,
                },
              ),
            options,
          )
        : undefined,
      wanted.has('moderation')
        ? this.call(
            'DetectModerationLabels',
            (s) => this.client.send(new DetectModerationLabelsCommand({ Image, MinConfidence: this.moderationMinConfidence }), { abortSignal: s }),
            options,
          )
        : undefined,
    ]).catch((err: unknown) => {
      siblings.abort(err);
      throw err;
    });
    const result: AnalysisResult = { unavailable: [], analyzer: this.name, ms: 0 };
    if (faces) result.faces = mapFaces(faces);
    if (labels) result.labels = mapLabels(labels);
    if (moderation) result.moderation = this.mapModeration(moderation);
    result.ms = Date.now() - started;
    return result;
  }

  private call<T>(operation: string, send: (signal: AbortSignal) => Promise<T>, options: CallOptions): Promise<T> {
    const what = `rekognition ${operation}`;
    return resilient(
      this.policy,
      what,
      async (signal) => {
        try {
          return await send(signal);
        } catch (err) {
          if (signal.aborted) throw cancelled(signal, what);
          throw mapRekognitionError(err, what);
        }
      },
      options,
    ).catch((err: unknown) => {
      // resilient() reports a cut attempt as storage_timeout; for this port it is an unavailable analyzer.
      throw err instanceof TransientError && err.code === 'storage_timeout' ? new TransientError('analyzer_unavailable', err.message, err) : err;
    });
  }

  private mapModeration(out: DetectModerationLabelsCommandOutput): ModerationResult {
    const categories = (out.ModerationLabels ?? [])
      .filter((l) => typeof l.Name === 'string' && l.Name !== '')
      .map((l) => ({ name: l.Name as string, score: score(l.Confidence) }));
    // Rekognition returns only labels at or above MinConfidence; re-checked here because a label
    // without a confidence (or a fake's) must not flag an image on its own.
    const flagged = categories.some((c) => c.score * 100 >= this.moderationMinConfidence);
    return { verdict: flagged ? 'flagged' : 'ok', categories };
  }
}

function mapFaces(out: DetectFacesCommandOutput): DetectedFace[] {
  const faces: DetectedFace[] = [];
  for (const f of out.FaceDetails ?? []) {
    const b = f.BoundingBox;
    if (!b || b.Left === undefined || b.Top === undefined || b.Width === undefined || b.Height === undefined) continue;
    const box = clampBox(b.Left, b.Top, b.Width, b.Height);
    if (box.width > 0 && box.height > 0) faces.push({ box, score: score(f.Confidence) });
  }
  return faces;
}

function mapLabels(out: DetectLabelsCommandOutput): ImageLabel[] {
  return (out.Labels ?? []).filter((l) => typeof l.Name === 'string' && l.Name !== '').map((l) => ({ name: l.Name as string, score: score(l.Confidence) }));
}

/** Rekognition's confidences are percentages; the port's scores are fractions. */
function score(confidence: number | undefined): number {
  return typeof confidence === 'number' && Number.isFinite(confidence) ? Math.min(1, Math.max(0, confidence / 100)) : 0;
}

function percent(v: number, what: string): number {
  if (!Number.isFinite(v) || v < 0 || v > 100) throw new RangeError(`${what} must be within 0–100, got ${v}`);
  return v;
}
