/**
 * The benchmark's report: the JSON document (`--json`), the Markdown tables printed for the README,
 * the target checks, and the comparison of two runs (`--compare`).
 */
import { renderAnalysis, type AnalysisReport } from './analysis';
import { renderProfiles, type ProfilesReport } from './profiles';
import type { BundleResult } from './coldstart';
import { COLD_START_TARGET_MS } from './coldstart';
import type { Instance } from './child';
import { hostileTargets, type HostileRow } from './hostile';
import type { AutoQualityRow, QualityRow } from './quality';
import { round } from './stats';
import type { CompareResult, RssResult, ThroughputResult } from './worker';

/** Everything measured for one input image. */
export interface ImageReport {
  id: string;
  label: string;
  bytes: number;
  compare?: CompareResult;
  rss?: { pixelpipe?: RssResult; baseline?: RssResult };
  error?: string;
}

/** Images per second on 1 and 2 vCPUs, and the machine's own two-core ceiling. */
export interface ThroughputReport {
  image: string;
  inflight: number;
  renders: number;
  oneVcpu: ThroughputResult[];
  twoVcpu: ThroughputResult[];
  /** Two independent 1-vCPU processes at once, one per core: what this machine's two cores can do. */
  pairs: ThroughputResult[][];
  /** Two processes with half the lanes each, both free to run on either core (not in --quick; absent in older reports). */
  unpinnedPairs?: ThroughputResult[][];
  /** Median over rounds of a pair's images/s (summed) ÷ that round's 1-vCPU run: the machine's own 2-core scaling (not in --quick). */
  pairRatio?: number;
  /** The same for {@link unpinnedPairs}. */
  unpinnedPairRatio?: number;
  /** Median over rounds of (2-vCPU images/s ÷ the same round's 1-vCPU images/s). */
  ratio: number;
  /** Best run on 2 vCPUs ÷ best on 1 vCPU: the least disturbed by other processes. */
  bestRatio: number;
  /** The paired ratio over the rounds where other processes took < 0.1 core in both runs (undefined: none). */
  quietRatio?: number;
  quietRounds: number;
}

/** One measured setting of a tuning knob. */
export interface KnobRow {
  knob: string;
  value: string;
  /** What was measured, e.g. "12 MP render, 1 vCPU". */
  scenario: string;
  wallMs?: number;
  cpuMs?: number;
  imagesPerSecond?: number;
  peakRssMB?: number;
  webpBytes?: number;
  jpegBytes?: number;
  webpSsim?: number;
  /** Cores' worth of time other processes took on the same CPUs meanwhile. */
  othersCores?: number;
}

/** One image's `quality: "auto"` measurement. */
export interface AutoQualityReport {
  image: string;
  target: string;
  rows: AutoQualityRow[];
  /** Median CPU ms of a render of the default config, fixed quality and all-auto (1 vCPU, interleaved). */
  fixedCpuMs?: number;
  autoCpuMs?: number;
}

/** Sums over several images' auto-quality rows. */
export function autoTotals(reports: AutoQualityReport[]): { fixedBytes: number; autoBytes: number; fixedSsim: number; autoSsim: number; outputs: number } {
  const rows = reports.flatMap((r) => r.rows);
  const sum = (f: (r: AutoQualityRow) => number) => rows.reduce((n, r) => n + f(r), 0);
  return {
    fixedBytes: sum((r) => r.fixedBytes),
    autoBytes: sum((r) => r.autoBytes),
    fixedSsim: rows.length ? sum((r) => r.fixedSsim) / rows.length : Number.NaN,
    autoSsim: rows.length ? sum((r) => r.autoSsim) / rows.length : Number.NaN,
    outputs: rows.length,
  };
}

/** One target of the performance issue, with what this run measured. */
export interface TargetCheck {
  target: string;
  limit: string;
  measured: string;
  /** null: not measured in this run. */
  pass: boolean | null;
}

