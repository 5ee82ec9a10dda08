/**
 * The GCP process function's cloud analyzer, for `PIXELPIPE_ANALYZER=vision`. The adapter and
 * `google-auth-library` are loaded on the first image (`lazyAnalyzer`), not at cold start.
 */
import { lazyAnalyzer } from '../../shared/lazy-analyzer';
import type { ImageAnalyzer } from '../../shared/ports';
import { singleAttempt } from '../../shared/resilience';

/**
 * Vision with Application Default Credentials (the function's service account on Cloud Functions;
 * the quota project of user credentials is sent as `x-goog-user-project`), one attempt per image:
 * the analysis stage (`shared/usecases/analyze-image.ts`) retries within its budget and holds the breaker.
 */
export function createVisionAnalyzer(gcp: { projectId?: string }, options: { endpoint?: string } = {}): ImageAnalyzer {
  return lazyAnalyzer('google-vision', ['faces', 'labels', 'moderation'], async () => {
    const [{ applicationDefaultCredentials }, { VisionImageAnalyzer }] = await Promise.all([import('./google-auth'), import('./vision-image-analyzer')]);
    const credentials = applicationDefaultCredentials(gcp.projectId ? { projectId: gcp.projectId } : {});
    return new VisionImageAnalyzer(credentials, { ...options, policy: singleAttempt('vision') });
  });
}
