/**
 * VisionImageAnalyzer against the local Vision fake (test/servers/vision-fake.ts), with real
 * `google-auth-library` credentials (user credentials with a quota project, tokens from the local
 * Google fake): request shape (features, inline JPEG of the rung's size, bearer token, quota project),
 * mapping onto the port, SafeSearch verdicts, errors, throttling, cancellation.
 */
import { credentialsFromJson, type GoogleCredentials } from '../../functions/gcp/google-auth';
import { VisionImageAnalyzer, type VisionImageAnalyzerOptions } from '../../functions/gcp/vision-image-analyzer';
import { PixelpipeError } from '../../shared/errors';
import type { AnalysisPixels } from '../../shared/ports';
import { CircuitBreaker, type ResiliencePolicy } from '../../shared/resilience';
import { analysisRung } from '../support/analysis-pixels';
import { startGoogleFake, type GoogleFake } from '../support/google-fake';
import { QUOTA_EXCEEDED, UNAVAILABLE, VisionFake } from '../servers/vision-fake';

const fastPolicy = (): ResiliencePolicy => ({
  retry: { attempts: 3, baseDelayMs: 5, maxDelayMs: 10 },
  breaker: new CircuitBreaker('vision-test', { failureThreshold: 100, openMs: 1000 }),
  timeoutMs: 5000,
});

let vision: VisionFake;
let endpoint: string;
let google: GoogleFake;
let creds: GoogleCredentials;
let pixels: AnalysisPixels;

beforeAll(async () => {
  vision = new VisionFake();
  endpoint = await vision.start();
  google = await startGoogleFake({
    'POST /oauth2.googleapis.com/token': () => ({ json: { access_token: 'ya29.vision', expires_in: 3599, token_type: 'Bearer' } }),
  });
  creds = credentialsFromJson(
    { type: 'authorized_user', client_id: 'cid', client_secret: 's', refresh_token: 'r', quota_project_id: 'pixelpipe-quota' },
    'test',
    { fetch: google.fetch },
  );
  pixels = await analysisRung(640, 480, 3);
});

afterAll(async () => {
  await vision.stop();
  await google.close();
});

beforeEach(() => vision.reset());

const analyzer = (options: VisionImageAnalyzerOptions = {}): VisionImageAnalyzer =>
  new VisionImageAnalyzer(creds, { endpoint, policy: fastPolicy(), ...options });

describe('request shape', () => {
  it('asks for the requested features only, with the rung inline as a JPEG of its size, a bearer token and the quota project', async () => {
    const r = await analyzer().analyze(pixels, ['faces', 'moderation']);
    expect(vision.requests).toHaveLength(1);
    const [req] = vision.requests;
    expect(req.features).toEqual([{ type: 'FACE_DETECTION', maxResults: 50 }, { type: 'SAFE_SEARCH_DETECTION' }]);
    expect(req.image).toMatchObject({ format: 'jpeg', width: 640, height: 480 });
    expect(req.headers.authorization).toBe('Bearer ya29.vision');
    expect(req.headers['x-goog-user-project']).toBe('pixelpipe-quota');
    expect(r).toMatchObject({ analyzer: 'google-vision', unavailable: [], faces: [] });
    expect(r.labels).toBeUndefined();
  });

  it('keeps grey and alpha rungs decodable at their size, and sends the label limit', async () => {
    for (const channels of [1, 4] as const) {
      vision.reset();
      await analyzer({ maxLabels: 4 }).analyze(await analysisRung(200, 320, channels), ['labels']);
      expect(vision.requests[0].features).toEqual([{ type: 'LABEL_DETECTION', maxResults: 4 }]);
      expect(vision.requests[0].image).toMatchObject({ format: 'jpeg', width: 200, height: 320 });
    }
  });

  it('sends nothing when nothing is asked for', async () => {
    await expect(analyzer().analyze(pixels, [])).resolves.toMatchObject({ unavailable: [] });
    expect(vision.requests).toHaveLength(0);
  });
});

describe('mapping', () => {
  it('turns fdBoundingPoly pixel vertices into normalised boxes, clamped to the frame, with the detection confidence', async () => {
    vision.scene = {
      faces: [
        { box: { left: 0.25, top: 0.125, width: 0.25, height: 0.25 }, confidence: 0.97 },
        // At the top-left corner: zero coordinates are omitted in the answer, and the box reaches past the edge.
        { box: { left: -0.05, top: -0.1, width: 0.2, height: 0.3 }, confidence: 0.8 },
      ],
      labels: [
        { description: 'Bird', score: 0.93 },
        { description: 'Branch', score: 0.81 },
      ],
    };
    const r = await analyzer().analyze(pixels, ['faces', 'labels']);
    expect(r.faces).toEqual([
      { box: { left: 0.25, top: 0.125, width: 0.25, height: 0.25 }, score: 0.97 },
      { box: { left: 0, top: 0, width: expect.closeTo(0.15, 2) as number, height: expect.closeTo(0.2, 2) as number }, score: 0.8 },
    ]);
    expect(r.labels).toEqual([
      { name: 'Bird', score: 0.93 },
      { name: 'Branch', score: 0.81 },
    ]);
  });

  it.each([
    [{ adult: 'VERY_UNLIKELY', racy: 'POSSIBLE', violence: 'UNLIKELY' }, 'ok'],
    [{ racy: 'LIKELY' }, 'flagged'],
    [{ violence: 'VERY_LIKELY' }, 'flagged'],
    // spoof and medical describe the kind of picture: recorded, never flagging.
    [{ spoof: 'VERY_LIKELY', medical: 'VERY_LIKELY' }, 'ok'],
    [{ adult: 'UNKNOWN', racy: 'UNKNOWN', violence: 'UNKNOWN' }, 'unavailable'],
  ])('SafeSearch %j → %s at the default threshold (LIKELY)', async (safeSearch, verdict) => {
    vision.scene = { safeSearch };
    const m = (await analyzer().analyze(pixels, ['moderation'])).moderation!;
    expect(m.verdict).toBe(verdict);
    for (const [name, level] of Object.entries(safeSearch)) {
      const expected = { VERY_UNLIKELY: 0, UNLIKELY: 0.25, POSSIBLE: 0.5, LIKELY: 0.75, VERY_LIKELY: 1 }[level];
      expect(m.categories.find((c) => c.name === name)?.score).toBe(expected);
    }
  });

  it('honours a stricter threshold', async () => {
    vision.scene = { safeSearch: { racy: 'POSSIBLE' } };
    expect((await analyzer({ flagAt: 'POSSIBLE' }).analyze(pixels, ['moderation'])).moderation!.verdict).toBe('flagged');
  });
});