/** The whole run, as written by `--json` and read by `--compare` and `--render`. */
export interface BenchReport {
  version: 1;
  date: string;
  command: string;
  quick: boolean;
  machine: { cpus: number; model: string; node: string; sharp: string; libvips: string; loadavg: number[]; taskset: boolean; memoryMB: number };
  settings: { iterations: number; warmup: number; oneVcpu: Instance; twoVcpu: Instance; coldRuns: number };
  images: ImageReport[];
  huge?: { image: string; width: number; height: number; bytes: number; refused?: RssResult; processed?: RssResult; processedLimit: number };
  /** Hostile inputs: refusal time and memory, and the 12 MP HEIC's peak RSS (absent in older reports). */
  hostile?: HostileRow[];
  throughput?: ThroughputReport;
  bundles?: { results: BundleResult[]; buildOutput?: string; error?: string };
  knobs?: KnobRow[];
  /** Per image and variant set: pixelpipe's and the baseline's outputs scored against lossless references. */
  quality?: Array<{ image: string; set?: string; rows: QualityRow[] }>;
  /** `quality: "auto"` on every output against fixed quality 80: bytes, SSIM, and render CPU time. */
  autoQuality?: AutoQualityReport[];
  /** The embedded face analyzer's cost per image against the default 12 MP render (scripts/bench/analysis.ts). */
  analysis?: AnalysisReport;
  /** The default profile's processing speed with profiles configured (scripts/bench/profiles.ts). */
  profiles?: ProfilesReport;
  targets: TargetCheck[];
}

const MB = 1024 * 1024;
const mb = (bytes: number | undefined): string => (bytes === undefined ? '–' : `${Math.round(bytes / MB)}`);
const kb = (bytes: number | undefined): string => (bytes === undefined ? '–' : `${Math.round(bytes / 1024)}`);
const ms = (v: number | undefined): string => (v === undefined || Number.isNaN(v) ? '–' : `${Math.round(v)}`);
const x = (v: number | undefined): string => (v === undefined || !Number.isFinite(v) ? '–' : `${v.toFixed(2)}×`);

