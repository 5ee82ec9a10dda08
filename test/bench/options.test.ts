import { parseArgs } from '../../scripts/bench/options';

test('defaults: a full run with 9 iterations', () => {
  const o = parseArgs([]);
  expect(o).toMatchObject({ quick: false, iterations: 9, warmup: 2, coldRuns: 10, json: false, threshold: 0.15, help: false });
  expect(o.skip.size).toBe(0);
});

test('--quick shrinks the run', () => {
  expect(parseArgs(['--quick'])).toMatchObject({ quick: true, iterations: 2, warmup: 0, coldRuns: 3 });
  expect(parseArgs(['--iterations', '5', '--quick']).iterations).toBe(5);
});

test('--json takes an optional file, in either spelling', () => {
  expect(parseArgs(['--json']).json).toBe(true);
  expect(parseArgs(['--json', '--quick']).json).toBe(true);
  expect(parseArgs(['--json', 'out.json']).json).toBe('out.json');
  expect(parseArgs(['--json=out.json']).json).toBe('out.json');
});

test('lists, numbers and comparisons', () => {
  const o = parseArgs([
    '--images',
    'jpeg-12mp,heic',
    '--skip',
    'bundles,knobs',
    '--compare',
    'old.json',
    '--threshold=0.1',
    '--warmup',
    '0',
    '--cold-runs',
    '4',
  ]);
  expect(o.images).toEqual(['jpeg-12mp', 'heic']);
  expect([...o.skip]).toEqual(['bundles', 'knobs']);
  expect(o).toMatchObject({ compare: 'old.json', threshold: 0.1, warmup: 0, coldRuns: 4 });
  expect(parseArgs(['--render', 'r.json']).render).toBe('r.json');
});

test('bad input is refused with a readable message', () => {
  expect(() => parseArgs(['--iterations', '0'])).toThrow(/--iterations needs a positive integer/);
  expect(() => parseArgs(['--skip', 'everything'])).toThrow(/unknown section "everything"/);
  expect(() => parseArgs(['--frobnicate'])).toThrow(/unknown option "--frobnicate"/);
  expect(() => parseArgs(['--threshold', 'x'])).toThrow(/--threshold/);
});
