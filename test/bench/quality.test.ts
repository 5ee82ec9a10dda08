/**
 * pixelpipe's outputs must be at least as good as the Firebase-style baseline's, variant by variant:
 * SSIM against a lossless reference resize no more than 0.005 below the baseline's, and no more than 2%
 * more bytes at equal quality. "At equal quality" matters: the baseline re-encodes every output three
 * times, which smooths WebPs into smaller, visibly worse files, so at the same encoder setting pixelpipe
 * spends more bytes on more detail. Its bytes are therefore taken at the baseline's SSIM (same pixels,
 * same encoder, quality setting interpolated); where the two SSIMs already match, that is its own size.
 */
import '../../scripts/bench/root';
import { readSample, photoJpeg, pngWithAlpha } from '../../scripts/fixtures';
import { benchSetup } from '../../scripts/bench/pipelines';
import { compareQuality, type QualityRow } from '../../scripts/bench/quality';

const SSIM_SLACK = 0.005;
const BYTES_SLACK = 1.02;

const cases: Array<[string, () => Promise<Buffer>]> = [
  ['6 MP camera JPEG (3000×2000, grain)', () => photoJpeg(6)],
  ['real phone photo, EXIF orientation 6', async () => readSample('portrait-exif6.jpg')],
  ['PNG with alpha (2400×1600)', () => pngWithAlpha(2400, 1600)],
];

function describeRow(r: QualityRow): string {
  return (
    `${r.variant}.${r.format}: SSIM ${r.pixelpipeSsim} vs ${r.baselineSsim}; ` +
    `bytes ${r.pixelpipeBytes} vs ${r.baselineBytes}, at equal SSIM ${r.pixelpipeBytesAtBaselineSsim} (q${r.qualityAtBaselineSsim})`
  );
}

describe('output quality: pixelpipe vs the Firebase-style baseline', () => {
  const setup = benchSetup();

  test.each(cases)(
    '%s',
    async (_name, make) => {
      const rows = await compareQuality(setup, await make());
      // Every lossy output of the default config is checked.
      expect(rows.map((r) => `${r.variant}.${r.format}`).sort()).toEqual(setup.config.variants.flatMap((v) => v.formats.map((f) => `${v.name}.${f}`)).sort());
      const problems: string[] = [];
      for (const r of rows) {
        if (r.pixelpipeSsim < r.baselineSsim - SSIM_SLACK) problems.push(`lower quality: ${describeRow(r)}`);
        if (r.pixelpipeBytesAtBaselineSsim > r.baselineBytes * BYTES_SLACK) problems.push(`more bytes at equal quality: ${describeRow(r)}`);
      }
      expect(problems).toEqual([]);
    },
    120_000,
  );
});
