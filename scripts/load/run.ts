/**
 * The load run: starts the local dev stack in this process (`startDevStack` from functions/local:
 * s3rver + the production AWS handlers + an event channel + the dev server, all on 127.0.0.1 and free
 * ports), follows its event stream, and pushes uploads through the same path a browser takes:
 *
 *   POST /api/uploads (upload handler) → presigned POST to s3rver → S3 notification → process
 *   handler (sharp) → manifest → notify handler → event channel → SSE `completion` event
 *
 * and checks that every upload ends in exactly one completion event. Processing runs in this
 * process, so the RSS measured here is the processing process's (plus s3rver and the client: an
 * upper bound for the process function alone).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadDevOptions } from '../../functions/local/dev-options';
import type { DevStack } from '../../functions/local/dev-stack';
import { quietAwsSdkNodeVersionNotice } from '../../functions/local/sdk-notices';
import { freePort } from '../../functions/local/ports';
import { makeImages } from './images';
import { openSse, type SseStream } from './sse';

/** What to run. */
export interface LoadOptions {
  root: string;
  uploads: number;
  /** Uploads in flight at once (clients). */
  concurrency: number;
  /** Images the stack processes at once (its async invoker's concurrency, like reserved Lambda concurrency). */
  processConcurrency: number;
  events: 'embedded' | 'pubsub' | 'auto';
  /** The whole run, start-up and shutdown included, must end within this. */
  timeoutMs: number;
  /** Peak RSS the processing process may reach. */
  rssLimitMb: number;
  width: number;
  height: number;
  /** Progress lines (stderr in the CLI). */
  progress?: (line: string) => void;
}

/** The figures and verdict of one run. */
export interface LoadReport {
  ok: boolean;
  failures: string[];
  options: Omit<LoadOptions, 'root' | 'progress'>;
  harness: string;
  eventChannel: string;
  images: { distinct: number; minBytes: number; maxBytes: number; meanBytes: number };
  uploads: { requested: number; signed: number; stored: number; failed: number };
  events: { received: number; unique: number; duplicatesDropped: number; processed: number; failed: number; lost: number; multiple: number };
  /** From the first upload request to the last completion event. */
  durationMs: number;
  throughputPerSecond: number;
  /** Upload request start → completion event received, per image. */
  latencyMs: { min: number; p50: number; p95: number; max: number; mean: number };
  /** Processing time per image from the manifests (read, render, writes): latency minus queueing and delivery. */
  processingMs: { p50: number; p95: number; max: number };
  rss: { baselineMb: number; peakSampledMb: number; maxRssMb: number; limitMb: number; measured: string };
  logs: { warnings: number; errors: number; firstErrors: string[] };
  startupMs: number;
}

interface Tracked {
  index: number;
  id?: string;
  startedAt: number;
  signed: boolean;
  stored: boolean;
  error?: string;
  firstEventAt?: number;
  eventIds: Set<string>;
  deliveries: number;
  status?: string;
  variants?: number;
  /** The manifest's `durationMs`: processing alone, without queueing. */
  processingMs?: number;
}

