/**
 * The measuring side of the benchmark. Each task runs in a fresh child process, started by the parent
 * under `taskset` with the thread-pool size it simulates, so CPU pinning, peak RSS and libuv settings
 * belong to that measurement alone. The result is one JSON line on stdout.
 */
import { performance as perfHooks, type EventLoopUtilization } from 'node:perf_hooks';
import { readFileSync } from 'node:fs';
import type { ImageProbe } from '../../shared/ports';
import { ImageRejectedError } from '../../shared/errors';
import {
  benchSetup,
  bytesByFormat,
  firebaseAccepts,
  lowerBoundOutputs,
  pixelpipeOutputs,
  planLowerBound,
  runFirebaseBaseline,
  runLowerBound,
  runPixelpipe,
  type BenchSetup,
  type OutputInfo,
} from './pipelines';
import { cpuTicks, TICKS_PER_SECOND } from './child';
import { scoreOutputs } from './quality';
import { analysisCost, type AnalysisCostResult, type AnalysisTask } from './analysis';
import { profilesCost, type ProfilesResult, type ProfilesTask } from './profiles';
import { round, summarize, timed, type Summary, type Timing } from './stats';

/** The pipelines a `compare` task can interleave. */
export type Method = 'pixelpipe' | 'baseline' | 'lowerBound';

/** What the parent asks a child to measure. */
export type WorkerTask =
  | AnalysisTask
  | ProfilesTask
  | {
      kind: 'compare';
      file: string;
      iterations: number;
      warmup: number;
      methods: Method[];
      /** Extra PIXELPIPE_* variables (knob experiments). */
      env?: Record<string, string>;
      /** Score pixelpipe's outputs by SSIM against lossless references. */
      quality?: boolean;
      concurrency?: number;
      /** The CPUs the child is pinned to (see `othersCores`). */
      cpus?: string;
    }
  | {
      /** pixelpipe under several configurations, interleaved round by round (knob experiments). */
      kind: 'variants';
      file: string;
      iterations: number;
      warmup: number;
      variants: Array<{ label: string; env: Record<string, string> }>;
      quality?: boolean;
    }
  | { kind: 'rss'; file: string; method: 'pixelpipe' | 'baseline'; repeat: number; env?: Record<string, string> }
  | {
      kind: 'throughput';
      files: string[];
      inflight: number;
      renders: number;
      env?: Record<string, string>;
      concurrency?: number;
      /** The CPUs the child is pinned to, to tell how much of them other processes took meanwhile. */
      cpus?: string;
    };

/** Per-method timings of a `compare` task. */
export interface MethodResult {
  wall: Summary;
  cpu: Summary;
  bytes: Record<string, number>;
  outputs: Array<{ variant: string; format: string; width: number; height: number; bytes: number }>;
}

/** Interleaved timings of the pipelines on one image. */
export interface CompareResult {
  kind: 'compare';
  probe: Pick<ImageProbe, 'format' | 'width' | 'height' | 'orientation' | 'hasAlpha'>;
  methods: Partial<Record<Method, MethodResult>>;
  /** Methods that could not run on this input, with the reason. */
  skipped: Partial<Record<Method, string>>;
  /** Medians of pixelpipe's own metrics and of the lower bound's parts. */
  breakdown: {
    pixelpipeDecodeMs?: number;
    lowerBoundDecode?: { wallMs: number; cpuMs: number };
    lowerBoundEncodes?: Record<string, { wallMs: number; cpuMs: number }>;
    baselinePasses?: { decodes: number; encodes: number };
  };
  quality?: Array<{ variant: string; format: string; bytes: number; ssim: number }>;
  maxRssBytes: number;
  /** Cores' worth of time other processes ran on the same CPUs during the measured rounds. */
  othersCores?: number;
  /**
   * Medians of per-round ratios: each round runs the methods back to back, so a ratio within a round
   * cancels slow drift (CPU frequency, neighbours) that a ratio of overall medians would not.
   */
  paired: {
    speedupCpu?: number;
    speedupWall?: number;
    overBoundCpu?: number;
    overBoundWall?: number;
    /**
     * The middle half (25th–75th percentile) of the per-round CPU-time ratios. On a shared VM single
     * renders vary by ±15 %, so a median a few percent from a limit is within the noise; this says how far.
     */
    speedupCpuSpread?: [number, number];
    overBoundCpuSpread?: [number, number];
  };
  /**
   * pixelpipe's very first render in this process (libvips and the JIT still cold), kept apart from the
   * medians: a function instance pays it once, on its first image.
   */
  firstRender?: Timing;
}

