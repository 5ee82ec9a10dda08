import { analysisTargets, renderAnalysis, type AnalysisReport } from '../../scripts/bench/analysis';

const report = (renderImage: string, warmCpuMs: number): AnalysisReport => ({
  kind: 'analysis',
  render: { wallMs: 900, cpuMs: 800 },
  renderImage,
  backend: 'wasm',
  defaultDetector: 'tiny@448',
  rows: [
    { detector: 'tiny@448', first: { wallMs: 1500, cpuMs: 1400 }, warm: { wallMs: warmCpuMs, cpuMs: warmCpuMs }, hits: 24, faces: 24, falsePositives: 1 },
    { detector: 'ssd', first: { wallMs: 700, cpuMs: 600 }, warm: { wallMs: 400, cpuMs: 400 }, hits: 24, faces: 24, falsePositives: 2 },
  ],
});

describe('analysis bench section', () => {
  it('judges the default detector against the 12 MP render: ≤ 20 % passes', () => {
    expect(analysisTargets(report('/x/jpeg-12mp.jpg', 160))[0]).toMatchObject({ pass: true, measured: expect.stringContaining('20 %') as unknown });
    expect(analysisTargets(report('/x/jpeg-12mp.jpg', 161))[0].pass).toBe(false);
  });

  it('does not judge a quick run, whose yardstick is a smaller photo', () => {
    expect(analysisTargets(report('/x/jpeg-2mp.jpg', 10))[0]).toMatchObject({ pass: null, measured: expect.stringContaining('not measured') as unknown });
    expect(analysisTargets(undefined)[0]).toMatchObject({ pass: null, measured: 'not measured' });
  });

  it('renders one row per detector, the default marked, with its share of the render', () => {
    const md = renderAnalysis(report('/x/jpeg-12mp.jpg', 120));
    expect(md).toContain('| **tiny@448** (default) | 24/24 | 1 | 1400 | 120 | 15 % | 120 |');
    expect(md).toContain('| ssd | 24/24 | 2 | 600 | 400 | 50 % | 400 |');
  });
});
