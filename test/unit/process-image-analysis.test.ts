import { readFileSync } from 'node:fs';
import { loadConfig, type PixelpipeConfig } from '../../shared/config';
import { TransientError } from '../../shared/errors';
import { buildCompletionEvent } from '../../shared/events';
import { SharpImageProcessor } from '../../shared/image/sharp-image-processor';
import { boxInside } from '../../shared/image/smart-crop';
import { createLogger } from '../../shared/logger';
import { parseManifest } from '../../shared/manifest';
import { FakeImageAnalyzer } from '../../shared/testing/fake-image-analyzer';
import { FixedClock } from '../../shared/testing/fakes';
import { testInvocation } from '../../shared/testing/invocation';
import { MemoryObjectStore } from '../../shared/testing/memory-object-store';
import { createAnalysisStage, type AnalysisStageOptions } from '../../shared/usecases/analyze-image';
import { processImage, type ProcessDeps } from '../../shared/usecases/process-image';
import { REFERENCE, facePhotoPath } from '../support/faces';

const processor = new SharpImageProcessor();
const GROUP = 'group-2.jpg';
const photo = readFileSync(facePhotoPath(GROUP));
const ID = '00000000-0000-4000-8000-00000000a11a';
const KEY = `originals/alice/${ID}`;
const VARIANTS = JSON.stringify([
  { name: 'square', width: 160, height: 160, fit: 'cover', position: 'faces', formats: ['jpeg'] },
  { name: 'wide', width: 160, height: 90, fit: 'cover', position: 'faces', formats: ['jpeg'] },
  { name: 'small', width: 320, formats: ['jpeg'] },
]);

/** A clock the invocation, the breaker and the retries all read, moved only by the test (and the fake's calls). */
class TestTime {
  t = 1_800_000_000_000;
  now = (): number => this.t;
}

function setup(env: Record<string, string> = {}, analyzer = new FakeImageAnalyzer(), stageOptions: AnalysisStageOptions = {}) {
  const config: PixelpipeConfig = loadConfig({
    PIXELPIPE_AUTH_MODE: 'anonymous',
    PIXELPIPE_PLACEHOLDER: 'false',
    PIXELPIPE_VARIANTS: VARIANTS,
    PIXELPIPE_ANALYZER: 'vision',
    ...env,
  });
  const store = new MemoryObjectStore();
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger({ sink: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) });
  const stage = createAnalysisStage(analyzer, config.analysis, { sleep: () => Promise.resolve(), ...stageOptions });
  const deps: ProcessDeps = { store, processor, clock: new FixedClock(), config, analysis: stage };
  const upload = (id = ID) => store.put(config.buckets.originals, `originals/alice/${id}`, photo, { contentType: 'image/jpeg' });
  /** Uploads `id` and delivers its event. */
  const run = async (id = ID, now?: () => number) => deliver(await upload(id), now);
  /** Delivers (again) the event of an upload. */
  const deliver = (info: { bucket: string; key: string; generation: string }, now?: () => number) =>
    processImage(deps, testInvocation({ logger, now }), { bucket: info.bucket, key: info.key, generation: info.generation });
  return { config, store, deps, lines, analyzer, stage, run, upload, deliver };
}

const referenceFaces = REFERENCE.faces[GROUP].map((box) => ({ box, score: 0.9 }));

