/**
 * Hostile inputs measured in fresh processes: how long a refusal takes and how much memory it costs,
 * and the peak RSS of a 12 MP HEIC render against the function's memory. The unit tests prove the
 * refusals happen before decoding (deterministically); the time and memory figures live here, because
 * an in-process RSS sample inside a test runner measures the runner as much as the code.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { billionLaughsSvg, decompressionBombPng } from '../fixtures';
import type { Instance } from './child';
import { runWorker } from './child';
import { fixtureDir } from './images';
import type { TargetCheck } from './report';
import type { RssResult } from './worker';

const MB = 1024 * 1024;

/** One hostile input, what it must end as, and its bounds. */
interface HostileSpec {
  id: string;
  label: string;
  file: string;
  env?: Record<string, string>;
  /** The worker's outcome string this input must produce ('ok' or 'refused: <code>'). */
  outcome: string;
  /** Refusals: the warm refusal must take at most this long. */
  maxMs?: number;
  /** Refusals: peak RSS may exceed the idle process by at most this much. */
  maxGrowthBytes?: number;
  /** Renders: the process's peak RSS must stay under this. */
  maxPeakBytes?: number;
}

/** One measured hostile input (part of the `--json` report). */
export interface HostileRow {
  id: string;
  label: string;
  outcome: string;
  expectedOutcome: string;
  /** Wall time of the measured (warm) run. */
  ms: number;
  idleRssBytes: number;
  maxRssBytes: number;
  maxMs?: number;
  maxGrowthBytes?: number;
  maxPeakBytes?: number;
}

async function specs(root: string): Promise<HostileSpec[]> {
  const dir = fixtureDir(root);
  const bomb = join(dir, 'bomb-30000x30000.png');
  if (!existsSync(bomb)) writeFileSync(bomb, await decompressionBombPng(30000, 30000));
  const laughs = join(dir, 'billion-laughs.svg');
  if (!existsSync(laughs)) writeFileSync(laughs, billionLaughsSvg());
  return [
    {
      id: 'png-bomb',
      label: 'PNG declaring 30000×30000 (~110 KB)',
      file: bomb,
      outcome: 'refused: too_many_pixels',
      maxMs: 1000,
      maxGrowthBytes: 50 * MB,
    },
    {
      id: 'svg-laughs',
      label: 'SVG "billion laughs" (SVG input enabled)',
      file: laughs,
      env: { PIXELPIPE_ALLOWED_TYPES: 'image/jpeg,image/png,image/svg+xml' },
      outcome: 'refused: svg_unsafe',
      maxMs: 1000,
      maxGrowthBytes: 50 * MB,
    },
    {
      id: 'heic-12mp',
      label: '12 MP HEIC (test/hostile/corpus/12mp.heic), every default variant',
      file: join(root, 'test', 'hostile', 'corpus', '12mp.heic'),
      outcome: 'ok',
      maxPeakBytes: 512 * MB,
    },
  ];
}

/** Runs every hostile input in its own 1-vCPU child; refusals twice, so the second is measured warm. */
export async function measureHostile(root: string, instance: Instance, log: (msg: string) => void): Promise<HostileRow[]> {
  const rows: HostileRow[] = [];
  for (const s of await specs(root)) {
    log(`hostile: ${s.id}`);
    const repeat = s.outcome === 'ok' ? 1 : 2;
    const r = await runWorker<RssResult>({ kind: 'rss', file: s.file, method: 'pixelpipe', repeat, env: s.env }, instance);
    rows.push({
      id: s.id,
      label: s.label,
      outcome: r.outcome,
      expectedOutcome: s.outcome,
      ms: r.ms[r.ms.length - 1],
      idleRssBytes: r.idleRssBytes,
      maxRssBytes: r.maxRssBytes,
      maxMs: s.maxMs,
      maxGrowthBytes: s.maxGrowthBytes,
      maxPeakBytes: s.maxPeakBytes,
    });
  }
  return rows;
}

/** One target per hostile input: the right outcome within its time and memory bounds. */
export function hostileTargets(rows: HostileRow[] | undefined): TargetCheck[] {
  return (rows ?? []).map((h) => {
    const growth = h.maxRssBytes - h.idleRssBytes;
    const limits = [
      h.expectedOutcome,
      h.maxMs === undefined ? '' : `≤ ${h.maxMs} ms`,
      h.maxGrowthBytes === undefined ? '' : `RSS growth ≤ ${Math.round(h.maxGrowthBytes / MB)} MB`,
      h.maxPeakBytes === undefined ? '' : `peak RSS ≤ ${Math.round(h.maxPeakBytes / MB)} MB`,
    ];
    const pass =
      h.outcome === h.expectedOutcome &&
      (h.maxMs === undefined || h.ms <= h.maxMs) &&
      (h.maxGrowthBytes === undefined || growth <= h.maxGrowthBytes) &&
      (h.maxPeakBytes === undefined || h.maxRssBytes <= h.maxPeakBytes);
    return {
      target: `hostile input: ${h.label}`,
      limit: limits.filter(Boolean).join(', '),
      measured: `${h.outcome} in ${h.ms.toFixed(1)} ms, peak RSS ${Math.round(h.maxRssBytes / MB)} MB (idle ${Math.round(h.idleRssBytes / MB)} MB)`,
      pass,
    };
  });
}
