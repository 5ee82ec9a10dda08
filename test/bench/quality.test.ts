/**
 * Dominance: every output of pixelpipe's default config, and of the 8-output equal-work set,
 * should be at least as good as the Firebase-style baseline's (luma SSIM against a lossless reference
 * resize of the full original) AND no larger, output by output, at pixelpipe's default settings.
 *
 * Not every output gets there yet (docs/performance.md, "Dominance"): JPEG rungs resized from the
 * 2048 px decode can trail the baseline's one-step resize by a few 1e-4 of SSIM, and a few WebPs are
 * ~1 % larger. The test pins that gap: no output may be worse on both axes, a near miss must stay within
 * {@link NEAR_MISS}, and at most {@link MAX_NEAR_MISSES} outputs per image may miss at all. Tighten
 * both as the gap closes.
 */
import '../../scripts/bench/root';
import { readSample, photoJpeg, pngWithAlpha } from '../../scripts/fixtures';
import { benchSetup } from '../../scripts/bench/pipelines';
import { compareQuality, EQUAL_WORK_VARIANTS, type QualityRow } from '../../scripts/bench/quality';

/** A near miss: SSIM at most this far below the baseline, or bytes at most this ratio above it (not both). */
const NEAR_MISS = { ssim: 0.001, bytes: 1.02 };
/** Per image, over both sets (17 outputs; the 480 and 1024 px rungs appear in both). The 6 MP photo has 4 today (session 10; it had 6). */
const MAX_NEAR_MISSES = 4;

const cases: Array<[string, () => Promise<Buffer>]> = [
  ['6 MP camera JPEG (3000×2000, grain)', () => photoJpeg(6)],
  ['real phone photo, EXIF orientation 6', () => Promise.resolve(readSample('portrait-exif6.jpg'))],
  ['PNG with alpha (2400×1600)', () => pngWithAlpha(2400, 1600)],
];

function describeRow(r: QualityRow): string {
  return `${r.variant}.${r.format}: SSIM ${r.pixelpipeSsim} vs ${r.baselineSsim}; bytes ${r.pixelpipeBytes} vs ${r.baselineBytes}`;
}

describe('dominance at default settings: pixelpipe vs the Firebase-style baseline, output by output', () => {
  const setup = benchSetup();

  test.each(cases)(
    '%s: every output of the default config and the equal-work set smaller and better, bar a few near misses',
    async (_name, make) => {
      const input = await make();
      const misses: QualityRow[] = [];
      for (const variants of [setup.config.variants, EQUAL_WORK_VARIANTS]) {
        const rows = await compareQuality(setup, input, variants);
        // Every lossy output is checked.
        expect(rows.map((r) => `${r.variant}.${r.format}`).sort()).toEqual(variants.flatMap((v) => v.formats.map((f) => `${v.name}.${f}`)).sort());
        misses.push(...rows.filter((r) => !r.dominates));
      }
      const lowerSsim = (r: QualityRow) => r.pixelpipeSsim < r.baselineSsim;
      const moreBytes = (r: QualityRow) => r.pixelpipeBytes > r.baselineBytes;
      const tooFar = misses.filter(
        (r) => (lowerSsim(r) && moreBytes(r)) || r.pixelpipeSsim < r.baselineSsim - NEAR_MISS.ssim || r.pixelpipeBytes > r.baselineBytes * NEAR_MISS.bytes,
      );
      expect(tooFar.map(describeRow)).toEqual([]);
      expect(misses.length).toBeLessThanOrEqual(MAX_NEAR_MISSES);
    },
    240_000,
  );
});