/** Peak memory of one pipeline on one image, in a process that ran nothing else. */
export interface RssResult {
  kind: 'rss';
  /** RSS once modules are loaded, before any image work. */
  idleRssBytes: number;
  maxRssBytes: number;
  /** Wall time of each repeat. */
  ms: number[];
  /** `ok`, or how the render was refused. */
  outcome: string;
}

/** Renders completed per second with several in flight. */
export interface ThroughputResult {
  kind: 'throughput';
  renders: number;
  wallMs: number;
  cpuMs: number;
  imagesPerSecond: number;
  /** CPU time / wall time: how many cores were actually kept busy. */
  coresBusy: number;
  /** Cores' worth of time that other processes ran on the same CPUs meanwhile (from /proc/stat). */
  othersCores?: number;
  /** Event-loop utilization of the main thread: near 1, JavaScript (or GC) holds back the encoders. */
  mainThreadBusy?: number;
  maxRssBytes: number;
}

/** pixelpipe under several configurations, timed in the same process. */
export interface VariantsResult {
  kind: 'variants';
  variants: Array<{ label: string; wall: Summary; cpu: Summary; bytes: Record<string, number>; webpSsim?: number }>;
}

/** What a child prints, by task kind. */
export type WorkerResult = CompareResult | VariantsResult | RssResult | ThroughputResult | AnalysisCostResult | ProfilesResult;

/**
 * This process's peak RSS. VmHWM belongs to the address space exec() created, whereas getrusage's
 * maxrss survives exec and would report the (possibly larger) parent that forked us.
 */
function peakRssBytes(): number {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // Not Linux: fall back to getrusage.
  }
  return process.resourceUsage().maxRSS * 1024;
}

const gc: () => void = (globalThis as { gc?: () => void }).gc ?? (() => {});

function strip(outputs: OutputInfo[]): MethodResult['outputs'] {
  return outputs.map(({ variant, format, width, height, bytes }) => ({ variant, format, width, height, bytes }));
}

async function compare(task: Extract<WorkerTask, { kind: 'compare' }>): Promise<CompareResult> {
  const input = readFileSync(task.file);
  const setup = benchSetup(task.env, { concurrency: task.concurrency });
  const probe = await setup.processor.probe(input, setup.config.limits);
  const skipped: CompareResult['skipped'] = {};
  const methods = task.methods;
  if (methods.includes('baseline') && !(await firebaseAccepts(input))) skipped.baseline = 'the extension does not accept this input type';
  const active = methods.filter((m) => !skipped[m]);
  const plan = active.includes('lowerBound') ? await planLowerBound(setup, input) : undefined;

  const samples: Record<Method, Timing[]> = { pixelpipe: [], baseline: [], lowerBound: [] };
  const lastOutputs: Partial<Record<Method, OutputInfo[]>> = {};
  const ppDecode: number[] = [];
  const lbDecode: Timing[] = [];
  const lbEncodes: Record<string, Timing[]> = {};
  let passes: CompareResult['breakdown']['baselinePasses'];

  let firstRender: Timing | undefined;
  const runOnce = async (m: Method, record: boolean): Promise<void> => {
    gc();
    if (m === 'pixelpipe') {
      const t = await timed(() => runPixelpipe(setup, input));
      firstRender ??= { wallMs: round(t.wallMs), cpuMs: round(t.cpuMs) };
      if (!record) return;
      samples.pixelpipe.push(t);
      ppDecode.push(t.value.metrics.decodeMs);
      lastOutputs.pixelpipe = pixelpipeOutputs(t.value);
    } else if (m === 'baseline') {
      const t = await timed(() => runFirebaseBaseline(input, setup.config.variants));
      if (!record) return;
      samples.baseline.push(t);
      lastOutputs.baseline = t.value.outputs;
      passes = { decodes: t.value.decodes, encodes: t.value.encodes };
    } else {
      const t = await runLowerBound(plan!);
      if (!record) return;
      samples.lowerBound.push(t.total);
      lbDecode.push(t.decode);
      for (const [k, v] of Object.entries(t.encodes)) (lbEncodes[k] ??= []).push(v);
    }
  };

  for (let i = 0; i < task.warmup; i++) for (const m of active) await runOnce(m, false);
  const before = task.cpus ? cpuTicks(task.cpus) : null;
  const measured = await timed(async () => {
    for (let i = 0; i < task.iterations; i++) {
      // Rotate the order each round so no method always runs right after another's garbage.
      for (let k = 0; k < active.length; k++) await runOnce(active[(i + k) % active.length], true);
    }
  });
  const after = task.cpus ? cpuTicks(task.cpus) : null;
  if (plan) lastOutputs.lowerBound = await lowerBoundOutputs(plan);

  const results: CompareResult['methods'] = {};
  for (const m of active) {
    const outs = lastOutputs[m] ?? [];
    results[m] = {
      wall: roundSummary(summarize(samples[m].map((t) => t.wallMs))),
      cpu: roundSummary(summarize(samples[m].map((t) => t.cpuMs))),
      bytes: bytesByFormat(outs),
      outputs: strip(outs),
    };
  }
  const med = (ts: Timing[]) => ({ wallMs: round(summarize(ts.map((t) => t.wallMs)).median), cpuMs: round(summarize(ts.map((t) => t.cpuMs)).median) });
  const quality =
    task.quality && lastOutputs.pixelpipe
      ? (await scoreOutputs(input, probe, setup.config.variants, lastOutputs.pixelpipe)).map((s) => ({
          variant: s.variant,
          format: s.format,
          bytes: s.bytes,
          ssim: round(s.ssim, 4),
        }))
      : undefined;
  const speedupCpu = pairedRatios(samples.baseline, samples.pixelpipe, 'cpuMs');
  const overBoundCpu = pairedRatios(samples.pixelpipe, samples.lowerBound, 'cpuMs');
  return {
    kind: 'compare',
    probe: { format: probe.format, width: probe.width, height: probe.height, orientation: probe.orientation, hasAlpha: probe.hasAlpha },
    methods: results,
    skipped,
    breakdown: {
      pixelpipeDecodeMs: ppDecode.length ? round(summarize(ppDecode).median) : undefined,
      lowerBoundDecode: lbDecode.length ? med(lbDecode) : undefined,
      lowerBoundEncodes: Object.keys(lbEncodes).length ? Object.fromEntries(Object.entries(lbEncodes).map(([k, v]) => [k, med(v)])) : undefined,
      baselinePasses: passes,
    },
    quality,
    maxRssBytes: peakRssBytes(),
    othersCores: othersCores(before, after, measured),
    firstRender,
    paired: {
      speedupCpu: speedupCpu?.median,
      speedupWall: pairedRatios(samples.baseline, samples.pixelpipe, 'wallMs')?.median,
      overBoundCpu: overBoundCpu?.median,
      overBoundWall: pairedRatios(samples.pixelpipe, samples.lowerBound, 'wallMs')?.median,
      speedupCpuSpread: speedupCpu && [speedupCpu.p25, speedupCpu.p75],
      overBoundCpuSpread: overBoundCpu && [overBoundCpu.p25, overBoundCpu.p75],
    },
  };
}

