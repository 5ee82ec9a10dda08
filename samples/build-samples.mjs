#!/usr/bin/env node
// Rebuilds the committed sample photos in samples/ from the original Debian
// package files. Provenance and licences: see samples/LICENSES.md.
//
// This script is NOT needed by tests or CI (they only read the committed
// files). It documents, reproducibly, what was changed in each photo.
//
// Usage (as root on Debian 12 "bookworm"):
//   apt-get download lomiri-wallpapers-16.04 mate-backgrounds
//   mkdir -p /tmp/debs && for f in *.deb; do dpkg-deb -x "$f" /tmp/debs; done
//   apt-get install -y libheif-examples     # heif-enc (x265 HEVC encoder), only for phone.heic
//   node samples/build-samples.mjs /tmp/debs
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';

const root = process.argv[2];
if (!root) {
  console.error('usage: node samples/build-samples.mjs <dir where the .deb files were extracted>');
  process.exit(2);
}
const out = path.dirname(fileURLToPath(import.meta.url));
const lomiri = path.join(root, 'usr/share/backgrounds');
const mate = path.join(root, 'usr/share/backgrounds/mate/nature');

// mozjpeg-like settings but baseline (sequential) scan, as cameras write.
// (sharp's mozjpeg:true preset forces progressive.)
const BASELINE = { quality: 80, trellisQuantisation: true, overshootDeringing: true, quantisationTable: 3 };

async function write(name, pipeline) {
  const { data, info } = await pipeline.toBuffer({ resolveWithObject: true });
  writeFileSync(path.join(out, name), data);
  console.log(`${name}: ${info.width}x${info.height} ${data.length} bytes`);
  return data;
}

// 1. Landscape, CC-BY-4.0. Downscale only. (mozjpeg => progressive scan.)
await write(
  'landscape.jpg',
  sharp(path.join(lomiri, 'aitzgorri_by_Aitzol_Berasategi.jpg'))
    .resize({ width: 1600 })
    .jpeg({ quality: 80, mozjpeg: true }),
);

// 2. Dandelions, CC0-1.0. Downscale only (lots of fine detail: a "hard" JPEG).
await write(
  'dandelions.jpg',
  sharp(path.join(lomiri, 'seeding_by_Clements_Engelhardt.jpg'))
    .resize({ width: 1600 })
    .jpeg({ quality: 78, mozjpeg: true }),
);

// 3. Portrait photo stored the way phone cameras store it: pixels in sensor
//    (landscape) order + EXIF Orientation=6. Displayed upright it is 1000x1500.
// (Two pipelines: sharp applies rotate() before resize() within one pipeline.)
await write(
  'portrait-exif6.jpg',
  sharp(
    await sharp(path.join(lomiri, 'friends_by_Aitzol_Berasategi.jpg'))
      .resize(1000, 1500, { fit: 'cover' })
      .png()
      .toBuffer(),
  )
    .rotate(270) // 90° counter-clockwise; Orientation 6 = "rotate 90° CW to display"
    .jpeg(BASELINE)
    // withExif({IFD0:{Orientation}}) is overridden by libvips' own orientation
    // field, so the tag is set via withMetadata (which also embeds sRGB ICC).
    .withMetadata({ orientation: 6 }),
);

// 4. Real digital-camera EXIF (Canon EOS 400D: Make, Model, exposure, dates,
//    embedded thumbnail) kept from the original file. GPL-2+.
await write(
  'camera-exif.jpg',
  sharp(path.join(mate, 'Storm.jpg'))
    .resize({ width: 1600 })
    .jpeg(BASELINE)
    .keepExif(),
);

// 5. Photo with SYNTHETIC GPS EXIF (none of the packaged photos has GPS).
const gpsExif = (lat, latRef, lon, lonRef) => ({
  IFD0: { Software: 'pixelpipe sample (synthetic GPS)' },
  IFD2: { DateTimeOriginal: '2018:06:01 12:00:00' },
  IFD3: { GPSVersionID: '2 2 0 0', GPSLatitudeRef: latRef, GPSLatitude: lat, GPSLongitudeRef: lonRef, GPSLongitude: lon },
});
await write(
  'fig-gps.jpg',
  sharp(path.join(lomiri, 'Picture_0B_by_freespace.jpg'))
    .resize({ width: 1400 })
    .jpeg(BASELINE)
    .withExif(gpsExif('52/1 30/1 5868/100', 'N', '13/1 22/1 3972/100', 'E')),
);

// 6. Truncated + garbage-tailed JPEG (< 20 KB): valid SOI/APPn/DQT/SOF/DHT/SOS,
//    scan data cut at 60 %, followed by 2 KB of deterministic junk, no EOI.
{
  const full = await sharp(path.join(lomiri, 'aitzgorri_by_Aitzol_Berasategi.jpg'))
    .resize({ width: 480 })
    .jpeg({ quality: 75 })
    .toBuffer();
  const head = full.subarray(0, Math.floor(full.length * 0.6));
  const junk = Buffer.alloc(2048);
  let s = 0x9e3779b9;
  for (let i = 0; i < junk.length; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    junk[i] = s & 0xff;
  }
  const corrupt = Buffer.concat([head, junk]);
  writeFileSync(path.join(out, 'corrupt.jpg'), corrupt);
  console.log(`corrupt.jpg: ${corrupt.length} bytes`);
}

// 7. phone.heic: HEVC-coded HEIF, 1200x900, with synthetic GPS EXIF, like a
//    phone photo. sharp's prebuilt libvips cannot encode HEVC, so heif-enc
//    (Debian libheif-examples, x265) does it from an intermediate JPEG; heif-enc
//    copies the JPEG's EXIF into the HEIF.
{
  const tmp = mkdtempSync(path.join(tmpdir(), 'pixelpipe-heic-'));
  try {
    const jpg = path.join(tmp, 'in.jpg');
    await sharp(path.join(lomiri, 'picosdeeuropa_by_Aitzol_Berasategi.jpg'))
      .resize(1200, 900)
      .jpeg({ quality: 95 })
      .withExif(gpsExif('43/1 11/1 5040/100', 'N', '4/1 50/1 3000/100', 'W'))
      .toFile(jpg);
    const heic = path.join(out, 'phone.heic');
    execFileSync('heif-enc', ['-q', '40', '-p', 'chroma=420', '-o', heic, jpg], { stdio: 'inherit' });
    console.log(`phone.heic: ${readFileSync(heic).length} bytes`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
