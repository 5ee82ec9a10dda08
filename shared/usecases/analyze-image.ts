/**
 * Use case step: the analysis of one image inside processing (faces, labels, moderation).
 *
 * The analyzer is a downstream like storage. Its calls go through `resilient()` (retries with jitter) and
 * one {@link CircuitBreaker} per cold start, so an outage costs the first few images their retries and
 * the rest nothing until the breaker lets a trial call through. The whole analysis of one image,
 * retries included, ends within `config.analysis.budgetMs` and before the invocation's work deadline.
 *
 * It runs inside the processor's single decode (`RenderOptions.analyze`), on a ≤ 640 px rung, before
 * any variant: its faces place the `position: faces` crops, and a blocked image is stopped before a
 * single variant is encoded.
 */
import type { AnalysisConfig, VariantSpec } from '../config';
import { ImageRejectedError, PixelpipeError, TransientError } from '../errors';
import type { CallOptions, Invocation } from '../invocation';
import type { ManifestAnalysis } from '../manifest';
import {
  ANALYSIS_KINDS,
  type AnalysisContext,
  type ImageProbe,
  type AnalysisKind,
  type AnalysisPixels,
  type AnalysisResult,
  type ImageAnalyzer,
  type Logger,
  type ModerationResult,
  type RenderOptions,
} from '../ports';
import { CircuitBreaker, resilient, type ResiliencePolicy, type RetryOptions } from '../resilience';

/** The analyzer with its configuration and resilience policy: built once per cold start, shared by every image. */
export interface AnalysisStage {
  analyzer: ImageAnalyzer;
  config: AnalysisConfig;
  policy: ResiliencePolicy;
}

/** Knobs of {@link createAnalysisStage}; tests inject time and sleep, deployments use the defaults. */
export interface AnalysisStageOptions {
  /** Attempts per image, the first included (default 3). */
  attempts?: number;
  /** Consecutive transient failures that open the breaker (default 5) and how long it stays open (default 30 s). */
  failureThreshold?: number;
  openMs?: number;
  now?: () => number;
  sleep?: RetryOptions['sleep'];
  random?: () => number;
}

/**
 * Builds the stage for `analyzer` under `config`. Call once per cold start: the breaker it holds is what
 * remembers an outage from one image to the next.
 */
export function createAnalysisStage(analyzer: ImageAnalyzer, config: AnalysisConfig, options: AnalysisStageOptions = {}): AnalysisStage {
  const now = options.now ?? Date.now;
  return {
    analyzer,
    config,
    policy: {
      retry: { attempts: options.attempts ?? 3, baseDelayMs: 100, maxDelayMs: 1000, now, sleep: options.sleep, random: options.random },
      breaker: new CircuitBreaker(`analyzer ${analyzer.name}`, { failureThreshold: options.failureThreshold ?? 5, openMs: options.openMs ?? 30_000, now }),
      // Cut to the budget by `resilient`; a remote analyzer answering a 640 px image takes well under this.
      timeoutMs: 10_000,
    },
  };
}

/** What the analysis of one image needs from the run that processes it. */
export interface AnalysisRun {
  inv: Invocation;
  /** The run's work options: their deadline leaves the reserve for recording the outcome. */
  work: CallOptions;
  log: Logger;
}

/** The analysis of one image: the render hook, and afterwards what goes into the manifest. */
export interface ImageAnalysis {
  /** Spread into the processor's options: `{ analyze }`, or nothing when no analysis is wanted. */
  readonly renderOptions: Pick<RenderOptions, 'analyze'>;
  /** Set once the hook ran: the manifest's `analysis` (also on failures: blocked, or optional and failed). */
  readonly manifest: ManifestAnalysis | undefined;
  /** Set once the hook ran: the probed original it was called for (a blocked image's placeholders are made for it). */
  readonly source: ImageProbe | undefined;
}