function table(head: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

/** Ratios of one image: baseline ÷ pixelpipe and pixelpipe ÷ lower bound, by wall and by CPU time. */
export function ratios(c: CompareResult | undefined): { speedup?: number; speedupCpu?: number; overBound?: number; overBoundCpu?: number } {
  const pp = c?.methods.pixelpipe;
  const fb = c?.methods.baseline;
  const lb = c?.methods.lowerBound;
  // Per-round (paired) ratios where the worker has them; ratios of medians otherwise.
  const p = c?.paired ?? {};
  return {
    speedup: p.speedupWall ?? (pp && fb ? fb.wall.median / pp.wall.median : undefined),
    speedupCpu: p.speedupCpu ?? (pp && fb ? fb.cpu.median / pp.cpu.median : undefined),
    overBound: p.overBoundWall ?? (pp && lb ? pp.wall.median / lb.wall.median : undefined),
    overBoundCpu: p.overBoundCpu ?? (pp && lb ? pp.cpu.median / lb.cpu.median : undefined),
  };
}

/** Evaluates the issue's targets against this run. */
export function checkTargets(r: BenchReport): TargetCheck[] {
  const out: TargetCheck[] = [];
  for (const id of ['jpeg-12mp', 'jpeg-24mp']) {
    const img = r.images.find((i) => i.id === id);
    const q = ratios(img?.compare);
    const stolen = img?.compare?.othersCores;
    const note = stolen === undefined ? '' : `; other processes held ${Math.round(stolen * 100)}% of the core`;
    const spread = (r?: [number, number]) => (r ? `; middle half of the rounds ${x(r[0])}–${x(r[1])}` : '');
    const paired = img?.compare?.paired;
    out.push({
      target: `${id}: baseline ÷ pixelpipe (1 vCPU, CPU-time medians)`,
      limit: '≥ 3.0×',
      measured: q.speedupCpu === undefined ? 'not measured' : `${x(q.speedupCpu)} (wall: ${x(q.speedup)}${note}${spread(paired?.speedupCpuSpread)})`,
      pass: q.speedupCpu === undefined ? null : q.speedupCpu >= 3.0,
    });
    out.push({
      target: `${id}: pixelpipe ÷ lower bound (1 vCPU, CPU-time medians)`,
      limit: '≤ 1.08×',
      measured: q.overBoundCpu === undefined ? 'not measured' : `${x(q.overBoundCpu)} (wall: ${x(q.overBound)}${note}${spread(paired?.overBoundCpuSpread)})`,
      pass: q.overBoundCpu === undefined ? null : q.overBoundCpu <= 1.08,
    });
  }
  if (r.quality?.length) {
    const rows = r.quality.flatMap((q) => q.rows.map((row) => ({ ...row, where: `${q.image}${q.set ? ` ${q.set}` : ''} ${row.variant}.${row.format}` })));
    const misses = rows.filter((row) => !row.dominates);
    out.push({
      target: 'dominance: every output SSIM ≥ and bytes ≤ the baseline’s (default config and equal-work set, every bench photo)',
      limit: `${rows.length} of ${rows.length}`,
      measured: `${rows.length - misses.length} of ${rows.length}${misses.length ? `; misses: ${misses.map((m) => m.where).join(', ')}` : ''}`,
      pass: misses.length === 0,
    });
  }
  if (r.autoQuality?.length) {
    const t = autoTotals(r.autoQuality);
    const saved = 1 - t.autoBytes / t.fixedBytes;
    out.push({
      target: 'quality "auto" on every output: bytes saved against fixed quality 80, at equal-or-better mean SSIM',
      limit: '≥ 15 %, mean SSIM ≥',
      measured: `${(saved * 100).toFixed(1)} % (mean SSIM ${t.autoSsim.toFixed(4)} vs ${t.fixedSsim.toFixed(4)}, ${t.outputs} outputs)`,
      pass: saved >= 0.15 && t.autoSsim >= t.fixedSsim,
    });
    const timed = r.autoQuality.filter((a) => a.fixedCpuMs && a.autoCpuMs);
    if (timed.length) {
      const worst = Math.max(...timed.map((a) => a.autoCpuMs! / a.fixedCpuMs!));
      out.push({
        target: 'quality "auto" render ÷ fixed-quality render (CPU-time medians, 1 vCPU)',
        limit: '≤ 1.6×',
        measured: timed.map((a) => `${a.image} ${x(a.autoCpuMs! / a.fixedCpuMs!)}`).join(', '),
        pass: worst <= 1.6,
      });
    }
  }
  const rss24 = r.images.find((i) => i.id === 'jpeg-24mp')?.rss?.pixelpipe;
  out.push({
    target: 'jpeg-24mp: peak RSS of the process function (1 vCPU)',
    limit: '≤ 256 MB',
    measured: rss24 ? `${mb(rss24.maxRssBytes)} MB` : 'not measured',
    pass: rss24 ? rss24.maxRssBytes <= 256 * MB : null,
  });
  const huge = r.huge;
  if (huge?.refused) {
    const refusedOk = huge.refused.outcome.startsWith('refused') && huge.refused.ms[0] < 1000;
    const processedOk = huge.processed?.outcome === 'ok' && huge.processed.maxRssBytes <= 1024 * MB;
    out.push({
      target: '100 MP: refused before decoding (default limit) or processed within 1 GB',
      limit: 'refused fast, or ≤ 1024 MB',
      measured:
        `default: ${huge.refused.outcome} in ${ms(huge.refused.ms[0])} ms, peak ${mb(huge.refused.maxRssBytes)} MB` +
        (huge.processed ? `; limit raised: ${huge.processed.outcome}, peak ${mb(huge.processed.maxRssBytes)} MB, ${ms(huge.processed.ms[0])} ms` : ''),
      pass: refusedOk || processedOk,
    });
  } else out.push({ target: '100 MP: refused or processed within 1 GB', limit: '', measured: 'not measured', pass: null });
  out.push(...hostileTargets(r.hostile));
  for (const role of ['process', 'upload', 'notify'] as const) {
    const rows = (r.bundles?.results ?? []).filter((b) => b.role === role && b.bundle);
    const worst = rows.reduce<BundleResult | undefined>((w, b) => (!w || b.bundle!.readyMs.median > w.bundle!.readyMs.median ? b : w), undefined);
    out.push({
      target: `cold start, ${role} function (bundle, process start → handler ready, median)`,
      limit: `≤ ${COLD_START_TARGET_MS[role]} ms`,
      measured: worst ? rows.map((b) => `${b.name} ${ms(b.bundle!.readyMs.median)} ms`).join(', ') : 'not measured (no bundle)',
      pass: worst ? worst.bundle!.readyMs.median <= COLD_START_TARGET_MS[role] : null,
    });
  }
  const t = r.throughput;
  const judged = t ? (t.quietRatio ?? t.ratio) : undefined;
  out.push({
    target: `throughput, 2 vCPUs ÷ 1 vCPU (${t ? `${t.inflight} images in flight, ${t.image}` : 'several images in flight'})`,
    limit: '≥ 1.8×',
    measured: t
      ? (t.quietRatio !== undefined
          ? `${x(t.quietRatio)} over the ${t.quietRounds} undisturbed round(s); all rounds: `
          : 'no undisturbed round; all rounds: ') +
        `${x(t.ratio)} (median of per-round ratios; medians ${med(t.twoVcpu.map((v) => v.imagesPerSecond)).toFixed(2)} vs ${med(t.oneVcpu.map((v) => v.imagesPerSecond)).toFixed(2)} images/s), best runs ${x(t.bestRatio)}; ` +
        `machine ceiling (two 1-vCPU processes side by side): ${x(t.pairRatio)}` +
        (t.unpinnedPairRatio !== undefined ? `, or ${x(t.unpinnedPairRatio)} when they are not pinned to a core each` : '')
      : 'not measured',
    pass: judged === undefined ? null : judged >= 1.8,
  });
  return out;
}

function med(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s.length ? (s[(s.length - 1) >> 1] + s[s.length >> 1]) / 2 : Number.NaN;
}

/** The report as Markdown: what `docs/performance.md` quotes. */
export function renderMarkdown(r: BenchReport): string {
  const parts: string[] = [];
  const m = r.machine;
  parts.push(
    `- pixelpipe benchmark, ${r.date}${r.quick ? ' (--quick: small images, not representative)' : ''}: \`${r.command}\`\n` +
      `- machine: ${m.cpus} × ${m.model}, ${m.memoryMB} MB; Node ${m.node}, sharp ${m.sharp}, libvips ${m.libvips}; load average at start ${m.loadavg.map((l) => l.toFixed(2)).join(' ')}\n` +
      `- 1 vCPU = taskset -c ${r.settings.oneVcpu.cpus}, UV_THREADPOOL_SIZE=${r.settings.oneVcpu.threadpool}, MALLOC_ARENA_MAX=${r.settings.oneVcpu.mallocArenaMax ?? 2}, sharp.concurrency(1)` +
      `${m.taskset ? '' : ' (taskset missing: NOT pinned)'}; ${r.settings.iterations} interleaved rounds after ${r.settings.warmup} warm-up, medians`,
  );

  const rows = r.images.map((img) => {
    const c = img.compare;
    const pp = c?.methods.pixelpipe;
    const fb = c?.methods.baseline;
    const lb = c?.methods.lowerBound;
    const q = ratios(c);
    const cell = (t: { wall: { median: number }; cpu: { median: number } } | undefined, skip?: string) =>
      t ? `${ms(t.wall.median)} (${ms(t.cpu.median)})` : skip ? 'n/a' : '–';
    return [
      img.error ? `${img.label} (error: ${img.error})` : img.label,
      cell(pp),
      cell(fb, c?.skipped.baseline),
      cell(lb),
      q.speedupCpu === undefined ? (c?.skipped.baseline ? 'n/a' : '–') : `${x(q.speedupCpu)} (${x(q.speedup)})`,
      q.overBoundCpu === undefined ? '–' : `${x(q.overBoundCpu)} (${x(q.overBound)})`,
      c?.firstRender ? `${ms(c.firstRender.wallMs)} (${ms(c.firstRender.cpuMs)})` : '–',
      `${mb(img.rss?.pixelpipe?.maxRssBytes)} / ${mb(img.rss?.baseline?.maxRssBytes)}`,
      c?.othersCores === undefined ? '–' : `${Math.round(c.othersCores * 100)}%`,
      pp ? `${kb(pp.bytes.webp)} / ${kb(pp.bytes.jpeg)}` : '–',
      fb ? `${kb(fb.bytes.webp)} / ${kb(fb.bytes.jpeg)}` : c?.skipped.baseline ? 'n/a' : '–',
    ];
  });
  parts.push(
    '### Default config, 1 vCPU\n\n' +
      table(
        [
          'image',
          'pixelpipe ms',
          'Firebase-style ms',
          'decode+encode bound ms',
          'baseline ÷ pixelpipe',
          'pixelpipe ÷ bound',
          "pixelpipe's first render ms",
          'peak RSS MB (pixelpipe / baseline)',
          'core taken by others',
          'pixelpipe KiB webp / jpeg',
          'baseline KiB webp / jpeg',
        ],
        rows,
      ) +
      '\n\nms: median wall time, median CPU time in parentheses. Ratios: median of the per-round ratios of CPU time (of wall time in parentheses); ' +
      'each round runs the three pipelines back to back, in rotating order. On a pinned core with one libuv thread, CPU time is ' +
      'what an undisturbed 1-vCPU instance takes; wall time also counts the moments other processes held the core ("core taken by others", from /proc/stat). ' +
      "The bound is one decode to the largest output plus each output's encode from ready pixels. " +
      "First render: the child process's first pixelpipe render (cold libvips and JIT), excluded from the medians.",
  );

  const withBreakdown = r.images.filter((i) => i.compare?.breakdown.lowerBoundEncodes);
  if (withBreakdown.length) {
    const keys = Object.keys(withBreakdown[0].compare!.breakdown.lowerBoundEncodes!);
    parts.push(
      '### Where the time goes (lower bound parts, CPU ms)\n\n' +
        table(
          ['image', 'decode', ...keys],
          withBreakdown.map((i) => {
            const b = i.compare!.breakdown;
            return [i.id, ms(b.lowerBoundDecode?.cpuMs), ...keys.map((k) => (b.lowerBoundEncodes![k] ? b.lowerBoundEncodes![k].cpuMs.toFixed(1) : '–'))];
          }),
        ),
    );
  }

  for (const q of r.quality ?? []) {
    const wins = q.rows.filter((row) => row.dominates).length;
    parts.push(
      `### Dominance, ${q.image}${q.set ? `, ${q.set}` : ''}: luma SSIM against a lossless direct resize of the original, and bytes (${wins} of ${q.rows.length} outputs better on both)\n\n` +
        table(
          ['output', 'SSIM pixelpipe', 'SSIM baseline', 'bytes pixelpipe', 'bytes baseline', 'bytes ratio', 'smaller and better'],
          q.rows.map((row) => [
            `${row.variant}.${row.format}`,
            row.pixelpipeSsim.toFixed(4),
            row.baselineSsim.toFixed(4),
            String(row.pixelpipeBytes),
            String(row.baselineBytes),
            (row.pixelpipeBytes / row.baselineBytes).toFixed(3),
            row.dominates ? 'yes' : '**no**',
          ]),
        ),
    );
  }

  if (r.autoQuality?.length) {
    const t = autoTotals(r.autoQuality);
    parts.push(
      `### quality: "auto" (target ${r.autoQuality[0].target}) against fixed quality 80, every output of the default config\n\n` +
        table(
          ['image', 'bytes q80', 'bytes auto', 'saved', 'mean SSIM q80', 'mean SSIM auto', 'qualities chosen', 'render CPU ms fixed / auto (1 vCPU)'],
          r.autoQuality.map((a) => {
            const s = autoTotals([a]);
            return [
              a.image,
              String(s.fixedBytes),
              String(s.autoBytes),
              `${((1 - s.autoBytes / s.fixedBytes) * 100).toFixed(1)} %`,
              s.fixedSsim.toFixed(4),
              s.autoSsim.toFixed(4),
              a.rows.map((row) => `${row.output} q${row.autoQuality}`).join(', '),
              a.fixedCpuMs && a.autoCpuMs ? `${ms(a.fixedCpuMs)} / ${ms(a.autoCpuMs)} (${x(a.autoCpuMs / a.fixedCpuMs)})` : '–',
            ];
          }),
        ) +
        `\n\nAll images: ${t.autoBytes} vs ${t.fixedBytes} bytes (${((1 - t.autoBytes / t.fixedBytes) * 100).toFixed(1)} % saved), mean SSIM ${t.autoSsim.toFixed(4)} vs ${t.fixedSsim.toFixed(4)}. ` +
        'SSIM here is against the lossless reference of the original (as in the dominance tables); the search itself scores against the output’s own pixels.',
    );
  }

  if (r.huge) {
    const h = r.huge;
    const rowsH: string[][] = [];
    if (h.refused)
      rowsH.push([
        'default (PIXELPIPE_MAX_INPUT_PIXELS=50000000)',
        h.refused.outcome,
        ms(h.refused.ms[0]),
        mb(h.refused.maxRssBytes),
        mb(h.refused.idleRssBytes),
      ]);
    if (h.processed)
      rowsH.push([
        `PIXELPIPE_MAX_INPUT_PIXELS=${h.processedLimit}`,
        h.processed.outcome,
        ms(h.processed.ms[0]),
        mb(h.processed.maxRssBytes),
        mb(h.processed.idleRssBytes),
      ]);
    parts.push(
      `### ${h.width}×${h.height} (${round((h.width * h.height) / 1e6, 0)} MP, ${round(h.bytes / 1e6)} MB) JPEG, 1 vCPU\n\n` +
        table(['limit', 'outcome', 'ms', 'peak RSS MB', 'RSS before MB'], rowsH),
    );
  }

  if (r.throughput) {
    const t = r.throughput;
    const cell = (v: ThroughputResult[]) => `${med(v.map((y) => y.imagesPerSecond)).toFixed(2)} (${v.map((y) => y.imagesPerSecond.toFixed(2)).join(', ')})`;
    const busy = (v: ThroughputResult[]) => med(v.map((y) => y.coresBusy)).toFixed(2);
    const others = (v: ThroughputResult[]) => (v.some((y) => y.othersCores !== undefined) ? med(v.map((y) => y.othersCores ?? 0)).toFixed(2) : '–');
    const rows: string[][] = [
      [
        `1 vCPU (taskset -c ${r.settings.oneVcpu.cpus}, UV_THREADPOOL_SIZE=${r.settings.oneVcpu.threadpool})`,
        cell(t.oneVcpu),
        busy(t.oneVcpu),
        others(t.oneVcpu),
        mb(Math.max(...t.oneVcpu.map((y) => y.maxRssBytes))),
      ],
      [
        `2 vCPUs (taskset -c ${r.settings.twoVcpu.cpus}, UV_THREADPOOL_SIZE=${r.settings.twoVcpu.threadpool})`,
        cell(t.twoVcpu),
        busy(t.twoVcpu),
        others(t.twoVcpu),
        mb(Math.max(...t.twoVcpu.map((y) => y.maxRssBytes))),
      ],
    ];
    if (t.pairs.length) {
      const summed = t.pairs.map((p) => ({ ...p[0], imagesPerSecond: round(p[0].imagesPerSecond + p[1].imagesPerSecond, 2) }));
      rows.push([
        'ceiling: two 1-vCPU processes at once (taskset -c 0 and -c 1), summed',
        cell(summed),
        med(t.pairs.map((p) => p[0].coresBusy + p[1].coresBusy)).toFixed(2),
        '–',
        '–',
      ]);
    }
    if (t.unpinnedPairs?.length) {
      const summed = t.unpinnedPairs.map((p) => ({ ...p[0], imagesPerSecond: round(p[0].imagesPerSecond + p[1].imagesPerSecond, 2) }));
      rows.push([
        `the same two processes, both on cores 0,1 (${Math.max(1, t.inflight / 2)} in flight each), summed`,
        cell(summed),
        med(t.unpinnedPairs.map((p) => p[0].coresBusy + p[1].coresBusy)).toFixed(2),
        '–',
        '–',
      ]);
    }
    parts.push(
      `### Throughput, ${t.image}, ${t.inflight} renders in flight\n\n` +
        table(['instance', 'images/s median (runs)', 'cores busy (ours)', 'cores taken by other processes', 'peak RSS MB'], rows) +
        `\n\n2 vCPUs ÷ 1 vCPU: ${x(t.ratio)} (median of the per-round ratios), ${x(t.bestRatio)} (best runs), machine ceiling ${x(t.pairRatio)}` +
        `${t.unpinnedPairRatio !== undefined ? ` (${x(t.unpinnedPairRatio)} when the two processes are not pinned to a core each)` : ''}, ` +
        `${t.quietRatio === undefined ? 'no round undisturbed by other processes' : `${x(t.quietRatio)} over the ${t.quietRounds} round(s) other processes left alone`}. ` +
        `Each run times ${t.renders} renders in steady state: the clock starts once the first ${t.inflight} are done and stops while ${t.inflight} more are still queued, so neither start-up nor the final drain counts. ` +
        '"cores busy" = our CPU time ÷ wall time; "taken by other processes" = the rest of the busy time on the same CPUs (/proc/stat), i.e. what a shared machine stole.',
    );
  }

  if (r.bundles) {
    if (r.bundles.error) parts.push(`### Bundles\n\n${r.bundles.error}`);
    else
      parts.push(
        '### Function bundles: size and cold start (1 vCPU, median of fresh processes, ms from process start to handler ready)\n\n' +
          table(
            ['function', 'bundle KiB', 'cold start, bundle', 'require() only', 'files loaded', 'cold start, node_modules', 'files loaded', 'target'],
            r.bundles.results.map((b) =>
              b.role === 'floor'
                ? [
                    b.name,
                    '–',
                    b.bundle ? ms(b.bundle.readyMs.median) : `failed: ${b.bundleError}`,
                    b.bundle ? ms(b.bundle.requireMs.median) : '',
                    '1',
                    '',
                    '',
                    'the floor',
                  ]
                : b.skipped
                  ? [b.name, '–', `skipped: ${b.skipped}`, '', '', '', '', `≤ ${COLD_START_TARGET_MS[b.role]}`]
                  : [
                      b.name,
                      kb(b.bundleBytes),
                      b.bundle ? ms(b.bundle.readyMs.median) : `failed: ${b.bundleError}`,
                      b.bundle ? ms(b.bundle.requireMs.median) : '',
                      b.bundle ? String(b.bundle.modules) : '',
                      b.nodeModules
                        ? ms(b.nodeModules.readyMs.median)
                        : b.nodeModulesError?.startsWith('not measured')
                          ? b.nodeModulesError
                          : `failed: ${b.nodeModulesError}`,
                      b.nodeModules ? String(b.nodeModules.modules) : '',
                      `≤ ${COLD_START_TARGET_MS[b.role]}`,
                    ],
            ),
          ),
      );
  }

  if (r.knobs?.length) {
    parts.push(
      '### Tuning knobs (measured)\n\n' +
        table(
          ['knob', 'value', 'scenario', 'ms (CPU ms)', 'images/s (CPU ms per image)', 'peak RSS MB', 'webp KiB', 'webp SSIM (mean)', 'cores taken by others'],
          r.knobs.map((k) => [
            k.knob,
            k.value,
            k.scenario,
            k.wallMs === undefined ? '–' : `${ms(k.wallMs)} (${ms(k.cpuMs)})`,
            k.imagesPerSecond === undefined ? '–' : `${k.imagesPerSecond.toFixed(2)} (${ms(k.cpuMs)})`,
            k.peakRssMB === undefined ? '–' : String(k.peakRssMB),
            kb(k.webpBytes),
            k.webpSsim === undefined ? '–' : k.webpSsim.toFixed(4),
            k.othersCores === undefined ? '–' : k.othersCores.toFixed(2),
          ]),
        ),
    );
  }

  if (r.analysis) parts.push(renderAnalysis(r.analysis));
  if (r.profiles) parts.push(renderProfiles(r.profiles));

  parts.push(
    '### Targets\n\n' +
      table(
        ['target', 'limit', 'measured', 'met'],
        r.targets.map((t) => [t.target, t.limit, t.measured, t.pass === null ? '–' : t.pass ? 'yes' : '**no**']),
      ),
  );
  return parts.join('\n\n') + '\n';
}

/** One median that moved between two reports. */
export interface Regression {
  what: string;
  before: number;
  after: number;
  change: number;
}

/**
 * Compares medians (CPU time where there is one: it is what a shared machine perturbs least) of two
 * reports; returns those that got slower (or bigger) by more than `threshold`. Meant for full runs:
 * a --quick median rests on two samples.
 */
export function compareReports(before: BenchReport, after: BenchReport, threshold: number): { regressions: Regression[]; compared: number } {
  const pairs: Array<[string, number | undefined, number | undefined]> = [];
  for (const img of after.images) {
    const old = before.images.find((i) => i.id === img.id);
    pairs.push([`${img.id} pixelpipe CPU ms`, old?.compare?.methods.pixelpipe?.cpu.median, img.compare?.methods.pixelpipe?.cpu.median]);
    // Relative to the bound measured in the same run: stable across machines of different speed.
    pairs.push([`${img.id} pixelpipe ÷ bound`, ratios(old?.compare).overBoundCpu, ratios(img.compare).overBoundCpu]);
    for (const f of ['webp', 'jpeg'])
      pairs.push([`${img.id} pixelpipe ${f} bytes`, old?.compare?.methods.pixelpipe?.bytes[f], img.compare?.methods.pixelpipe?.bytes[f]]);
    pairs.push([`${img.id} pixelpipe peak RSS`, old?.rss?.pixelpipe?.maxRssBytes, img.rss?.pixelpipe?.maxRssBytes]);
  }
  for (const b of after.bundles?.results ?? []) {
    const old = before.bundles?.results.find((o) => o.name === b.name);
    pairs.push([`${b.name} bundle bytes`, old?.bundleBytes, b.bundleBytes]);
  }
  const regressions: Regression[] = [];
  let compared = 0;
  for (const [what, a, b] of pairs) {
    if (a === undefined || b === undefined || !(a > 0)) continue;
    compared++;
    const change = b / a - 1;
    if (change > threshold) regressions.push({ what, before: a, after: b, change: round(change, 3) });
  }
  return { regressions, compared };
}
