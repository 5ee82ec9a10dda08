/**
 * A 12 MP phone HEIC must decode and render within the 512 MB function memory limit.
 *
 * Source of the file, in order: a fresh encode with `heif-enc` (libheif-examples) when the machine has
 * it; else the committed `corpus/12mp.heic` (22 KB, 4000×3000, made the same way from the CC0
 * samples/dandelions.jpg); else the test is skipped with a warning (and fails on CI).
 * The render runs in a child process so the peak RSS is that of a fresh instance.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { readSample } from '../../scripts/fixtures';

const ROOT = join(__dirname, '..', '..');
const CORPUS = join(__dirname, 'corpus', '12mp.heic');
const FUNCTION_LIMIT = 512 * 1024 * 1024;
const hasHeifEnc = !spawnSync('heif-enc', ['--version'], { stdio: 'ignore', timeout: 10_000 }).error;

let dir: string | undefined;
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function twelveMegapixelHeic(): Promise<{ file: string; how: string } | null> {
  if (hasHeifEnc) {
    dir = mkdtempSync(join(tmpdir(), 'pixelpipe-heic-'));
    const jpg = join(dir, '12mp.jpg');
    const heic = join(dir, '12mp.heic');
    await sharp(readSample('dandelions.jpg')).resize(4000, 3000, { fit: 'fill' }).blur(3).jpeg({ quality: 85 }).toFile(jpg);
    const r = spawnSync('heif-enc', ['-q', '10', '-p', 'preset=ultrafast', '-o', heic, jpg], { encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0) throw new Error(`heif-enc failed: ${r.stderr || r.error}`);
    return { file: heic, how: 'generated with heif-enc' };
  }
  if (existsSync(CORPUS)) return { file: CORPUS, how: 'committed corpus file' };
  return null;
}

test('a 12 MP HEIC renders every default variant with peak RSS under the 512 MB function limit', async () => {
  const src = await twelveMegapixelHeic();
  if (!src) {
    const msg = 'SKIPPED: no heif-enc and no test/hostile/corpus/12mp.heic: the 12 MP HEIC memory check did not run';
    if (process.env.CI === 'true') throw new Error(msg);
    console.warn(`\n\n!!! ${msg} !!!\n`);
    return;
  }
  const child = spawnSync(process.execPath, [join(ROOT, 'scripts', 'ts.mjs'), join(__dirname, 'support', 'measure-render.ts'), src.file], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 90_000,
  });
  if (child.status !== 0) throw new Error(`measure-render failed (${child.status ?? child.signal}): ${child.stderr}`);
  const m = JSON.parse(child.stdout.trim().split('\n').pop()!) as {
    probe: { mimeType: string; width: number; height: number };
    ms: number;
    decodeMs: number;
    rssBefore: number;
    peakRss: number;
    outputs: Array<{ variant: string; format: string; width: number; height: number }>;
  };
  expect(m.probe).toEqual({ mimeType: 'image/heic', width: 4000, height: 3000 });
  expect(m.outputs).toHaveLength(9);
  expect(m.outputs.find((o) => o.variant === 'large')).toMatchObject({ width: 2048, height: 1536 });
  expect(m.peakRss).toBeLessThan(FUNCTION_LIMIT);
  process.stdout.write(
    `[hostile] 12 MP HEIC (${src.how}): render ${m.ms} ms (decode ${m.decodeMs} ms), RSS before ${(m.rssBefore / 1048576).toFixed(0)} MiB, peak ${(m.peakRss / 1048576).toFixed(0)} MiB\n`,
  );
}, 120_000);
