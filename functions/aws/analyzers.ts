/**
 * The AWS process function's cloud analyzer, for `PIXELPIPE_ANALYZER=rekognition`. Kept apart from the
 * adapter so that importing this costs nothing: the adapter and `@aws-sdk/client-rekognition` are
 * loaded on the first image (`lazyAnalyzer`; measured in the README's cloud analyzers section).
 */
import type { AnalysisConfig } from '../../shared/config';
import { lazyAnalyzer } from '../../shared/lazy-analyzer';
import type { ImageAnalyzer } from '../../shared/ports';
import { singleAttempt } from '../../shared/resilience';

/**
 * Rekognition with SDK retries off and one attempt per call: the analysis stage
 * (`shared/usecases/analyze-image.ts`) retries the whole analysis within its budget and holds the
 * breaker. Region and credentials come from the Lambda environment.
 */
export function createRekognitionAnalyzer(analysis: Pick<AnalysisConfig, 'moderationMinConfidence'>): ImageAnalyzer {
  return lazyAnalyzer('aws-rekognition', ['faces', 'labels', 'moderation'], async () => {
    const [{ RekognitionClient }, { RekognitionImageAnalyzer }] = await Promise.all([
      import('@aws-sdk/client-rekognition'),
      import('./rekognition-image-analyzer'),
    ]);
    return new RekognitionImageAnalyzer(new RekognitionClient({ maxAttempts: 1 }), {
      moderationMinConfidence: analysis.moderationMinConfidence,
      policy: singleAttempt('rekognition'),
    });
  });
}
