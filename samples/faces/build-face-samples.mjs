#!/usr/bin/env node
// Rebuilds the committed face photos in samples/faces/ from files that ship in an npm package and in a
// Debian package (provenance and licences: samples/LICENSES.md). Tests and CI never run it; they read
// the committed files. Every output is downscaled, re-encoded and stripped of all metadata (the
// face-api demo photos carry camera EXIF with GPS positions, which must not be republished).
//
// Usage: npm ci && apt-get install python3-skimage && node samples/faces/build-face-samples.mjs
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';

const out = path.dirname(fileURLToPath(import.meta.url));
const faceApiDemo = path.join(out, '..', '..', 'node_modules', '@vladmandic', 'face-api', 'demo');
const skimage = '/usr/lib/python3/dist-packages/skimage/data';

const sources = [
  ...[1, 2, 3, 4, 5, 6].map((i) => ({ name: `group-${i}.jpg`, file: path.join(faceApiDemo, `sample${i}.jpg`), long: 1280 })),
  { name: 'astronaut.jpg', file: path.join(skimage, 'astronaut.png'), long: 512 },
  { name: 'cameraman.jpg', file: path.join(skimage, 'camera.png'), long: 512 },
];

for (const { name, file, long } of sources) {
  // No withMetadata(): sharp writes no EXIF, XMP or ICC unless asked, so GPS and camera data are gone.
  const { data, info } = await sharp(file)
    .autoOrient()
    .resize(long, long, { fit: 'inside', withoutEnlargement: true })
    .toColourspace('srgb')
    .jpeg({ quality: 80, mozjpeg: true })
    .toBuffer({ resolveWithObject: true });
  writeFileSync(path.join(out, name), data);
  console.log(`${name}: ${info.width}x${info.height} ${data.length} bytes`);
}
