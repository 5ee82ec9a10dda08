/**
 * Use-case harness for the hostile-input suite: a MemoryObjectStore, the real SharpImageProcessor,
 * processImage and then notifyCompletion on the manifest it wrote, exactly as the two functions
 * chain in the cloud. Every log line is captured as parsed JSON.
 */
import { createHash } from 'node:crypto';
import sharp, { type Metadata } from 'sharp';
import { loadConfig, type PixelpipeConfig } from '../../shared/config';
import { EVENT_TYPES, type ImageOutcomeEvent } from '../../shared/events';
import { parseOutcomeEvent } from '../support/events';
import { SharpImageProcessor } from '../../shared/image/sharp-image-processor';
import { manifestKey } from '../../shared/keys';
import { createLogger } from '../../shared/logger';
import type { Manifest } from '../../shared/manifest';
import type { ImageProcessor, ObjectInfo } from '../../shared/ports';
import { FixedClock, MemoryEventPublisher } from '../../shared/testing/fakes';
import { MemoryObjectStore } from '../../shared/testing/memory-object-store';
import { notifyCompletion, type NotifyOutcome } from '../../shared/usecases/notify-completion';
import { processImage, type ObjectEvent, type ProcessOutcome } from '../../shared/usecases/process-image';
import { testInvocation } from '../../shared/testing/invocation';

/** One real processor for the whole suite (sharp's global settings are per process anyway). */
export const processor = new SharpImageProcessor();
/** The uploader every test image belongs to. */
export const OWNER = 'mallory';
/** One parsed JSON log line. */
export type LogLine = Record<string, unknown>;

