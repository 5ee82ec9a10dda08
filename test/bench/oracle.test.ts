import { oracleMinBytes, oraclePerOutput, type RdCurve } from '../../scripts/bench/oracle';
import { oracleReport } from '../../scripts/bench/oracle-report';

const curve = (output: string, pts: Array<[number, number, number]>, pixels = 100): RdCurve => ({
  output,
  pixels,
  points: pts.map(([quality, bytes, ssim]) => ({ quality, bytes, ssim })),
});

// Two outputs whose marginal cost of SSIM differs: `a` gains SSIM cheaply, `b` dearly.
const a = curve('img/a.jpeg', [
  [60, 100, 0.9],
  [80, 150, 0.95],
  [90, 200, 0.98],
]);
const b = curve('img/b.jpeg', [
  [60, 1000, 0.9],
  [80, 2000, 0.95],
  [90, 4000, 0.98],
]);

/** Every combination of one point per curve: the exact optimum to check the DP against. */
function bruteForce(curves: RdCurve[], minMean: number): number {
  let bestBytes = Number.POSITIVE_INFINITY;
  const walk = (i: number, bytes: number, ssimSum: number): void => {
    if (i === curves.length) {
      if (ssimSum / curves.length >= minMean - 1e-12) bestBytes = Math.min(bestBytes, bytes);
      return;
    }
    for (const p of curves[i].points) walk(i + 1, bytes + p.bytes, ssimSum + p.ssim);
  };
  walk(0, 0, 0);
  return bestBytes;
}

describe('oracleMinBytes', () => {
  it('trades quality from the dear output to the cheap one at equal mean SSIM', () => {
    // Both at q80: 2150 bytes, mean 0.95. a at q90 + b at q60 has mean 0.94 (too low); a q90 + b q80 is
    // dearer. So the optimum keeps q80/q80 at mean ≥ 0.95 …
    expect(oracleMinBytes([a, b], 0.95)!.bytes).toBe(2150);
    // … and at mean ≥ 0.94, a at q90 with b at q60 (1200 bytes) beats both at q80 (2150).
    const r = oracleMinBytes([a, b], 0.94)!;
    expect(r.bytes).toBe(1200);
    expect(r.picks.map((p) => p.quality)).toEqual([90, 60]);
    expect(r.meanSsim).toBeCloseTo(0.94, 10);
  });

  it('matches brute force on random curves, rounding shortfalls up (achievable) and down (bound)', () => {
    let seed = 7;
    let feasible = 0;
    const rand = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let trial = 0; trial < 20; trial++) {
      const curves = Array.from({ length: 4 }, (_, i) => {
        let bytes = 50 + Math.floor(rand() * 50);
        let s = 0.85 + rand() * 0.05;
        const pts: Array<[number, number, number]> = [];
        for (let q = 0; q < 6; q++) {
          pts.push([q, bytes, Math.round(s * 1e5) / 1e5]);
          bytes += 10 + Math.floor(rand() * 200);
          s += rand() * 0.03;
        }
        return curve(`img/${i}`, pts);
      });
      const minMean = 0.88 + rand() * 0.03;
      const exact = bruteForce(curves, minMean);
      const up = oracleMinBytes(curves, minMean, { round: 'up' });
      const down = oracleMinBytes(curves, minMean, { round: 'down' });
      if (!Number.isFinite(exact)) {
        expect(up).toBeUndefined();
        continue;
      }
      feasible++;
      // The SSIMs sit on the 1e-5 grid, so both roundings are exact here.
      expect(up!.bytes).toBe(exact);
      expect(down!.bytes).toBe(exact);
      expect(up!.meanSsim).toBeGreaterThanOrEqual(minMean - 1e-12);
    }
    // Most random constraints must be satisfiable, or the comparison above proved little.
    expect(feasible).toBeGreaterThan(10);
  });

  it('is undefined when even the best points miss the mean', () => {
    expect(oracleMinBytes([a, b], 0.99)).toBeUndefined();
  });

  it('weights the mean by the given weights', () => {
    // With b weighted 9:1, lowering b costs nine times the SSIM: q80/q80 is the cheapest at the
    // weighted q80 mean (a q90 + b q60 would have a weighted mean of 0.908).
    expect(oracleMinBytes([a, b], 0.95, { weights: [1, 9] })!.bytes).toBe(2150);
  });
});

describe('oraclePerOutput', () => {
  it('takes each curve’s smallest point at or above its own floor', () => {
    const r = oraclePerOutput([a, b], [0.95, 0.9])!;
    expect(r.picks.map((p) => p.quality)).toEqual([80, 60]);
    expect(r.bytes).toBe(1150);
  });
});

describe('oracleReport', () => {
  it('compares against the q80 points and picks the cheapest auto target at mean SSIM ≥ q80', () => {
    const outputs = (ssimA: number, ssimB: number, bytes: number) => [
      { output: 'img/a.jpeg', quality: 0, bytes: bytes / 2, ssim: ssimA },
      { output: 'img/b.jpeg', quality: 0, bytes: bytes / 2, ssim: ssimB },
    ];
    const r = oracleReport(
      [a, b],
      {
        img: [
          { target: 'ssim:0.9', bytes: 1000, meanSsim: 0.9, outputs: outputs(0.9, 0.9, 1000) },
          { target: 'ssim:0.95', bytes: 2100, meanSsim: 0.95, outputs: outputs(0.95, 0.951, 2100) },
          { target: 'ssim:0.98', bytes: 4000, meanSsim: 0.98, outputs: outputs(0.98, 0.98, 4000) },
        ],
      },
      ['img'],
    );
    expect(r.rows).toHaveLength(1);
    expect(r.rows[0]).toMatchObject({ q80Bytes: 2150, oracleBytes: 2150, perOutputBytes: 2150, autoBestTarget: 'ssim:0.95', autoBestBytes: 2100 });
  });
});
