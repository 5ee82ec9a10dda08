/**
 * `npm run bench:oracle -- [--quick] [--images a,b | --files x.jpg,y.png] [--qualities 30-95] [--targets 0.9,0.97] [--json file] [--from a.json,b.json]`: the oracle bound of
 * per-output quality choice against fixed quality 80 and the real `quality: "auto"` search at a sweep of
 * targets, on the bench photos and the default config (slow: one render per quality; see bench/oracle.ts).
 * `--quick` takes the quick bench's small images instead (what the test suite runs it on); `--files` any
 * images, named by file name (e.g. the real photos in samples/, which carry no synthetic grain).
 */
import './bench/root';
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { benchImages } from './bench/images';
import { autoFrontier, rdCurves, type AutoFrontierPoint, type RdCurve } from './bench/oracle';
import { oracleReport, renderOracleMarkdown } from './bench/oracle-report';
import { benchSetup } from './bench/pipelines';
import { REPO_ROOT } from './bench/root';

const DEFAULT_TARGETS = [0.9, 0.92, 0.94, 0.95, 0.96, 0.97, 0.98];

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const arg = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const [lo, hi] = (arg('--qualities') ?? '30-95').split('-').map(Number);
  const qualities = Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
  if (!qualities.includes(80)) throw new Error('--qualities must include 80 (the baseline)');
  const targets = arg('--targets')?.split(',').map(Number) ?? DEFAULT_TARGETS;
  if (targets.some((t) => !(t > 0 && t < 1))) throw new Error('--targets takes SSIM values between 0 and 1, e.g. 0.94,0.97');
  const json = arg('--json');
  const from = arg('--from');
  if (from) {
    // Several saved runs (e.g. images measured in parallel) are merged into one report.
    const saved = from.split(',').map((f) => JSON.parse(readFileSync(f, 'utf8')) as { curves: RdCurve[]; frontier: Record<string, AutoFrontierPoint[]> });
    const frontier = Object.assign({}, ...saved.map((x) => x.frontier)) as Record<string, AutoFrontierPoint[]>;
    process.stdout.write(
      renderOracleMarkdown(
        oracleReport(
          saved.flatMap((x) => x.curves),
          frontier,
          Object.keys(frontier),
        ),
      ),
    );
    return;
  }
  const ids = arg('--images')?.split(',');
  const log = (m: string): void => void process.stderr.write(`${new Date().toISOString()} ${m}\n`);
  const files = arg('--files')?.split(',');
  const images = files
    ? files.map((f) => ({ id: basename(f), file: resolve(f) }))
    : (await benchImages(REPO_ROOT, argv.includes('--quick'), log)).filter((i) => i.id !== 'heic' && (!ids || ids.includes(i.id)));
  const setup = benchSetup();
  const curves: RdCurve[] = [];
  const frontier: Record<string, AutoFrontierPoint[]> = {};
  for (const img of images) {
    const input = readFileSync(img.file);
    log(`${img.id}: curves at q${lo}..${hi}`);
    curves.push(...(await rdCurves(setup, input, img.id, qualities)));
    log(`${img.id}: auto at ${targets.join(', ')}`);
    frontier[img.id] = await autoFrontier(
      setup,
      input,
      img.id,
      targets.map((value) => ({ metric: 'ssim' as const, value })),
    );
  }
  // The measurements first: the report can be rebuilt from them with --from.
  if (json) writeFileSync(json, JSON.stringify({ qualities: [lo, hi], curves, frontier }));
  const report = oracleReport(
    curves,
    frontier,
    images.map((i) => i.id),
  );
  if (json) writeFileSync(json, JSON.stringify({ qualities: [lo, hi], curves, frontier, report }));
  process.stdout.write(`${renderOracleMarkdown(report)}\n`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