/** The analyses one image needs: the configured ones, plus faces when a variant crops on them. */
export function analysesFor(stage: AnalysisStage, variants: readonly VariantSpec[]): AnalysisKind[] {
  const wanted = new Set<AnalysisKind>(stage.config.analyses);
  if (variants.some((v) => v.position === 'faces') && stage.analyzer.supports.includes('faces')) wanted.add('faces');
  return ANALYSIS_KINDS.filter((k) => wanted.has(k));
}

/**
 * Prepares the analysis of one image rendered with `variants`. With no stage, or nothing to ask for, the
 * hook is absent and the processor does no analysis at all (and `faces` crops fall back to `attention`).
 *
 * The hook never throws for an optional analysis that failed: it records `analysis.error` and returns
 * `null`. It throws `TransientError('analyzer_unavailable')` when the analysis is required (or moderation
 * blocks: an unmoderated image must not be published) so the platform retries under the attempt ledger,
 * and `ImageRejectedError('content_blocked')` when the moderation policy withholds the image.
 */
export function beginAnalysis(stage: AnalysisStage | undefined, run: AnalysisRun, variants: readonly VariantSpec[]): ImageAnalysis {
  const kinds = stage ? analysesFor(stage, variants) : [];
  const state: { manifest: ManifestAnalysis | undefined; source: ImageProbe | undefined } = { manifest: undefined, source: undefined };
  if (!stage || kinds.length === 0) return { renderOptions: {}, manifest: undefined, source: undefined };
  const analyze = async (pixels: AnalysisPixels, context: AnalysisContext): Promise<AnalysisResult | null> => {
    const started = run.inv.now();
    const frames = context.frames ?? [];
    state.source = context.probe;
    let result: AnalysisResult;
    try {
      result = await withinBudget(stage, run, started, async (call) => {
        const once = (px: AnalysisPixels, asked: readonly AnalysisKind[]) =>
          resilient(stage.policy, `analyzer ${stage.analyzer.name}`, (signal) => stage.analyzer.analyze(px, asked, { signal, deadline: call.deadline }), call);
        const first = await once(pixels, kinds);
        // Later frames of an animation are only moderated (faces and labels come from the first frame),
        // one at a time and under the same budget; the first flagged frame settles the verdict.
        if (!kinds.includes('moderation') || !stage.analyzer.supports.includes('moderation')) return first;
        for (const frame of frames) {
          if (first.moderation?.verdict === 'flagged') break;
          first.moderation = mergeModeration(first.moderation, (await once(frame, ['moderation'])).moderation);
        }
        return first;
      });
    } catch (err) {
      const ms = Math.max(0, run.inv.now() - started);
      const error = describeFailure(err);
      state.manifest = {
        analyzer: stage.analyzer.name,
        ms,
        ...(kinds.includes('moderation') ? { moderation: { verdict: 'unavailable' as const, categories: [] } } : {}),
        error,
      };
      if (stage.config.required || stage.config.moderation === 'block') {
        run.log.warn('analysis failed and is required; the platform will retry', { analyzer: stage.analyzer.name, ms, reason: error.code });
        throw new TransientError('analyzer_unavailable', `analysis failed: ${error.message}`, err);
      }
      run.log.warn('analysis failed; processing without it', { analyzer: stage.analyzer.name, ms, reason: error.code, detail: error.message });
      return null;
    }
    const entry = toManifest(result, kinds, Math.max(0, run.inv.now() - started));
    state.manifest = entry;
    if (entry.moderation?.verdict === 'flagged' && stage.config.moderation === 'block') {
      entry.moderation.verdict = 'blocked';
      const top = entry.moderation.categories.map((c) => c.name).slice(0, 3);
      throw new ImageRejectedError('content_blocked', `moderation blocked the image${top.length ? ` (${top.join(', ')})` : ''}`);
    }
    return result;
  };
  return {
    renderOptions: { analyze },
    get manifest() {
      return state.manifest;
    },
    get source() {
      return state.source;
    },
  };
}

/**
 * Runs `fn` with a deadline of `budgetMs` from `started` (never past the run's work deadline) and a
 * signal aborted when that budget is spent. The budget is also enforced by a timer racing `fn`: an
 * analyzer that ignores its signal is abandoned (its result discarded), not waited for.
 */