/** Median and quartiles over rounds of a[i] ÷ b[i], to 3 decimals (undefined unless both ran every round). */
function pairedRatios(a: Timing[], b: Timing[], key: keyof Timing): { median: number; p25: number; p75: number } | undefined {
  if (!a.length || a.length !== b.length) return undefined;
  const s = summarize(a.map((t, i) => t[key] / b[i][key]));
  return { median: round(s.median, 3), p25: round(s.p25, 3), p75: round(s.p75, 3) };
}

/** Busy time on our CPUs that was not ours, in cores (0.5 = half a core taken by other processes). */
function othersCores(before: ReturnType<typeof cpuTicks>, after: ReturnType<typeof cpuTicks>, t: Timing): number | undefined {
  if (!before || !after) return undefined;
  return round(Math.max(0, ((after.busy - before.busy) / TICKS_PER_SECOND - t.cpuMs / 1000) / (t.wallMs / 1000)), 2);
}

async function variants(task: Extract<WorkerTask, { kind: 'variants' }>): Promise<VariantsResult> {
  const input = readFileSync(task.file);
  const setups = task.variants.map((v) => benchSetup(v.env));
  const samples: Timing[][] = setups.map(() => []);
  const last: OutputInfo[][] = setups.map(() => []);
  for (let i = 0; i < task.warmup + task.iterations; i++) {
    for (let k = 0; k < setups.length; k++) {
      const j = (i + k) % setups.length;
      gc();
      const t = await timed(() => runPixelpipe(setups[j], input));
      if (i < task.warmup) continue;
      samples[j].push(t);
      last[j] = pixelpipeOutputs(t.value);
    }
  }
  const out: VariantsResult['variants'] = [];
  for (let j = 0; j < setups.length; j++) {
    let webpSsim: number | undefined;
    if (task.quality) {
      const probe = await setups[j].processor.probe(input, setups[j].config.limits);
      const scores = (await scoreOutputs(input, probe, setups[j].config.variants, last[j])).filter((q) => q.format === 'webp');
      webpSsim = scores.length ? round(scores.reduce((a, q) => a + q.ssim, 0) / scores.length, 4) : undefined;
    }
    out.push({
      label: task.variants[j].label,
      wall: roundSummary(summarize(samples[j].map((t) => t.wallMs))),
      cpu: roundSummary(summarize(samples[j].map((t) => t.cpuMs))),
      bytes: bytesByFormat(last[j]),
      webpSsim,
    });
  }
  return { kind: 'variants', variants: out };
}

