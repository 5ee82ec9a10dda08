/** Tables of the oracle bound (bench/oracle.ts): per image and over all images. */
import { oracleMinBytes, oraclePerOutput, type AutoFrontierPoint, type OracleChoice, type RdCurve } from './oracle';
import { round } from './stats';

/** One image's (or all images') figures against fixed quality 80. */
export interface OracleRow {
  image: string;
  outputs: number;
  q80Bytes: number;
  q80MeanSsim: number;
  /** Equal-weight mean SSIM ≥ q80's: achievable bytes (shortfalls rounded up) and the lower bound (rounded down). */
  oracleBytes?: number;
  oracleBoundBytes?: number;
  oracleMeanSsim?: number;
  /** Every output's SSIM ≥ its own q80 SSIM. */
  perOutputBytes?: number;
  /** Pixel-weighted mean SSIM ≥ q80's (pixel-weighted). */
  pixelWeightedBytes?: number;
  /** The real auto search: the fewest bytes among the swept targets whose mean SSIM ≥ q80's. */
  autoBestTarget?: string;
  autoBestBytes?: number;
  /** The chosen qualities of the equal-weight oracle, by output. */
  oracleQualities: Record<string, number>;
}

/** Everything the tables print. */
export interface OracleReport {
  rows: OracleRow[];
  frontier: Array<{ image: string; target: string; bytes: number; meanSsim: number; q80Bytes: number; q80MeanSsim: number }>;
}

function at80(c: RdCurve): { bytes: number; ssim: number } {
  const p = c.points.find((x) => x.quality === 80);
  if (!p) throw new Error(`${c.output}: no point at quality 80`);
  return p;
}

function row(image: string, curves: RdCurve[], auto: AutoFrontierPoint[][]): OracleRow {
  const base = curves.map(at80);
  const q80Bytes = base.reduce((a, p) => a + p.bytes, 0);
  const q80MeanSsim = base.reduce((a, p) => a + p.ssim, 0) / base.length;
  const up: OracleChoice | undefined = oracleMinBytes(curves, q80MeanSsim, { round: 'up' });
  const down = oracleMinBytes(curves, q80MeanSsim, { round: 'down' });
  const per = oraclePerOutput(
    curves,
    base.map((p) => p.ssim),
  );
  const weights = curves.map((c) => c.pixels);
  const wMean = base.reduce((a, p, i) => a + p.ssim * weights[i], 0) / weights.reduce((a, b) => a + b, 0);
  const pw = oracleMinBytes(curves, wMean, { round: 'up', weights });
  // Auto over several images: the same target on every image (what one deployment's setting gives).
  let autoBest: { target: string; bytes: number } | undefined;
  if (auto.length) {
    for (let t = 0; t < auto[0].length; t++) {
      const pts = auto.map((a) => a[t]);
      const outs = pts.flatMap((p) => p.outputs);
      const mean = outs.reduce((a, o) => a + o.ssim, 0) / outs.length;
      const bytes = outs.reduce((a, o) => a + o.bytes, 0);
      if (mean >= q80MeanSsim && (!autoBest || bytes < autoBest.bytes)) autoBest = { target: pts[0].target, bytes };
    }
  }
  const oracleQualities: Record<string, number> = {};
  up?.picks.forEach((p, i) => (oracleQualities[curves[i].output] = p.quality));
  return {
    image,
    outputs: curves.length,
    q80Bytes,
    q80MeanSsim: round(q80MeanSsim, 5),
    oracleBytes: up?.bytes,
    oracleBoundBytes: down?.bytes,
    oracleMeanSsim: up ? round(up.meanSsim, 5) : undefined,
    perOutputBytes: per?.bytes,
    pixelWeightedBytes: pw?.bytes,
    autoBestTarget: autoBest?.target,
    autoBestBytes: autoBest?.bytes,
    oracleQualities,
  };
}

/** Oracle and auto figures per image, then over all images together. */
export function oracleReport(curves: RdCurve[], frontier: Record<string, AutoFrontierPoint[]>, images: string[]): OracleReport {
  const rows = images.map((img) =>
    row(
      img,
      curves.filter((c) => c.output.startsWith(`${img}/`)),
      frontier[img] ? [frontier[img]] : [],
    ),
  );
  if (images.length > 1)
    rows.push(
      row(
        'all',
        curves,
        images.filter((i) => frontier[i]).map((i) => frontier[i]),
      ),
    );
  const front: OracleReport['frontier'] = [];
  for (const img of images) {
    const r = rows.find((x) => x.image === img)!;
    for (const p of frontier[img] ?? [])
      front.push({ image: img, target: p.target, bytes: p.bytes, meanSsim: p.meanSsim, q80Bytes: r.q80Bytes, q80MeanSsim: r.q80MeanSsim });
  }
  return { rows, frontier: front };
}

const pct = (a: number | undefined, b: number): string => (a === undefined ? 'n/a' : `${a <= b ? '−' : '+'}${Math.abs(round((100 * (a - b)) / b, 1))} %`);

/** Markdown of {@link oracleReport}. */
export function renderOracleMarkdown(r: OracleReport): string {
  let md =
    '### Oracle bound of per-output quality choice at mean SSIM ≥ fixed q80\n\n' +
    '| image | outputs | q80 bytes | q80 mean SSIM | oracle bytes (bound) | oracle vs q80 | per-output ≥ own q80 | pixel-weighted | best auto target | auto vs q80 |\n' +
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |\n';
  for (const x of r.rows) {
    md += `| ${x.image} | ${x.outputs} | ${x.q80Bytes} | ${x.q80MeanSsim} | ${x.oracleBytes ?? 'n/a'} (${x.oracleBoundBytes ?? 'n/a'}) | ${pct(x.oracleBytes, x.q80Bytes)} | ${pct(x.perOutputBytes, x.q80Bytes)} | ${pct(x.pixelWeightedBytes, x.q80Bytes)} | ${x.autoBestTarget ?? 'none'} | ${pct(x.autoBestBytes, x.q80Bytes)} |\n`;
  }
  md +=
    '\n### quality: "auto" at a sweep of targets against fixed q80\n\n| image | target | bytes vs q80 | mean SSIM | q80 mean SSIM |\n| --- | --- | ---: | ---: | ---: |\n';
  for (const f of r.frontier) md += `| ${f.image} | ${f.target} | ${pct(f.bytes, f.q80Bytes)} | ${f.meanSsim} | ${f.q80MeanSsim} |\n`;
  md += '\n### Oracle qualities (equal-weight mean)\n\n';
  for (const x of r.rows.filter((y) => y.image !== 'all' || r.rows.length === 1)) {
    md += `- ${x.image}: ${Object.entries(x.oracleQualities)
      .map(([k, q]) => `${k.slice(k.indexOf('/') + 1)} q${q}`)
      .join(', ')}\n`;
  }
  const all = r.rows.find((y) => y.image === 'all');
  if (all) {
    md += `- all (one joint choice): ${Object.entries(all.oracleQualities)
      .map(([k, q]) => `${k} q${q}`)
      .join(', ')}\n`;
  }
  return md;
}