async function withinBudget<T>(stage: AnalysisStage, run: AnalysisRun, started: number, fn: (call: CallOptions) => Promise<T>): Promise<T> {
  const deadline = Math.min(run.work.deadline ?? Number.POSITIVE_INFINITY, started + stage.config.budgetMs);
  const controller = new AbortController();
  const spent = new TransientError('deadline_exceeded', `analysis budget spent (${stage.config.budgetMs} ms, or the invocation's deadline)`);
  const onAbort = (): void => controller.abort(run.inv.signal.reason);
  if (run.inv.signal.aborted) onAbort();
  else run.inv.signal.addEventListener('abort', onAbort, { once: true });
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(
      () => {
        controller.abort(spent);
        reject(spent);
      },
      Math.max(0, deadline - run.inv.now()),
    );
  });
  const work = fn({ signal: controller.signal, deadline });
  // Whichever loses the race must not surface later as an unhandled rejection.
  work.catch(() => {});
  expired.catch(() => {});
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
    run.inv.signal.removeEventListener('abort', onAbort);
  }
}

/** One verdict for several frames: flagged if any frame is, each category at its highest score. */
function mergeModeration(a: ModerationResult | undefined, b: ModerationResult | undefined): ModerationResult | undefined {
  if (!a || !b) return a ?? b;
  const rank = { flagged: 2, ok: 1, unavailable: 0 } as const;
  const scores = new Map<string, number>();
  for (const c of [...a.categories, ...b.categories]) scores.set(c.name, Math.max(scores.get(c.name) ?? 0, c.score));
  // `unavailable` on any frame means that frame was not checked: the whole animation is then not `ok`.
  const verdict = a.verdict === 'flagged' || b.verdict === 'flagged' ? 'flagged' : rank[a.verdict] <= rank[b.verdict] ? a.verdict : b.verdict;
  return { verdict, categories: [...scores].map(([name, score]) => ({ name, score })).sort((x, y) => y.score - x.score) };
}

function describeFailure(err: unknown): { code: string; message: string } {
  if (err instanceof PixelpipeError) {
    const code = err.code === 'storage_timeout' || err.code === 'deadline_exceeded' ? 'analysis_timeout' : err.code;
    return { code, message: err.message };
  }
  return { code: 'analyzer_failed', message: err instanceof Error ? err.message : String(err) };
}

const round = (v: number, digits: number): number => Math.round(v * 10 ** digits) / 10 ** digits;
const score = (v: number): number => round(Math.min(1, Math.max(0, v)), 3);

/** The manifest's view of a result: only what was asked for, rounded (boxes to 1/10 000 of a side). */
function toManifest(result: AnalysisResult, kinds: readonly AnalysisKind[], ms: number): ManifestAnalysis {
  const entry: ManifestAnalysis = { analyzer: result.analyzer, ms };
  if (kinds.includes('faces') && result.faces) {
    entry.faces = result.faces.map((f) => ({
      box: { left: round(f.box.left, 4), top: round(f.box.top, 4), width: round(f.box.width, 4), height: round(f.box.height, 4) },
      score: score(f.score),
      // Five decimals: distances between descriptors (≈ 0.2–1.2) stay exact to 1e-4, at ≈ 1 KB per face.
      ...(f.descriptor ? { descriptor: f.descriptor.map((v) => round(v, 5)) } : {}),
    }));
    const withDescriptor = entry.faces.filter((f) => f.descriptor).length;
    if (withDescriptor) entry.faceDescriptors = withDescriptor;
  }
  if (kinds.includes('labels') && result.labels) entry.labels = result.labels.map((l) => ({ name: l.name, score: score(l.score) }));
  if (kinds.includes('moderation')) {
    const m = result.moderation;
    entry.moderation = m
      ? { verdict: m.verdict, categories: m.categories.map((c) => ({ name: c.name, score: score(c.score) })) }
      : { verdict: 'unavailable', categories: [] };
  }
  if (result.unavailable.length) entry.unavailable = [...result.unavailable];
  return entry;
}
