/**
 * Single-bucket mode: originals, variants, manifests and attempt counters share one bucket, and the
 * trigger fires for EVERY object written to it (like an unfiltered bucket notification). Outputs
 * must never be processed as originals, or one upload would fan out forever.
 */
import sharp from 'sharp';
import { smallJpeg } from '../../scripts/fixtures';
import type { ProcessOutcome } from '../../shared/usecases/process-image';
import { harness, imageId, within } from './harness';

const N = 100;

test(`single bucket: ${N} uploads → exactly ${N} processings, every output-triggered event ignored`, async () => {
  const h = harness({
    PIXELPIPE_ORIGINALS_BUCKET: 'one-bucket',
    PIXELPIPE_VARIANTS_BUCKET: 'one-bucket',
  });
  const variantFiles = h.config.variants.reduce((n, v) => n + v.formats.length, 0);
  // + the manifest, + the processing lease written twice (taken, released)
  const outputsPerImage = variantFiles + 1 + 2;
  expect(h.config.singleBucket).toBe(true);
  const jpeg = await smallJpeg(64, 48);
  const outcomes: Array<{ key: string; outcome: ProcessOutcome }> = [];
  const crashes: unknown[] = [];
  const pending: Array<Promise<void>> = [];
  let triggers = 0;
  h.store.onPut = (o) => {
    triggers++;
    pending.push(
      h.process({ bucket: o.bucket, key: o.key, generation: o.generation }).then(
        ({ outcome }) => void outcomes.push({ key: o.key, outcome }),
        (err: unknown) => void crashes.push(err),
      ),
    );
  };

  const t0 = performance.now();
  await within(
    60_000,
    (async () => {
      for (let i = 1; i <= N; i++) await h.upload(jpeg, { id: imageId(i) });
      // Triggers keep arriving while earlier ones write outputs: drain until quiet.
      while (pending.length) await pending.shift();
    })(),
    'draining the trigger cascade',
  );
  const ms = performance.now() - t0;

  expect(crashes).toEqual([]);
  const processed = outcomes.filter((o) => o.outcome.status === 'processed');
  const ignored = outcomes.filter((o) => o.outcome.status === 'ignored');
  expect(processed).toHaveLength(N);
  expect(new Set(processed.map((o) => o.key)).size).toBe(N);
  expect(processed.every((o) => o.key.startsWith('originals/'))).toBe(true);
  // Per image: every variant, the manifest and each lease write fire the trigger once, and each is ignored.
  expect(ignored).toHaveLength(N * outputsPerImage);
  expect(ignored.every((o) => o.outcome.status === 'ignored' && o.outcome.reason === 'outside_originals')).toBe(true);
  expect(outcomes).toHaveLength(triggers);
  expect(triggers).toBe(N + N * outputsPerImage);

  const keys = h.store.keys('one-bucket');
  expect(keys.filter((k) => k.startsWith('manifests/'))).toHaveLength(N);
  expect(keys.filter((k) => k.startsWith('variants/'))).toHaveLength(N * variantFiles);
  // No attempt counters (nothing failed); one released lease per image, which the processor cannot delete.
  const state = keys.filter((k) => k.startsWith('state/'));
  expect(state).toHaveLength(N);
  expect(state.every((k) => k.endsWith('.lease'))).toBe(true);
  const sample = await h.store.get('one-bucket', `variants/${imageId(N)}/thumb.webp`);
  expect(await sharp(sample.body).metadata()).toMatchObject({ width: 64, height: 48 }); // never enlarged
  process.stdout.write(`[hostile] single bucket: ${N} originals, ${triggers} triggers, ${processed.length} processed in ${Math.round(ms)} ms\n`);
}, 90_000);
