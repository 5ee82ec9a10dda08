import { lazyAnalyzer } from '../../shared/lazy-analyzer';
import type { AnalysisResult, ImageAnalyzer } from '../../shared/ports';

const pixels = { data: new Uint8Array(3), width: 1, height: 1, channels: 3 as const };
const real = (ms: number): ImageAnalyzer => ({
  name: 'real',
  supports: ['faces'],
  analyze: (): Promise<AnalysisResult> => Promise.resolve({ faces: [], unavailable: [], analyzer: 'real', ms }),
});

describe('lazyAnalyzer', () => {
  it('loads once, on the first image, and adds the load time to that image only', async () => {
    let loads = 0;
    const a = lazyAnalyzer('x', ['faces'], async () => {
      loads++;
      await new Promise((r) => setTimeout(r, 30));
      return real(5);
    });
    expect(loads).toBe(0);
    expect(a).toMatchObject({ name: 'x', supports: ['faces'] });
    const [first, second] = await Promise.all([a.analyze(pixels, ['faces']), a.analyze(pixels, ['faces'])]);
    expect(loads).toBe(1);
    expect(first.ms).toBeGreaterThanOrEqual(5 + 25);
    expect(second.ms).toBeGreaterThanOrEqual(5 + 25);
    expect((await a.analyze(pixels, ['faces'])).ms).toBeLessThan(5 + 25);
  });

  it('tries the load again after it failed', async () => {
    let loads = 0;
    const a = lazyAnalyzer('x', ['faces'], () => (++loads === 1 ? Promise.reject(new Error('module missing')) : Promise.resolve(real(1))));
    await expect(a.analyze(pixels, ['faces'])).rejects.toThrow('module missing');
    await expect(a.analyze(pixels, ['faces'])).resolves.toMatchObject({ analyzer: 'real' });
    expect(loads).toBe(2);
  });
});