async function rss(task: Extract<WorkerTask, { kind: 'rss' }>): Promise<RssResult> {
  const setup = benchSetup(task.env);
  const idleRssBytes = process.memoryUsage().rss;
  const input = readFileSync(task.file);
  const ms: number[] = [];
  let outcome = 'ok';
  for (let i = 0; i < task.repeat; i++) {
    const t0 = performance.now();
    try {
      if (task.method === 'pixelpipe') await runPixelpipe(setup, input);
      else await runFirebaseBaseline(input, setup.config.variants);
    } catch (err) {
      outcome = err instanceof ImageRejectedError ? `refused: ${err.code}` : `error: ${(err as Error).message}`;
    }
    ms.push(round(performance.now() - t0));
  }
  return { kind: 'rss', idleRssBytes, maxRssBytes: peakRssBytes(), ms, outcome };
}

/**
 * Sustained throughput: `inflight` lanes render continuously, and the clock runs only while every lane
 * is busy — from the `inflight`-th completion (start-up wave over) to `renders` completions later, with
 * work still queued behind it. A finite batch would otherwise end with one long encode on one core
 * while the other idles, a drain a function under steady load never sees, and which only the 2-vCPU
 * run pays.
 */
async function throughput(task: Extract<WorkerTask, { kind: 'throughput' }>): Promise<ThroughputResult> {
  const setup: BenchSetup = benchSetup(task.env, { concurrency: task.concurrency });
  const inputs = task.files.map((f) => readFileSync(f));
  for (const input of inputs) await runPixelpipe(setup, input);
  gc();
  const total = task.renders + 2 * task.inflight;
  const windowStart = task.inflight;
  const windowEnd = task.inflight + task.renders;
  let started = 0;
  let done = 0;
  let mark: { wall: number; cpu: NodeJS.CpuUsage; ticks: ReturnType<typeof cpuTicks>; elu: EventLoopUtilization } | undefined;
  let result: { wallMs: number; cpuMs: number; ticks: ReturnType<typeof cpuTicks>; mainThreadBusy: number } | undefined;
  const snapshot = () => ({
    wall: performance.now(),
    cpu: process.cpuUsage(),
    ticks: task.cpus ? cpuTicks(task.cpus) : null,
    elu: perfHooks.eventLoopUtilization(),
  });
  const lane = async (): Promise<void> => {
    while (started < total) {
      const input = inputs[started++ % inputs.length];
      await runPixelpipe(setup, input);
      done++;
      if (done === windowStart) mark = snapshot();
      if (done === windowEnd && mark) {
        const end = snapshot();
        const c = process.cpuUsage(mark.cpu);
        result = {
          wallMs: end.wall - mark.wall,
          cpuMs: (c.user + c.system) / 1000,
          ticks: end.ticks,
          mainThreadBusy: perfHooks.eventLoopUtilization(end.elu, mark.elu).utilization,
        };
      }
    }
  };
  await Promise.all(Array.from({ length: task.inflight }, lane));
  if (!mark || !result) throw new Error('throughput window never closed');
  const t: Timing = { wallMs: result.wallMs, cpuMs: result.cpuMs };
  return {
    othersCores: othersCores(mark.ticks, result.ticks, t),
    kind: 'throughput',
    renders: task.renders,
    wallMs: round(t.wallMs),
    cpuMs: round(t.cpuMs),
    imagesPerSecond: round((task.renders * 1000) / t.wallMs, 2),
    coresBusy: round(t.cpuMs / t.wallMs, 2),
    mainThreadBusy: round(result.mainThreadBusy, 2),
    maxRssBytes: peakRssBytes(),
  };
}

function roundSummary(s: Summary): Summary {
  return { n: s.n, median: round(s.median), min: round(s.min), max: round(s.max), p25: round(s.p25), p75: round(s.p75) };
}

/** Runs one task and returns its result (the child prints it as JSON). */
export async function runTask(task: WorkerTask): Promise<WorkerResult> {
  switch (task.kind) {
    case 'compare':
      return compare(task);
    case 'variants':
      return variants(task);
    case 'rss':
      return rss(task);
    case 'throughput':
      return throughput(task);
    case 'analysis':
      return analysisCost(task);
    case 'profiles':
      return profilesCost(task);
  }
}