/** Runs the load; never throws for a failed check (see `ok` and `failures`), only for a broken setup. */
export async function runLoad(options: LoadOptions): Promise<LoadReport> {
  const say = options.progress ?? (() => undefined);
  const deadline = Date.now() + options.timeoutMs;
  const failures: string[] = [];
  const logs = { warnings: 0, errors: 0, firstErrors: [] as string[] };

  const pool = await makeImages(options.root, Math.min(options.uploads, 48), { width: options.width, height: options.height });
  const sizes = pool.map((p) => p.body.length);
  say(`generated ${pool.length} distinct JPEGs (${options.width}×${options.height} and portrait), ${Math.min(...sizes)}–${Math.max(...sizes)} bytes`);

  const dataDir = await mkdtemp(join(tmpdir(), 'pixelpipe-load-'));
  const env: Record<string, string | undefined> = {
    ...process.env,
    PIXELPIPE_DEV_PORT: '0',
    PIXELPIPE_DEV_S3_PORT: '0',
    PIXELPIPE_DEV_EVENTS: options.events,
    PIXELPIPE_DEV_DATA: dataDir,
    PIXELPIPE_DEV_CONCURRENCY: String(options.processConcurrency),
    PIXELPIPE_DEV_LOG: 'json',
    PIXELPIPE_LOG_LEVEL: process.env.PIXELPIPE_LOG_LEVEL ?? 'warn',
  };
  if (options.events === 'pubsub' && !env.PUBSUB_EMULATOR_HOST) env.PIXELPIPE_DEV_PUBSUB_PORT = String(await freePort());
  const devOptions = loadDevOptions(env, { root: options.root, webDir: join(options.root, 'web') });

  quietAwsSdkNodeVersionNotice();
  const { startDevStack } = await import('../../functions/local/dev-stack');
  const t0 = performance.now();
  let stack: DevStack | undefined;
  let sse: SseStream | undefined;
  const tracked: Tracked[] = [];
  const byId = new Map<string, Tracked>();
  let received = 0;
  let firstStart = Infinity;
  let lastEvent = 0;
  let peakRss = 0;
  let sampler: NodeJS.Timeout | undefined;
  let baseline = 0;
  let startupMs = 0;
  let eventChannel = '';

  try {
    stack = await startDevStack(devOptions, {
      sink: (line) => {
        let entry: { level?: string; message?: string };
        try {
          entry = JSON.parse(line) as typeof entry;
        } catch {
          return;
        }
        if (entry.level === 'warn' && !/AUTH DISABLED/.test(entry.message ?? '')) logs.warnings++;
        if (entry.level === 'error') {
          logs.errors++;
          if (logs.firstErrors.length < 5) logs.firstErrors.push(line.slice(0, 500));
        }
      },
      childEnv: process.env,
    });
    startupMs = performance.now() - t0;
    eventChannel = stack.events.description;
    const expectedVariants = stack.config.variants.reduce((n, v) => n + v.formats.length, 0);
    say(`dev stack up in ${Math.round(startupMs)} ms: ${stack.urls.uploads}, storage ${stack.urls.storage}, events: ${eventChannel}`);

    sse = await openSse(stack.urls.events, (e) => {
      if (e.event !== 'completion') return;
      received++;
      let ce: { id: string; subject: string; data: { status: string; variants: unknown[]; durationMs?: number } };
      try {
        ce = JSON.parse(e.data) as typeof ce;
      } catch {
        failures.push(`an SSE completion event is not JSON: ${e.data.slice(0, 100)}`);
        return;
      }
      const t = byId.get(ce.subject);
      if (!t) return; // not one of ours (an image left in the data directory by nobody: it is fresh)
      t.deliveries++;
      t.eventIds.add(ce.id);
      if (t.firstEventAt === undefined) {
        t.firstEventAt = e.receivedAt;
        t.status = ce.data.status;
        t.variants = ce.data.variants.length;
        t.processingMs = ce.data.durationMs;
        lastEvent = Math.max(lastEvent, e.receivedAt);
        const done = tracked.filter((x) => x.firstEventAt !== undefined).length;
        if (done % Math.max(1, Math.floor(options.uploads / 10)) === 0) say(`${done}/${options.uploads} completion events`);
      }
    });

    baseline = process.memoryUsage().rss;
    peakRss = baseline;
    sampler = setInterval(() => {
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
    }, 25);

    const uploadsUrl = stack.urls.uploads;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < options.uploads && Date.now() < deadline) {
        const index = next++;
        const image = pool[index % pool.length];
        const t: Tracked = { index, startedAt: performance.now(), signed: false, stored: false, eventIds: new Set(), deliveries: 0 };
        tracked.push(t);
        firstStart = Math.min(firstStart, t.startedAt);
        try {
          const res = await fetch(uploadsUrl, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ contentType: 'image/jpeg', size: image.body.length, filename: `load-${index}.jpg` }),
            signal: AbortSignal.timeout(30_000),
          });
          const body = (await res.json()) as { id?: string; upload?: { method: string; url: string; fields?: Record<string, string> } };
          if (res.status !== 201 || !body.id || body.upload?.method !== 'POST' || !body.upload.fields) throw new Error(`upload API answered ${res.status}`);
          t.id = body.id;
          t.signed = true;
          byId.set(body.id, t);
          const form = new FormData();
          for (const [k, v] of Object.entries(body.upload.fields)) form.append(k, v);
          form.append('file', new Blob([new Uint8Array(image.body)], { type: 'image/jpeg' }), `load-${index}.jpg`);
          const stored = await fetch(body.upload.url, { method: 'POST', body: form, signal: AbortSignal.timeout(30_000) });
          await stored.arrayBuffer();
          if (stored.status !== 204 && stored.status !== 200 && stored.status !== 201) throw new Error(`storage answered ${stored.status}`);
          t.stored = true;
        } catch (err) {
          t.error = err instanceof Error ? err.message : String(err);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(options.concurrency, options.uploads) }, worker));
    say(`${tracked.filter((t) => t.stored).length}/${options.uploads} uploads stored; waiting for completion events`);

    // Every stored upload must produce its event before the deadline (keep a little for shutdown).
    const waitUntil = deadline - 5000;
    while (Date.now() < waitUntil && tracked.some((t) => t.stored && t.firstEventAt === undefined)) await sleep(50);
    // A duplicate would arrive shortly after the original: give it the chance.
    await sleep(Math.max(0, Math.min(1000, waitUntil - Date.now())));

    if (tracked.length < options.uploads) failures.push(`only ${tracked.length} of ${options.uploads} uploads started before the deadline`);
    const notSigned = tracked.filter((t) => !t.signed);
    const notStored = tracked.filter((t) => t.signed && !t.stored);
    if (notSigned.length) failures.push(`${notSigned.length} upload request(s) failed, e.g. ${notSigned[0].error}`);
    if (notStored.length) failures.push(`${notStored.length} storage POST(s) failed, e.g. ${notStored[0].error}`);
    const lost = tracked.filter((t) => t.stored && t.firstEventAt === undefined);
    const multiple = tracked.filter((t) => t.eventIds.size > 1);
    const notProcessed = tracked.filter((t) => t.status !== undefined && t.status !== 'processed');
    const incomplete = tracked.filter((t) => t.variants !== undefined && t.variants !== expectedVariants);
    if (lost.length)
      failures.push(
        `${lost.length} upload(s) never got a completion event: ${lost
          .slice(0, 5)
          .map((t) => t.id)
          .join(', ')}`,
      );
    if (multiple.length) failures.push(`${multiple.length} upload(s) got more than one distinct completion event id`);
    if (notProcessed.length) failures.push(`${notProcessed.length} upload(s) ended ${notProcessed[0].status}, not processed`);
    if (incomplete.length) failures.push(`${incomplete.length} manifest(s) with ${incomplete[0].variants} variants instead of ${expectedVariants}`);
    if (logs.errors) failures.push(`${logs.errors} error line(s) from the functions, first: ${logs.firstErrors[0]}`);
  } finally {
    if (sampler) clearInterval(sampler);
    sse?.close();
    await stack?.close();
    await rm(dataDir, { recursive: true, force: true });
  }

  const done = tracked.filter((t) => t.firstEventAt !== undefined);
  const latencies = done.map((t) => t.firstEventAt! - t.startedAt).sort((a, b) => a - b);
  const durationMs = done.length ? lastEvent - firstStart : 0;
  const mb = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;
  const maxRss = process.resourceUsage().maxRSS * 1024;
  const peak = Math.max(peakRss, maxRss);
  if (mb(peak) > options.rssLimitMb) failures.push(`peak RSS ${mb(peak)} MB is over the ${options.rssLimitMb} MB limit`);

  return {
    ok: failures.length === 0,
    failures,
    options: {
      uploads: options.uploads,
      concurrency: options.concurrency,
      processConcurrency: options.processConcurrency,
      events: options.events,
      timeoutMs: options.timeoutMs,
      rssLimitMb: options.rssLimitMb,
      width: options.width,
      height: options.height,
    },
    harness: 'functions/local startDevStack (s3rver + production AWS handlers + dev server), in this process',
    eventChannel,
    images: {
      distinct: pool.length,
      minBytes: Math.min(...sizes),
      maxBytes: Math.max(...sizes),
      meanBytes: Math.round(sizes.reduce((a, b) => a + b, 0) / sizes.length),
    },
    uploads: {
      requested: options.uploads,
      signed: tracked.filter((t) => t.signed).length,
      stored: tracked.filter((t) => t.stored).length,
      failed: tracked.filter((t) => t.error !== undefined).length,
    },
    events: {
      received,
      unique: done.reduce((n, t) => n + t.eventIds.size, 0),
      duplicatesDropped: done.reduce((n, t) => n + t.deliveries - t.eventIds.size, 0),
      processed: done.filter((t) => t.status === 'processed').length,
      failed: done.filter((t) => t.status === 'failed').length,
      lost: tracked.filter((t) => t.stored && t.firstEventAt === undefined).length,
      multiple: tracked.filter((t) => t.eventIds.size > 1).length,
    },
    durationMs: Math.round(durationMs),
    throughputPerSecond: durationMs > 0 ? Math.round((done.length / (durationMs / 1000)) * 100) / 100 : 0,
    latencyMs: {
      min: Math.round(latencies[0] ?? 0),
      p50: Math.round(percentile(latencies, 0.5)),
      p95: Math.round(percentile(latencies, 0.95)),
      max: Math.round(latencies.at(-1) ?? 0),
      mean: Math.round(latencies.reduce((a, b) => a + b, 0) / (latencies.length || 1)),
    },
    processingMs: (() => {
      const p = done.map((t) => t.processingMs ?? 0).sort((a, b) => a - b);
      return { p50: Math.round(percentile(p, 0.5)), p95: Math.round(percentile(p, 0.95)), max: Math.round(p.at(-1) ?? 0) };
    })(),
    rss: {
      baselineMb: mb(baseline),
      peakSampledMb: mb(peakRss),
      maxRssMb: mb(maxRss),
      limitMb: options.rssLimitMb,
      measured: 'this process (processing is in-process: includes s3rver, the dev server and the load client)',
    },
    logs,
    startupMs: Math.round(startupMs),
  };
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil(q * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
