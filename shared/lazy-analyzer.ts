/**
 * An {@link ImageAnalyzer} whose real adapter (and its SDK) is loaded on the first image, not at cold
 * start: the cloud analyzers' clients cost tens of milliseconds to evaluate (measured in the README's
 * analyzer section), which would be paid by every cold start, including those that never see an image.
 */
import type { AnalysisKind, AnalysisPixels, AnalysisResult, CallOptions, ImageAnalyzer } from './ports';

/**
 * Wraps `load` (called once; again after a failed load) behind the adapter's `name` and `supports`,
 * which must be known without loading it. The first image's `ms` excludes the load; the wrapper adds it.
 */
export function lazyAnalyzer(name: string, supports: readonly AnalysisKind[], load: () => Promise<ImageAnalyzer>): ImageAnalyzer {
  let loading: Promise<ImageAnalyzer> | undefined;
  return {
    name,
    supports,
    async analyze(pixels: AnalysisPixels, analyses: readonly AnalysisKind[], options?: CallOptions): Promise<AnalysisResult> {
      const started = Date.now();
      loading ??= load().catch((err: unknown) => {
        loading = undefined;
        throw err;
      });
      const analyzer = await loading;
      const loadMs = Date.now() - started;
      const result = await analyzer.analyze(pixels, analyses, options);
      return { ...result, ms: result.ms + loadMs };
    },
  };
}
