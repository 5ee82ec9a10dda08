/**
 * `npm run bench:oracle` end to end, on one quick bench image at three qualities and on one sample file
 * named with --files: the real renders, scoring and report, so the script cannot rot between the (slow)
 * full runs its figures come from.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { AutoFrontierPoint, RdCurve } from '../../scripts/bench/oracle';
import type { OracleReport } from '../../scripts/bench/oracle-report';

const ROOT = join(__dirname, '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'pixelpipe-oracle-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('bench:oracle measures every default output at each quality, solves the bound and runs the auto search', async () => {
  const out = join(dir, 'oracle.json');
  const args = ['scripts/ts.mjs', 'scripts/bench-oracle.ts', '--quick', '--images', 'jpeg-2mp', '--qualities', '79-81', '--targets', '0.96', '--json', out];
  const { stdout } = await promisify(execFile)(process.execPath, args, { cwd: ROOT, timeout: 110_000, maxBuffer: 16 * 2 ** 20 });
  const saved = JSON.parse(readFileSync(out, 'utf8')) as { curves: RdCurve[]; frontier: Record<string, AutoFrontierPoint[]>; report: OracleReport };

  // The default config: 9 outputs, each measured at q79, q80 and q81.
  expect(saved.curves).toHaveLength(9);
  for (const c of saved.curves) {
    expect(c.output).toMatch(/^jpeg-2mp\//);
    expect(c.points.map((p) => p.quality)).toEqual([79, 80, 81]);
    for (const p of c.points) {
      expect(p.bytes).toBeGreaterThan(0);
      expect(p.ssim).toBeGreaterThan(0.8);
      expect(p.ssim).toBeLessThanOrEqual(1);
    }
  }
  // Fixed q80 is one of the choices, so the oracle never needs more bytes than it; the bound is below.
  const row = saved.report.rows.find((r) => r.image === 'jpeg-2mp')!;
  const q80 = saved.curves.reduce((sum, c) => sum + c.points.find((p) => p.quality === 80)!.bytes, 0);
  expect(row.q80Bytes).toBe(q80);
  expect(row.oracleBytes!).toBeLessThanOrEqual(q80);
  expect(row.oracleBoundBytes!).toBeLessThanOrEqual(row.oracleBytes!);
  expect(row.perOutputBytes!).toBeLessThanOrEqual(q80);

  // The real auto search at the one target asked for, on every output.
  const [point] = saved.frontier['jpeg-2mp'];
  expect(point.target).toBe('ssim:0.96');
  expect(point.outputs).toHaveLength(9);
  for (const o of point.outputs) {
    expect(o.quality).toBeGreaterThanOrEqual(40);
    expect(o.quality).toBeLessThanOrEqual(95);
  }
  expect(point.bytes).toBe(point.outputs.reduce((s, o) => s + o.bytes, 0));
  expect(stdout).toContain('Oracle bound of per-output quality choice');
}, 120_000);

test('bench:oracle --files measures any image, named by its file name', async () => {
  const out = join(dir, 'files.json');
  const args = ['scripts/ts.mjs', 'scripts/bench-oracle.ts', '--files', 'samples/camera-exif.jpg', '--qualities', '80-80', '--targets', '0.95', '--json', out];
  await promisify(execFile)(process.execPath, args, { cwd: ROOT, timeout: 110_000, maxBuffer: 16 * 2 ** 20 });
  const saved = JSON.parse(readFileSync(out, 'utf8')) as { curves: RdCurve[]; frontier: Record<string, AutoFrontierPoint[]> };
  expect(saved.curves).toHaveLength(9);
  expect(saved.curves.every((c) => c.output.startsWith('camera-exif.jpg/') && c.points.length === 1)).toBe(true);
  expect(saved.frontier['camera-exif.jpg'].map((p) => p.target)).toEqual(['ssim:0.95']);
}, 120_000);