describe('errors', () => {
  it.each([
    ['429 RESOURCE_EXHAUSTED', QUOTA_EXCEEDED],
    ['503 UNAVAILABLE', UNAVAILABLE],
    ['malformed 200', { kind: 'malformed' as const }],
  ])('retries %s and succeeds when it passes', async (_name, fault) => {
    vision.scene = { labels: [{ description: 'Tree', score: 0.9 }] };
    vision.failNext(fault, 2);
    expect((await analyzer().analyze(pixels, ['labels'])).labels).toEqual([{ name: 'Tree', score: 0.9 }]);
    expect(vision.requests).toHaveLength(3);
  });

  it('reports persistent throttling as a retryable analyzer_unavailable', async () => {
    vision.failNext(QUOTA_EXCEEDED, 3);
    const err = (await analyzer()
      .analyze(pixels, ['faces'])
      .catch((e: unknown) => e)) as PixelpipeError;
    expect(err).toBeInstanceOf(PixelpipeError);
    expect(err).toMatchObject({ code: 'analyzer_unavailable', retryable: true });
    expect(err.message).toContain('RESOURCE_EXHAUSTED');
    expect(vision.requests).toHaveLength(3);
  });

  it.each([
    [400, 'INVALID_ARGUMENT'],
    [403, 'PERMISSION_DENIED'],
  ])('treats HTTP %i %s as permanent without retrying', async (status, rpcStatus) => {
    vision.failNext({ kind: 'http', status, rpcStatus });
    const err = (await analyzer()
      .analyze(pixels, ['faces'])
      .catch((e: unknown) => e)) as PixelpipeError;
    expect(err).toMatchObject({ code: 'internal', retryable: false });
    expect(err.message).toContain(rpcStatus);
    expect(vision.requests).toHaveLength(1);
  });

  it('maps a per-image error inside a 200: RESOURCE_EXHAUSTED retryable, INVALID_ARGUMENT permanent', async () => {
    vision.scene = { imageError: { code: 8, message: 'Quota exhausted' } };
    await expect(analyzer().analyze(pixels, ['labels'])).rejects.toMatchObject({ code: 'analyzer_unavailable', retryable: true });
    expect(vision.requests).toHaveLength(3);
    vision.reset();
    vision.scene = { imageError: { code: 3, message: 'Bad image data.' } };
    await expect(analyzer().analyze(pixels, ['labels'])).rejects.toMatchObject({ code: 'internal', retryable: false });
    expect(vision.requests).toHaveLength(1);
  });

  it('fails like the other GCP adapters when the token endpoint is down: auth_unavailable, retryable', async () => {
    const down = await startGoogleFake({ 'POST /oauth2.googleapis.com/token': () => ({ status: 503, json: { error: 'backend_error' } }) });
    try {
      const c = credentialsFromJson({ type: 'authorized_user', client_id: 'c', client_secret: 's', refresh_token: 'r' }, 'test', { fetch: down.fetch });
      const err = (await new VisionImageAnalyzer(c, { endpoint, policy: fastPolicy() }).analyze(pixels, ['faces']).catch((e: unknown) => e)) as PixelpipeError;
      expect(err).toMatchObject({ code: 'auth_unavailable', retryable: true });
      expect(vision.requests).toHaveLength(0);
    } finally {
      await down.close();
    }
  });
});

describe('cancellation', () => {
  it("aborts the request when the caller's signal aborts", async () => {
    vision.failNext({ kind: 'hang' });
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('invocation ended')), 100);
    const started = Date.now();
    const err = (await analyzer()
      .analyze(pixels, ['faces'], { signal: controller.signal })
      .catch((e: unknown) => e)) as PixelpipeError;
    expect(Date.now() - started).toBeLessThan(2000);
    expect(err).toMatchObject({ retryable: true });
    await waitFor(() => vision.aborted === 1);
  });

  it('gives up at the deadline, with the held request closed', async () => {
    vision.failNext({ kind: 'hang' }, 5);
    const started = Date.now();
    const err = (await analyzer()
      .analyze(pixels, ['labels'], { deadline: Date.now() + 300 })
      .catch((e: unknown) => e)) as PixelpipeError;
    expect(Date.now() - started).toBeLessThan(2500);
    expect(err).toMatchObject({ retryable: true });
    await waitFor(() => vision.aborted >= 1);
  });
});

async function waitFor(cond: () => boolean, ms = 2000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
