/**
 * `node scripts/ts.mjs scripts/contact-sheet.ts [out.jpg]`: the README's contact sheet of cover crops.
 * For each reference photo, one row: the photo with the detected face boxes, then a square and a 9:16
 * thumbnail each for `position` centre, attention and faces, rendered by the real processor with the
 * embedded analyzer, exactly as the process function would render them.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp, { type OverlayOptions } from 'sharp';
import { FaceApiImageAnalyzer, faceApiAssetDirs } from '../functions/embedded/face-api-image-analyzer';
import { loadConfig, parseVariants } from '../shared/config';
import { SharpImageProcessor } from '../shared/image/sharp-image-processor';
import type { AnalysisResult } from '../shared/ports';
import { repoRoot } from './lib/root';

const ROOT = repoRoot(__dirname);
const PHOTOS = ['faces/group-1.jpg', 'faces/group-4.jpg', 'faces/group-5.jpg', 'faces/astronaut.jpg'];
const POSITIONS = ['centre', 'attention', 'faces'] as const;
const SQUARE = 200;
const TALL = { width: 113, height: 200 };
const GAP = 8;
const LABEL = 22;

function label(text: string, width: number): Buffer {
  return Buffer.from(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${LABEL}"><text x="4" y="16" font-family="sans-serif" font-size="14" fill="#ddd">${text}</text></svg>`,
  );
}

async function main(): Promise<void> {
  const out = process.argv[2] ?? join(ROOT, 'docs', 'contact-sheet.jpg');
  const processor = new SharpImageProcessor();
  const analyzer = new FaceApiImageAnalyzer(faceApiAssetDirs(undefined, existsSync));
  const { limits } = loadConfig({ PIXELPIPE_AUTH_MODE: 'anonymous' });
  const variants = parseVariants(
    POSITIONS.flatMap((position) => [
      { name: `sq-${position}`, width: SQUARE, height: SQUARE, fit: 'cover', position, formats: ['png'] },
      { name: `tall-${position}`, ...TALL, fit: 'cover', position, formats: ['png'] },
    ]),
  );
  const previewW = 300;
  const cellW = SQUARE + GAP + TALL.width;
  const rowW = previewW + GAP + POSITIONS.length * (cellW + GAP * 2);
  const rowH = SQUARE + LABEL;
  const layers: OverlayOptions[] = [];
  let top = GAP;
  for (const photo of PHOTOS) {
    const input = readFileSync(join(ROOT, 'samples', photo));
    let analysis: AnalysisResult | null = null;
    const r = await processor.render(input, variants, limits, {
      webpEffort: 2,
      avifEffort: 2,
      placeholder: false,
      analyze: async (pixels) => (analysis = await analyzer.analyze(pixels, ['faces'])),
    });
    const faces = (analysis as AnalysisResult | null)?.faces ?? [];
    // The photo with the detected boxes, scaled into the first column.
    const shown = await sharp(input).autoOrient().resize(previewW, SQUARE, { fit: 'inside' }).toBuffer({ resolveWithObject: true });
    const { width: pw, height: ph } = shown.info;
    const boxes = faces
      .map(
        (f) =>
          `<rect x="${f.box.left * pw}" y="${f.box.top * ph}" width="${f.box.width * pw}" height="${f.box.height * ph}" fill="none" stroke="#0f0" stroke-width="2"/>`,
      )
      .join('');
    const withBoxes = await sharp(shown.data)
      .composite([{ input: Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${pw}" height="${ph}">${boxes}</svg>`) }])
      .png()
      .toBuffer();
    layers.push({ input: withBoxes, left: GAP, top: top + LABEL });
    layers.push({ input: label(`${photo.split('/').pop()}: ${faces.length} face${faces.length === 1 ? '' : 's'}`, previewW), left: GAP, top });
    POSITIONS.forEach((position, i) => {
      const left = GAP + previewW + GAP + i * (cellW + GAP * 2);
      layers.push({ input: label(`position: ${position}`, cellW), left, top });
      const sq = r.outputs.find((o) => o.variant === `sq-${position}`)!;
      const tall = r.outputs.find((o) => o.variant === `tall-${position}`)!;
      layers.push({ input: sq.body, left, top: top + LABEL });
      layers.push({ input: tall.body, left: left + SQUARE + GAP, top: top + LABEL });
    });
    top += rowH + GAP;
  }
  await sharp({ create: { width: rowW + GAP, height: top, channels: 3, background: '#222' } })
    .composite(layers)
    .jpeg({ quality: 82, mozjpeg: true })
    .toFile(out);
  process.stdout.write(`${out}: ${PHOTOS.length} photos × ${POSITIONS.join(', ')}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
