import { median, quantile, round, summarize, timed } from '../../scripts/bench/stats';

test('quantiles interpolate between order statistics', () => {
  expect(median([3, 1, 2])).toBe(2);
  expect(median([4, 1, 3, 2])).toBe(2.5);
  expect(quantile([10, 20, 30, 40, 50], 0.25)).toBe(20);
  expect(quantile([1], 0.9)).toBe(1);
  expect(median([])).toBeNaN();
});

test('summarize reports n, median, extremes and quartiles without reordering the input', () => {
  const values = [5, 1, 4, 2, 3];
  expect(summarize(values)).toEqual({ n: 5, median: 3, min: 1, max: 5, p25: 2, p75: 4 });
  expect(values).toEqual([5, 1, 4, 2, 3]);
});

test('round keeps the requested decimals', () => {
  expect(round(1.23456, 2)).toBe(1.23);
  expect(round(1.25)).toBe(1.3);
});

test('timed returns the value with wall and CPU time', async () => {
  const t = await timed(() => {
    let x = 0;
    for (let i = 0; i < 1e6; i++) x += i;
    return Promise.resolve(x);
  });
  expect(t.value).toBe(499999500000);
  expect(t.wallMs).toBeGreaterThan(0);
  expect(t.cpuMs).toBeGreaterThanOrEqual(0);
});