/** `nnn` → a valid image id. */
export function imageId(n: number): string {
  return `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
}

/** A fresh in-memory deployment: store, publisher, clock, captured logs and the two use cases. */
export interface Harness {
  config: PixelpipeConfig;
  store: MemoryObjectStore;
  publisher: MemoryEventPublisher;
  clock: FixedClock;
  lines: LogLine[];
  processor: ImageProcessor;
  upload(body: Buffer, opts?: { id?: string; contentType?: string; filename?: string }): Promise<ObjectInfo>;
  process(event: ObjectEvent): Promise<{ outcome: ProcessOutcome; lines: LogLine[] }>;
  notify(id: string): Promise<{ outcome: NotifyOutcome; event: ImageOutcomeEvent }>;
  /** Upload, process once, notify: the whole path a single finalize event takes. */
  run(body: Buffer, opts?: { id?: string; contentType?: string; filename?: string }): Promise<RunResult>;
}

/** What one upload → process → notify round produced. */
export interface RunResult {
  info: ObjectInfo;
  outcome: ProcessOutcome;
  manifest: Manifest;
  event: ImageOutcomeEvent;
  /** Log lines written while processing (not while notifying). */
  lines: LogLine[];
}

/** Builds a fresh pipeline; `env` overrides `PIXELPIPE_*` settings (low encoder effort keeps the suite fast). */
export function harness(env: Record<string, string> = {}, opts: { processor?: ImageProcessor } = {}): Harness {
  const config = loadConfig({ PIXELPIPE_AUTH_MODE: 'anonymous', PIXELPIPE_WEBP_EFFORT: '1', PIXELPIPE_AVIF_EFFORT: '0', ...env });
  const store = new MemoryObjectStore();
  const publisher = new MemoryEventPublisher();
  const clock = new FixedClock();
  const lines: LogLine[] = [];
  const logger = createLogger({ sink: (l) => lines.push(JSON.parse(l) as LogLine) });
  const proc = opts.processor ?? processor;
  let nextId = 1;

  const h: Harness = {
    config,
    store,
    publisher,
    clock,
    lines,
    processor: proc,
    upload: (body, o = {}) =>
      store.put(config.buckets.originals, `${config.layout.originals}${OWNER}/${o.id ?? imageId(nextId++)}`, body, {
        contentType: o.contentType ?? 'image/jpeg',
        metadata: o.filename ? { 'pixelpipe-filename': encodeURIComponent(o.filename) } : {},
      }),
    async process(event) {
      const from = lines.length;
      const outcome = await processImage({ store, processor: proc, clock, config }, testInvocation({ logger }), event);
      return { outcome, lines: lines.slice(from) };
    },
    async notify(id) {
      const outcome = await notifyCompletion({ store, publisher, config }, testInvocation({ logger }), {
        bucket: config.buckets.variants,
        key: manifestKey(config.layout, id),
      });
      if (outcome.status !== 'published') throw new Error(`nothing published: ${JSON.stringify(outcome)}`);
      return { outcome, event: parseOutcomeEvent(publisher.messages[publisher.messages.length - 1].body) };
    },
    async run(body, o = {}) {
      const info = await h.upload(body, o);
      const { outcome, lines: processLines } = await h.process({ bucket: info.bucket, key: info.key, generation: info.generation });
      if (outcome.status === 'ignored') throw new Error(`unexpectedly ignored: ${outcome.reason}`);
      const { event } = await h.notify(outcome.manifest.id);
      return { info, outcome, manifest: outcome.manifest, event, lines: processLines };
    },
  };
  return h;
}

/**
 * The contract for every refused input: a failed manifest with `code`, no variants, a
 * `pixelpipe.image.failed.v1` event carrying the same reason, and exactly one warning/error log
 * line naming the image and the reason.
 */
export function expectFailed(r: RunResult, code: string): void {
  expect(r.outcome.status).toBe('failed');
  expect(r.manifest.status).toBe('failed');
  expect(r.manifest.reason?.code).toBe(code);
  expect(r.manifest.variants).toEqual([]);
  expect(r.event.type).toBe(EVENT_TYPES.failed);
  expect(r.event.subject).toBe(r.manifest.id);
  expect(r.event.data.reason?.code).toBe(code);
  expectOneFailureLine(r.lines, r.manifest.id, code);
}

/** Exactly one WARNING/ERROR line, and it names the image and the reason. */
export function expectOneFailureLine(lines: LogLine[], id: string, code: string): void {
  const failures = lines.filter((l) => l.severity === 'WARNING' || l.severity === 'ERROR');
  expect(failures).toHaveLength(1);
  expect(failures[0]).toMatchObject({ imageId: id, reason: code });
}

/** A processed manifest and event, with every variant stored and its real dimensions matching the manifest. */
export async function expectProcessed(h: Harness, r: RunResult): Promise<Array<{ name: string; format: string; body: Buffer; meta: Metadata }>> {
  expect(r.outcome.status).toBe('processed');
  expect(r.event.type).toBe(EVENT_TYPES.processed);
  expect(r.manifest.variants.length).toBeGreaterThan(0);
  const out = [];
  for (const v of r.manifest.variants) {
    const obj = await h.store.get(h.config.buckets.variants, v.key);
    const meta = await sharp(obj.body).metadata();
    expect(meta.format === 'heif' ? 'avif' : meta.format).toBe(v.format);
    expect([meta.width, meta.pageHeight ?? meta.height]).toEqual([v.width, v.height]);
    out.push({ name: v.name, format: v.format, body: obj.body, meta });
  }
  return out;
}

/** sha256 of a buffer, hex. */
export function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Rejects when `p` takes longer than `ms`: a hang becomes a failure, not a stuck suite. */
export async function within<T>(ms: number, p: Promise<T>, what = 'operation'): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, limit]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A real processor whose header probe and pixel decode are watched, so a test can tell where a
 * refusal came from. `decode` is private to the processor: the spy reaches it through a cast.
 */
export function spiedProcessor() {
  const proc = new SharpImageProcessor();
  const probe = jest.spyOn(proc, 'probe');
  const decode = jest.spyOn(proc as unknown as { decode: (...args: unknown[]) => Promise<unknown> }, 'decode');
  return { proc, probe, decode };
}
