/**
 * RekognitionImageAnalyzer with the real `@aws-sdk/client-rekognition` pointed at the local Rekognition
 * fake (test/servers/rekognition-fake.ts): request shape (only the requested operations, inline JPEG of
 * the rung's size, SigV4), mapping onto the port, errors, throttling, cancellation.
 */
import { RekognitionClient } from '@aws-sdk/client-rekognition';
import { DEFAULT_MODERATION_MIN_CONFIDENCE, RekognitionImageAnalyzer } from '../../functions/aws/rekognition-image-analyzer';
import { PixelpipeError } from '../../shared/errors';
import type { AnalysisPixels } from '../../shared/ports';
import { CircuitBreaker, type ResiliencePolicy } from '../../shared/resilience';
import { analysisRung as rung } from '../support/analysis-pixels';
import { INTERNAL_SERVER_ERROR, PROVISIONED_THROUGHPUT, RekognitionFake, THROTTLING } from '../servers/rekognition-fake';

const fastPolicy = (attempts = 3): ResiliencePolicy => ({
  retry: { attempts, baseDelayMs: 5, maxDelayMs: 10 },
  breaker: new CircuitBreaker('rekognition-test', { failureThreshold: 100, openMs: 1000 }),
  timeoutMs: 5000,
});

let fake: RekognitionFake;
let client: RekognitionClient;
let pixels: AnalysisPixels;

