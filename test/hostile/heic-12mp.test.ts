/**
 * A 12 MP phone HEIC (the size phones take) decodes and renders every default variant. Its peak RSS
 * against the 512 MB function limit is measured by `npm run bench` (hostile inputs) in a fresh process,
 * because an RSS sample inside the test runner would measure the runner too.
 *
 * Source of the file, in order: a fresh encode with `heif-enc` (libheif-examples) when the machine has
 * it; else the committed `corpus/12mp.heic` (22 KB, 4000×3000, made the same way from the CC0
 * samples/dandelions.jpg); else the test is skipped with a warning (and fails on CI).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { readSample } from '../../scripts/fixtures';
import { loadConfig } from '../../shared/config';
import { SharpImageProcessor } from '../../shared/image/sharp-image-processor';

const CORPUS = join(__dirname, 'corpus', '12mp.heic');
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

test('a 12 MP HEIC renders every default variant, the large one at 2048×1536', async () => {
  const src = await twelveMegapixelHeic();
  if (!src) {
    const msg = 'SKIPPED: no heif-enc and no test/hostile/corpus/12mp.heic: the 12 MP HEIC render check did not run';
    if (process.env.CI === 'true') throw new Error(msg);
    console.warn(`\n\n!!! ${msg} !!!\n`);
    return;
  }
  const config = loadConfig({ PIXELPIPE_AUTH_MODE: 'anonymous' });
  const r = await new SharpImageProcessor().render(readFileSync(src.file), config.variants, config.limits, {
    webpEffort: config.output.webpEffort,
    avifEffort: config.output.avifEffort,
    placeholder: config.output.placeholder,
  });
  expect(r.probe).toMatchObject({ mimeType: 'image/heic', width: 4000, height: 3000 });
  expect(r.outputs).toHaveLength(9);
  expect(r.outputs.find((o) => o.variant === 'large')).toMatchObject({ width: 2048, height: 1536 });
  // The encoders' own output, read back: dimensions and format, not bytes.
  for (const o of r.outputs) {
    const m = await sharp(o.body).metadata();
    expect([m.format === 'heif' ? 'avif' : m.format, m.width, m.height]).toEqual([o.format, o.width, o.height]);
  }
}, 120_000);
