#!/usr/bin/env node
// Decodes a HEIC file with the `heic-decode` npm package (libheif compiled to
// WASM; sharp's prebuilt libvips has no HEVC decoder) and prints size + timings.
// Usage: node scripts/check-heic.mjs [file.heic] [repeats]
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import decode from 'heic-decode';
import sharp from 'sharp';

const here = path.dirname(fileURLToPath(import.meta.url));
const file = process.argv[2] ?? path.join(here, '..', 'samples', 'phone.heic');
const repeats = Number(process.argv[3] ?? 3);
const buffer = readFileSync(file);

for (let i = 0; i < repeats; i++) {
  const t0 = performance.now();
  const { width, height, data } = await decode({ buffer });
  const t1 = performance.now();
  // Hand the RGBA pixels to sharp, as the pipeline would.
  const jpeg = await sharp(Buffer.from(data.buffer, data.byteOffset, data.byteLength), {
    raw: { width, height, channels: 4 },
  })
    .jpeg({ quality: 80 })
    .toBuffer();
  const t2 = performance.now();
  console.log(
    `${path.basename(file)} (${buffer.length} B): ${width}x${height}, rgba ${data.length} B; ` +
      `decode ${(t1 - t0).toFixed(0)} ms${i === 0 ? ' (includes WASM init)' : ''}, ` +
      `sharp->jpeg ${(t2 - t1).toFixed(0)} ms (${jpeg.length} B)`,
  );
}
