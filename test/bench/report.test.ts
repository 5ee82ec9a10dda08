import { checkTargets, compareReports, renderMarkdown, type BenchReport } from '../../scripts/bench/report';
import type { CompareResult } from '../../scripts/bench/worker';

const summary = (median: number) => ({ n: 3, median, min: median, max: median, p25: median, p75: median });

function compare(pp: number, fb: number, lb: number): CompareResult {
  const m = (ms: number, webp: number) => ({ wall: summary(ms * 1.1), cpu: summary(ms), bytes: { webp, jpeg: 2 * webp }, outputs: [] });
  return {
    kind: 'compare',
    probe: { format: 'jpeg', width: 4000, height: 3000, orientation: undefined, hasAlpha: false },
    methods: { pixelpipe: m(pp, 1000), baseline: m(fb, 900), lowerBound: m(lb, 1000) },
    skipped: {},
    breakdown: {},
    maxRssBytes: 100 * 2 ** 20,
    othersCores: 0.1,
    paired: {},
  };
}

function report(pp: number): BenchReport {
  return {
    version: 1,
    date: '2025-01-01T00:00:00.000Z',
    command: 'npm run bench',
    quick: false,
    machine: { cpus: 2, model: 'test', node: '20', sharp: '0.35.5', libvips: '8.18.7', loadavg: [0, 0, 0], taskset: true, memoryMB: 1024 },
    settings: { iterations: 3, warmup: 1, oneVcpu: { cpus: '0', threadpool: 1 }, twoVcpu: { cpus: '0,1', threadpool: 2 }, coldRuns: 3 },
    images: [
      {
        id: 'jpeg-12mp',
        label: '12 MP',
        bytes: 1,
        compare: compare(pp, 1500, 500),
        rss: { pixelpipe: { kind: 'rss', idleRssBytes: 1, maxRssBytes: 200 * 2 ** 20, ms: [1], outcome: 'ok' } },
      },
      {
        id: 'jpeg-24mp',
        label: '24 MP',
        bytes: 1,
        compare: compare(pp, 1500, 500),
        rss: { pixelpipe: { kind: 'rss', idleRssBytes: 1, maxRssBytes: 300 * 2 ** 20, ms: [1], outcome: 'ok' } },
      },
    ],
    targets: [],
  };
}

test('targets are judged on CPU-time medians and say what they measured', () => {
  // 1500 ÷ 480 = 3.1× the baseline (≥ 3.0×), 480 ÷ 500 under the bound's 1.08×.
  const t = checkTargets(report(480));
  const byName = (s: string) => t.filter((x) => x.target.includes(s));
  expect(byName('baseline ÷ pixelpipe').map((x) => x.pass)).toEqual([true, true]);
  expect(byName('lower bound').map((x) => x.pass)).toEqual([true, true]);
  expect(byName('peak RSS')[0]).toMatchObject({ pass: false, measured: '300 MB' });
  expect(byName('cold start').every((x) => x.pass === null)).toBe(true);
  expect(
    checkTargets(report(700))
      .filter((x) => x.target.includes('lower bound'))
      .map((x) => x.pass),
  ).toEqual([false, false]);
  // 1500 ÷ 520 = 2.9×: under the 3.0× target, though within the bound's 1.08× (520 ÷ 500).
  const slow = checkTargets(report(520));
  expect(slow.filter((x) => x.target.includes('baseline ÷ pixelpipe')).map((x) => x.pass)).toEqual([false, false]);
  expect(slow.filter((x) => x.target.includes('lower bound')).map((x) => x.pass)).toEqual([true, true]);
  // With per-round ratios, the verdict is their median and the row shows how widely the rounds spread.
  const paired = report(480);
  paired.images[0].compare!.paired = { overBoundCpu: 1.1, overBoundWall: 1.1, overBoundCpuSpread: [1.03, 1.16] };
  const row = checkTargets(paired).find((x) => x.target === 'jpeg-12mp: pixelpipe ÷ lower bound (1 vCPU, CPU-time medians)')!;
  expect(row.pass).toBe(false);
  expect(row.measured).toContain('1.10×');
  expect(row.measured).toContain('middle half of the rounds 1.03×–1.16×');
});

