import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_QUALITY, loadConfig } from '../../shared/config';
import { SharpImageProcessor } from '../../shared/image/sharp-image-processor';
import { parseManifest } from '../../shared/manifest';
import { FixedClock } from '../../shared/testing/fakes';
import { MemoryObjectStore } from '../../shared/testing/memory-object-store';
import { testInvocation } from '../../shared/testing/invocation';
import { processImage } from '../../shared/usecases/process-image';

const photo = readFileSync(join(__dirname, '..', '..', 'samples', 'landscape.jpg'));
const ID = '00000000-0000-4000-8000-00000000abcd';
const KEY = `originals/alice/${ID}`;

test('the manifest records each output’s encoder quality, and for "auto" outputs the score reached', async () => {
  const variants = [
    { name: 'fixed', width: 320, formats: ['webp', 'jpeg'] },
    { name: 'auto', width: 320, formats: ['webp', 'jpeg', 'png'], quality: 'auto' },
  ];
  const config = loadConfig({
    PIXELPIPE_AUTH_MODE: 'anonymous',
    PIXELPIPE_WEBP_EFFORT: '2',
    PIXELPIPE_VARIANTS: JSON.stringify(variants),
    PIXELPIPE_QUALITY_TARGET: 'ssim:0.95',
  });
  const store = new MemoryObjectStore();
  const info = await store.put(config.buckets.originals, KEY, photo, { contentType: 'image/jpeg' });
  const out = await processImage({ store, processor: new SharpImageProcessor(), clock: new FixedClock(), config }, testInvocation(), {
    bucket: info.bucket,
    key: KEY,
    generation: info.generation,
  });
  expect(out.status).toBe('processed');
  if (out.status !== 'processed') return;
  const m = parseManifest(out.manifest);
  const entry = (name: string, format: string) => m.variants.find((v) => v.name === name && v.format === format)!;
  expect(entry('fixed', 'webp')).toMatchObject({ quality: DEFAULT_QUALITY.webp });
  expect(entry('fixed', 'webp')).not.toHaveProperty('score');
  expect(entry('fixed', 'jpeg')).toMatchObject({ quality: DEFAULT_QUALITY.jpeg });
  for (const f of ['webp', 'jpeg']) {
    const e = entry('auto', f);
    expect(e.quality).toEqual(expect.any(Number));
    expect(e.score).toBeGreaterThanOrEqual(0.95);
  }
  // Lossless outputs have neither.
  expect(entry('auto', 'png')).not.toHaveProperty('quality');
  expect(entry('auto', 'png')).not.toHaveProperty('score');
});
