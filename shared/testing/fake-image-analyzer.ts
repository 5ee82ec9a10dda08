/** An in-memory {@link ImageAnalyzer} for tests: scripted findings, scripted failures, every call recorded. */
import type { AnalysisKind, AnalysisPixels, AnalysisResult, CallOptions, DetectedFace, ImageAnalyzer, ImageLabel, ModerationResult } from '../ports';
import { ANALYSIS_KINDS } from '../ports';
import { cancelled } from '../resilience';

export interface FakeAnalyzerOptions {
  name?: string;
  supports?: readonly AnalysisKind[];
  faces?: DetectedFace[];
  labels?: ImageLabel[];
  /** What moderation finds when it is supported (default: `ok`, no categories). */
  moderation?: ModerationResult;
}

/** One recorded `analyze` call. */
export interface FakeAnalyzerCall {
  width: number;
  height: number;
  channels: number;
  analyses: AnalysisKind[];
  options: CallOptions;
}

export class FakeImageAnalyzer implements ImageAnalyzer {
  readonly name: string;
  readonly supports: readonly AnalysisKind[];
  readonly calls: FakeAnalyzerCall[] = [];
  faces: DetectedFace[];
  labels: ImageLabel[];
  moderation: ModerationResult;
  private failures: Array<Error | 'hang'> = [];
  private failAlways: Error | 'hang' | undefined;
  /** Runs at the start of every call, e.g. to advance a test clock as if the call took time. */
  onCall: ((call: FakeAnalyzerCall) => void) | undefined;

  constructor(options: FakeAnalyzerOptions = {}) {
    this.name = options.name ?? 'fake';
    this.supports = options.supports ?? ANALYSIS_KINDS;
    this.faces = options.faces ?? [];
    this.labels = options.labels ?? [];
    this.moderation = options.moderation ?? { verdict: 'ok', categories: [] };
  }

  /** The next `times` calls fail with `err` (`'hang'`: never answer until the signal aborts). */
  failNext(err: Error | 'hang', times = 1): this {
    for (let i = 0; i < times; i++) this.failures.push(err);
    return this;
  }

  /** Every call fails with `err` until `recover()`: an outage. */
  failAll(err: Error | 'hang'): this {
    this.failAlways = err;
    return this;
  }

  recover(): this {
    this.failAlways = undefined;
    this.failures = [];
    return this;
  }

  async analyze(pixels: AnalysisPixels, analyses: readonly AnalysisKind[], options: CallOptions = {}): Promise<AnalysisResult> {
    const call = { width: pixels.width, height: pixels.height, channels: pixels.channels, analyses: [...analyses], options };
    this.calls.push(call);
    this.onCall?.(call);
    if (options.signal?.aborted) throw cancelled(options.signal, 'fake analyze');
    const failure = this.failures.shift() ?? this.failAlways;
    if (failure === 'hang') {
      // Answers only to its signal, like a request to a stalled service.
      await new Promise<never>((_resolve, reject) => {
        options.signal?.addEventListener('abort', () => reject(cancelled(options.signal, 'fake analyze')), { once: true });
      });
    } else if (failure) {
      throw failure;
    }
    const can = (k: AnalysisKind): boolean => analyses.includes(k) && this.supports.includes(k);
    const result: AnalysisResult = { unavailable: analyses.filter((a) => !this.supports.includes(a)), analyzer: this.name, ms: 1 };
    if (can('faces')) result.faces = this.faces.map((f) => ({ box: { ...f.box }, score: f.score }));
    if (can('labels')) result.labels = this.labels.map((l) => ({ ...l }));
    if (analyses.includes('moderation')) result.moderation = can('moderation') ? { ...this.moderation } : { verdict: 'unavailable', categories: [] };
    return result;
  }
}