test('dominance counts outputs better on both axes; auto quality is judged on bytes saved at equal-or-better SSIM and on time', () => {
  const row = (dominates: boolean) => ({ variant: 'a', format: 'webp', pixelpipeSsim: 0.9, baselineSsim: 0.9, pixelpipeBytes: 1, baselineBytes: 1, dominates });
  const r = report(480);
  r.quality = [{ image: 'jpeg-12mp', set: 'default config', rows: [row(true), row(false)] }];
  const auto = (fixedBytes: number, autoBytes: number, fixedSsim: number, autoSsim: number) => ({
    output: 'a.webp',
    fixedBytes,
    autoBytes,
    fixedSsim,
    autoSsim,
  });
  r.autoQuality = [{ image: 'jpeg-12mp', target: 'ssim:0.97', rows: [auto(100, 80, 0.95, 0.96)], fixedCpuMs: 100, autoCpuMs: 150 }];
  const t = checkTargets(r);
  expect(t.find((x) => x.target.startsWith('dominance'))).toMatchObject({
    pass: false,
    measured: expect.stringMatching(/^1 of 2; misses: jpeg-12mp default config a\.webp/) as unknown,
  });
  expect(t.find((x) => x.target.includes('bytes saved'))?.pass).toBe(true);
  expect(t.find((x) => x.target.includes('render ÷'))?.pass).toBe(true);
  r.autoQuality[0].rows = [auto(100, 90, 0.95, 0.96)];
  r.autoQuality[0].autoCpuMs = 170;
  const t2 = checkTargets(r);
  expect(t2.find((x) => x.target.includes('bytes saved'))?.pass).toBe(false);
  expect(t2.find((x) => x.target.includes('render ÷'))?.pass).toBe(false);
  expect(renderMarkdown(r)).toContain('### Dominance, jpeg-12mp, default config');
});

test('the Markdown has the main table and the target table', () => {
  const r = report(550);
  r.targets = checkTargets(r);
  const md = renderMarkdown(r);
  expect(md).toContain('| 12 MP | 605 (550) | 1650 (1500) | 550 (500) | 2.73× (2.73×) | 1.10× (1.10×) | – | 200 / – | 10% |');
  expect(md).toContain('### Targets');
});

test('compareReports flags medians that grew past the threshold', () => {
  const { regressions, compared } = compareReports(report(550), report(650), 0.15);
  expect(compared).toBeGreaterThan(4);
  expect(regressions.map((r) => r.what)).toEqual([
    'jpeg-12mp pixelpipe CPU ms',
    'jpeg-12mp pixelpipe ÷ bound',
    'jpeg-24mp pixelpipe CPU ms',
    'jpeg-24mp pixelpipe ÷ bound',
  ]);
  expect(compareReports(report(550), report(600), 0.15).regressions).toEqual([]);
});

test('hostile inputs pass only with the expected outcome inside every bound, and report what they measured', () => {
  const MB = 2 ** 20;
  const bomb = {
    id: 'png-bomb',
    label: 'bomb',
    outcome: 'refused: too_many_pixels',
    expectedOutcome: 'refused: too_many_pixels',
    ms: 40,
    idleRssBytes: 80 * MB,
    maxRssBytes: 100 * MB,
    maxMs: 1000,
    maxGrowthBytes: 50 * MB,
  };
  const heic = {
    id: 'heic-12mp',
    label: 'heic',
    outcome: 'ok',
    expectedOutcome: 'ok',
    ms: 3000,
    idleRssBytes: 80 * MB,
    maxRssBytes: 300 * MB,
    maxPeakBytes: 512 * MB,
  };
  const judged = (rows: (typeof bomb | typeof heic)[]) => checkTargets({ ...report(100), hostile: rows }).filter((t) => t.target.startsWith('hostile input'));
  expect(judged([bomb, heic]).map((t) => t.pass)).toEqual([true, true]);
  expect(judged([bomb])[0]).toMatchObject({
    limit: 'refused: too_many_pixels, ≤ 1000 ms, RSS growth ≤ 50 MB',
    measured: 'refused: too_many_pixels in 40.0 ms, peak RSS 100 MB (idle 80 MB)',
  });
  expect(judged([{ ...bomb, ms: 1001 }])[0].pass).toBe(false);
  expect(judged([{ ...bomb, maxRssBytes: 131 * MB }])[0].pass).toBe(false);
  expect(judged([{ ...bomb, outcome: 'ok' }])[0].pass).toBe(false);
  expect(judged([{ ...heic, maxRssBytes: 513 * MB }])[0].pass).toBe(false);
  expect(checkTargets(report(100)).filter((t) => t.target.startsWith('hostile input'))).toEqual([]);
});