describe('processImage with an analyzer', () => {
  test('analyses once on a ≤ 640 px rung and crops every faces variant around every face, recorded in the manifest', async () => {
    const analyzer = new FakeImageAnalyzer({ faces: referenceFaces, labels: [{ name: 'people', score: 0.93 }] });
    const { run, store, config } = setup({ PIXELPIPE_ANALYSES: 'faces,labels' }, analyzer);
    const out = await run();
    expect(out.status).toBe('processed');
    if (out.status !== 'processed') return;
    expect(analyzer.calls).toHaveLength(1);
    expect(Math.max(analyzer.calls[0].width, analyzer.calls[0].height)).toBeLessThanOrEqual(640);
    expect(analyzer.calls[0].analyses).toEqual(['faces', 'labels']);
    const m = parseManifest(JSON.parse((await store.get(config.buckets.variants, `manifests/${ID}.json`)).body.toString('utf8')));
    expect(m.analysis).toMatchObject({ analyzer: 'fake', labels: [{ name: 'people', score: 0.93 }] });
    expect(m.analysis?.faces).toHaveLength(referenceFaces.length);
    expect(m.analysis?.moderation).toBeUndefined();
    expect(m.analysis?.error).toBeUndefined();
    const { width: W, height: H } = m.source as { width: number; height: number };
    for (const name of ['square', 'wide']) {
      const v = m.variants.find((x) => x.name === name)!;
      expect(v.crop).toBeDefined();
      expect(v.crop!.width / v.crop!.height).toBeCloseTo(v.width / v.height, 1);
      for (const face of REFERENCE.faces[GROUP]) expect(boxInside(face, v.crop!, W, H, 2)).toBe(true);
    }
    // An uncropped variant has no crop to report.
    expect(m.variants.find((x) => x.name === 'small')!.crop).toBeUndefined();
    const { attributes } = buildCompletionEvent(m, '//test', new Date());
    expect(attributes.faces).toBe(String(referenceFaces.length));
    expect(attributes.moderation).toBeUndefined();
  });

  test('faces variants add faces to what is asked; with nothing to ask, or no analyzer, it is never called', async () => {
    const a = setup({ PIXELPIPE_ANALYSES: 'labels' });
    expect((await a.run()).status).toBe('processed');
    expect(a.analyzer.calls.map((c) => c.analyses)).toEqual([['faces', 'labels']]);

    const b = setup({ PIXELPIPE_ANALYSES: 'labels', PIXELPIPE_VARIANTS: JSON.stringify([{ name: 'small', width: 320, formats: ['jpeg'] }]) });
    expect((await b.run()).status).toBe('processed');
    expect(b.analyzer.calls.map((c) => c.analyses)).toEqual([['labels']]);

    const c = setup({ PIXELPIPE_ANALYSES: 'labels', PIXELPIPE_VARIANTS: JSON.stringify([{ name: 'small', width: 320, formats: ['jpeg'] }]) });
    c.deps.analysis = createAnalysisStage(c.analyzer, { ...c.config.analysis, analyses: [] });
    const nothing = await c.run();
    expect(c.analyzer.calls).toHaveLength(0);
    expect(nothing.status === 'processed' && nothing.manifest.analysis).toBeUndefined();

    const d = setup();
    delete d.deps.analysis;
    const none = await d.run();
    expect(d.analyzer.calls).toHaveLength(0);
    expect(none.status === 'processed' && none.manifest.analysis).toBeUndefined();
  });

  test('required=false: an analyzer outage still processes the image, with analysis.error and attention crops instead of face crops', async () => {
    const analyzer = new FakeImageAnalyzer({ faces: referenceFaces }).failAll(new TransientError('analyzer_unavailable', 'vision: 503'));
    const { run, lines } = setup({ PIXELPIPE_ANALYSES: 'faces' }, analyzer);
    const out = await run();
    expect(out.status).toBe('processed');
    if (out.status !== 'processed') return;
    expect(analyzer.calls).toHaveLength(3);
    expect(out.manifest.analysis).toMatchObject({ analyzer: 'fake', error: { code: 'analyzer_unavailable' } });
    expect(out.manifest.analysis?.faces).toBeUndefined();
    // Still cropped (sharp's attention, the documented fallback), and still recorded.
    expect(out.manifest.variants.find((v) => v.name === 'square')!.crop).toBeDefined();
    expect(lines.some((l) => l.message === 'analysis failed; processing without it')).toBe(true);
    expect(buildCompletionEvent(out.manifest, '//t', new Date()).attributes.faces).toBeUndefined();
  });

  test('required=true: a transient analyzer failure is retryable and counted by the attempt ledger; a later delivery succeeds', async () => {
    const analyzer = new FakeImageAnalyzer({ faces: referenceFaces }).failNext(new TransientError('analyzer_unavailable', 'throttled'), 3);
    const { upload, deliver, store, config } = setup({ PIXELPIPE_ANALYSES: 'faces', PIXELPIPE_ANALYSIS_REQUIRED: 'true' }, analyzer);
    const info = await upload();
    await expect(deliver(info)).rejects.toMatchObject({ code: 'analyzer_unavailable', retryable: true });
    expect(await store.head(config.buckets.variants, `manifests/${ID}.json`)).toBeNull();
    // The attempt counter (the released processing lease lies next to it).
    const attempts = (await store.list(config.buckets.variants, 'state/')).items.filter((o) => o.key.endsWith('.attempts'));
    expect(attempts).toHaveLength(1);
    const second = await deliver(info);
    expect(second.status).toBe('processed');
    if (second.status !== 'processed') return;
    expect(second.manifest.attempts).toBe(2);
    expect(second.manifest.analysis?.faces).toHaveLength(referenceFaces.length);
  });

  test('the breaker opens on an outage (later images skip the analyzer at once) and closes again once it answers', async () => {
    const time = new TestTime();
    const analyzer = new FakeImageAnalyzer({ faces: referenceFaces }).failAll(new TransientError('analyzer_unavailable', 'down'));
    const { run, stage } = setup({ PIXELPIPE_ANALYSES: 'faces' }, analyzer, { now: time.now, failureThreshold: 3, openMs: 30_000 });
    const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
    expect((await run(id(1), time.now)).status).toBe('processed');
    expect(stage.policy.breaker.state).toBe('open');
    const calls = analyzer.calls.length;
    const skipped = await run(id(2), time.now);
    expect(analyzer.calls.length).toBe(calls);
    expect(skipped.status === 'processed' && skipped.manifest.analysis?.error?.code).toBe('circuit_open');

    analyzer.recover();
    time.t += 30_000;
    expect(stage.policy.breaker.state).toBe('half-open');
    const healed = await run(id(3), time.now);
    expect(stage.policy.breaker.state).toBe('closed');
    expect(healed.status === 'processed' && healed.manifest.analysis?.faces).toHaveLength(referenceFaces.length);
  });

  test('retries stop at the budget, measured on the injected clock', async () => {
    const time = new TestTime();
    const analyzer = new FakeImageAnalyzer().failAll(new TransientError('analyzer_unavailable', 'slow and failing'));
    // Each call "takes" 500 ms: with a 1000 ms budget no third attempt can start.
    const starts: number[] = [];
    analyzer.onCall = () => {
      starts.push(time.t);
      time.t += 500;
    };
    const { run } = setup({ PIXELPIPE_ANALYSES: 'faces', PIXELPIPE_ANALYSIS_BUDGET_MS: '1000' }, analyzer, { now: time.now, attempts: 10, random: () => 0 });
    const out = await run(ID, time.now);
    expect(out.status).toBe('processed');
    expect(analyzer.calls).toHaveLength(2);
    expect(starts.map((t) => t - starts[0])).toEqual([0, 500]);
    for (const c of analyzer.calls) expect(c.options.deadline).toBe(starts[0] + 1000);
    expect(out.status === 'processed' && out.manifest.analysis).toMatchObject({ ms: 1000, error: { code: 'analyzer_unavailable' } });
  });

  test('an analyzer that never answers is abandoned when the budget is spent', async () => {
    const analyzer = new FakeImageAnalyzer().failAll('hang');
    const { run } = setup({ PIXELPIPE_ANALYSES: 'faces', PIXELPIPE_ANALYSIS_BUDGET_MS: '150' }, analyzer);
    const t0 = Date.now();
    const out = await run();
    const analysisMs = out.status === 'processed' ? out.manifest.analysis!.ms : -1;
    expect(out.status === 'processed' && out.manifest.analysis?.error?.code).toBe('analysis_timeout');
    expect(analysisMs).toBeGreaterThanOrEqual(140);
    expect(analysisMs).toBeLessThan(1000);
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  test('moderation flag: processed as usual, verdict and categories in the manifest and the event attributes', async () => {
    const analyzer = new FakeImageAnalyzer({ moderation: { verdict: 'flagged', categories: [{ name: 'violence', score: 0.91 }] } });
    const { run } = setup({ PIXELPIPE_MODERATION: 'flag' }, analyzer);
    const out = await run();
    expect(out.status).toBe('processed');
    if (out.status !== 'processed') return;
    expect(analyzer.calls[0].analyses).toEqual(['faces', 'moderation']);
    expect(out.manifest.variants.length).toBe(3);
    expect(out.manifest.analysis?.moderation).toEqual({ verdict: 'flagged', categories: [{ name: 'violence', score: 0.91 }] });
    expect(buildCompletionEvent(out.manifest, '//t', new Date()).attributes).toMatchObject({ status: 'processed', moderation: 'flagged', faces: '0' });
  });

  test('moderation block: a flagged image gets no variant, a failed content_blocked manifest and event, and its original stays', async () => {
    const analyzer = new FakeImageAnalyzer({ moderation: { verdict: 'flagged', categories: [{ name: 'explicit', score: 0.97 }] } });
    const { run, store, config } = setup({ PIXELPIPE_MODERATION: 'block' }, analyzer);
    const out = await run();
    expect(out.status).toBe('failed');
    if (out.status !== 'failed') return;
    expect(out.manifest.reason?.code).toBe('content_blocked');
    expect(out.manifest.variants).toEqual([]);
    expect(out.manifest.analysis?.moderation?.verdict).toBe('blocked');
    const written = await store.list(config.buckets.variants, 'variants/');
    expect(written.items).toEqual([]);
    expect(await store.head(config.buckets.originals, KEY)).not.toBeNull();
    const { event, attributes } = buildCompletionEvent(out.manifest, '//t', new Date());
    expect(event.type).toBe('pixelpipe.image.failed.v1');
    expect(attributes).toMatchObject({ status: 'failed', moderation: 'blocked' });
  });

  test('moderation block: a clean image is processed with verdict ok', async () => {
    const { run } = setup({ PIXELPIPE_MODERATION: 'block' }, new FakeImageAnalyzer());
    const out = await run();
    expect(out.status).toBe('processed');
    expect(out.status === 'processed' && out.manifest.analysis?.moderation?.verdict).toBe('ok');
  });

  test('moderation block with the analyzer down: retried (never published unmoderated); flag with it down: processed, verdict unavailable', async () => {
    const down = () => new FakeImageAnalyzer().failAll(new TransientError('analyzer_unavailable', 'down'));
    const blocked = setup({ PIXELPIPE_MODERATION: 'block' }, down());
    await expect(blocked.run()).rejects.toMatchObject({ retryable: true });
    expect((await blocked.store.list(blocked.config.buckets.variants, 'variants/')).items).toEqual([]);

    const flagged = setup({ PIXELPIPE_MODERATION: 'flag' }, down());
    const out = await flagged.run();
    expect(out.status).toBe('processed');
    if (out.status !== 'processed') return;
    expect(out.manifest.analysis?.moderation?.verdict).toBe('unavailable');
    expect(buildCompletionEvent(out.manifest, '//t', new Date()).attributes.moderation).toBe('unavailable');
  });
});