beforeAll(async () => {
  fake = new RekognitionFake();
  const endpoint = await fake.start();
  client = new RekognitionClient({ endpoint, region: 'eu-west-1', credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' }, maxAttempts: 1 });
  pixels = await rung(640, 427, 3);
});

afterAll(async () => {
  client.destroy();
  await fake.stop();
});

beforeEach(() => {
  fake.reset();
});

const analyzer = (options: ConstructorParameters<typeof RekognitionImageAnalyzer>[1] = {}): RekognitionImageAnalyzer =>
  new RekognitionImageAnalyzer(client, { policy: fastPolicy(), ...options });

describe('request shape', () => {
  it('calls only the requested operations, with the rung inline as a JPEG of its size, signed with SigV4', async () => {
    const result = await analyzer().analyze(pixels, ['faces']);
    expect(fake.requests.map((r) => r.operation)).toEqual(['DetectFaces']);
    const [req] = fake.requests;
    expect(req.body.Attributes).toEqual(['DEFAULT']);
    expect(req.image).toMatchObject({ format: 'jpeg', width: 640, height: 427 });
    expect(req.headers['x-amz-target']).toBe('RekognitionService.DetectFaces');
    expect(req.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDTEST\/\d{8}\/eu-west-1\/rekognition\/aws4_request, /);
    expect(result.faces).toEqual([]);
    expect(result.labels).toBeUndefined();
    expect(result.moderation).toBeUndefined();
    expect(result).toMatchObject({ analyzer: 'aws-rekognition', unavailable: [] });
  });

  it('runs the three operations concurrently with the configured confidences', async () => {
    await analyzer({ moderationMinConfidence: 80, labelMinConfidence: 70, maxLabels: 3 }).analyze(pixels, ['faces', 'labels', 'moderation']);
    const byOp = Object.fromEntries(fake.requests.map((r) => [r.operation, r.body]));
    expect(Object.keys(byOp).sort()).toEqual(['DetectFaces', 'DetectLabels', 'DetectModerationLabels']);
    expect(byOp.DetectLabels).toMatchObject({ MaxLabels: 3, MinConfidence: 70, Features: ['GENERAL_LABELS'] });
    expect(byOp.DetectModerationLabels).toMatchObject({ MinConfidence: 80 });
    // All three carry the same bytes: the rung is encoded once.
    expect(new Set(fake.requests.map((r) => (r.body.Image as { Bytes: string }).Bytes)).size).toBe(1);
  });

  it('flattens alpha and keeps grey rungs decodable at their size', async () => {
    for (const channels of [4, 1] as const) {
      fake.requests.length = 0;
      await analyzer().analyze(await rung(300, 500, channels), ['labels']);
      expect(fake.requests[0].image).toMatchObject({ format: 'jpeg', width: 300, height: 500 });
    }
  });
});

describe('mapping', () => {
  it('maps faces (clamped to the frame), labels and scores as fractions', async () => {
    fake.scene = {
      faces: [
        { box: { left: 0.1, top: 0.2, width: 0.25, height: 0.3 }, confidence: 99.5 },
        // A face cut by the left and bottom edges: Rekognition reports a box reaching past them.
        { box: { left: -0.05, top: 0.8, width: 0.2, height: 0.3 }, confidence: 90 },
      ],
      labels: [
        { name: 'Person', confidence: 98 },
        { name: 'Bird', confidence: 60 },
        { name: 'Blur', confidence: 40 },
      ],
    };
    const r = await analyzer().analyze(pixels, ['faces', 'labels']);
    expect(r.faces).toHaveLength(2);
    expect(r.faces![0].score).toBeCloseTo(0.995, 6);
    expect(r.faces![0].box).toEqual({ left: 0.1, top: 0.2, width: expect.closeTo(0.25, 9) as number, height: expect.closeTo(0.3, 9) as number });
    expect(r.faces![1].box.left).toBe(0);
    expect(r.faces![1].box.width).toBeCloseTo(0.15, 9);
    expect(r.faces![1].box.top).toBeCloseTo(0.8, 9);
    expect(r.faces![1].box.height).toBeCloseTo(0.2, 9);
    // Below the default MinConfidence (55) the service returns nothing.
    expect(r.labels).toEqual([
      { name: 'Person', score: 0.98 },
      { name: 'Bird', score: 0.6 },
    ]);
  });

  it('flags an image with a moderation label at or above the minimum confidence, and says ok otherwise', async () => {
    fake.scene = {
      moderation: [
        { name: 'Explicit Nudity', confidence: 91 },
        { name: 'Nudity', parentName: 'Explicit Nudity', confidence: 91 },
      ],
    };
    const flagged = await analyzer().analyze(pixels, ['moderation']);
    expect(flagged.moderation).toEqual({
      verdict: 'flagged',
      categories: [
        { name: 'Explicit Nudity', score: 0.91 },
        { name: 'Nudity', score: 0.91 },
      ],
    });
    fake.scene = { moderation: [{ name: 'Suggestive', confidence: DEFAULT_MODERATION_MIN_CONFIDENCE + 10 }] };
    expect((await analyzer({ moderationMinConfidence: 80 }).analyze(pixels, ['moderation'])).moderation).toEqual({ verdict: 'ok', categories: [] });
    fake.scene = {};
    expect((await analyzer().analyze(pixels, ['moderation'])).moderation).toEqual({ verdict: 'ok', categories: [] });
  });
});

describe('errors', () => {
  it.each([
    ['ThrottlingException', THROTTLING],
    ['ProvisionedThroughputExceededException', PROVISIONED_THROUGHPUT],
    ['InternalServerError (500)', INTERNAL_SERVER_ERROR],
  ])('retries %s and succeeds when it passes', async (_name, fault) => {
    fake.scene = { labels: [{ name: 'Tree', confidence: 88 }] };
    fake.failNext(fault, 2);
    const r = await analyzer().analyze(pixels, ['labels']);
    expect(r.labels).toEqual([{ name: 'Tree', score: 0.88 }]);
    expect(fake.requests).toHaveLength(3);
  });

  it.each([THROTTLING, PROVISIONED_THROUGHPUT, INTERNAL_SERVER_ERROR, { kind: 'error' as const, type: 'ServiceUnavailableException', status: 503 }])(
    'reports persistent $type as a retryable analyzer_unavailable',
    async (fault) => {
      fake.failNext(fault, 3);
      const err = (await analyzer()
        .analyze(pixels, ['faces'])
        .catch((e: unknown) => e)) as PixelpipeError;
      expect(err).toBeInstanceOf(PixelpipeError);
      expect(err).toMatchObject({ code: 'analyzer_unavailable', retryable: true });
      expect(fake.requests).toHaveLength(3);
    },
  );

  it.each(['InvalidImageFormatException', 'ImageTooLargeException', 'InvalidParameterException', 'AccessDeniedException'])(
    'treats %s as permanent without retrying',
    async (type) => {
      fake.failNext({ kind: 'error', type, status: 400 });
      const err = (await analyzer()
        .analyze(pixels, ['moderation'])
        .catch((e: unknown) => e)) as PixelpipeError;
      expect(err).toBeInstanceOf(PixelpipeError);
      expect(err.retryable).toBe(false);
      expect(err.message).toContain(type);
      expect(fake.requests).toHaveLength(1);
    },
  );

  it('sends even a 2×2 rung as a JPEG the service decodes', async () => {
    const tiny: AnalysisPixels = { data: new Uint8Array(12), width: 2, height: 2, channels: 3 };
    await expect(analyzer().analyze(tiny, ['faces'])).resolves.toMatchObject({ faces: [] });
    expect(fake.requests[0].image).toMatchObject({ format: 'jpeg', width: 2, height: 2 });
  });

  it('retries a malformed answer and reports it retryable when it persists', async () => {
    fake.failNext({ kind: 'malformed' }, 3);
    const err = (await analyzer()
      .analyze(pixels, ['faces'])
      .catch((e: unknown) => e)) as PixelpipeError;
    expect(err).toMatchObject({ code: 'analyzer_unavailable', retryable: true });
    expect(fake.requests).toHaveLength(3);
  });
});

describe('cancellation', () => {
  it("aborts the request when the caller's signal aborts", async () => {
    fake.failNext({ kind: 'hang' });
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('invocation ended')), 100);
    const started = Date.now();
    const err = (await analyzer()
      .analyze(pixels, ['faces'], { signal: controller.signal })
      .catch((e: unknown) => e)) as PixelpipeError;
    expect(Date.now() - started).toBeLessThan(2000);
    expect(err).toMatchObject({ retryable: true });
    await waitFor(() => fake.aborted === 1);
  });

  it('gives up at the deadline, with the held request closed', async () => {
    fake.failNext({ kind: 'hang' }, 5);
    const started = Date.now();
    const err = (await analyzer()
      .analyze(pixels, ['labels'], { deadline: Date.now() + 300 })
      .catch((e: unknown) => e)) as PixelpipeError;
    expect(Date.now() - started).toBeLessThan(2500);
    expect(err).toMatchObject({ retryable: true });
    await waitFor(() => fake.aborted >= 1);
  });
});

async function waitFor(cond: () => boolean, ms = 2000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
