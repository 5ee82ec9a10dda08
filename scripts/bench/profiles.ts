/**
 * The profiles section of `npm run bench`: the whole process use case (read, profile lookup, render,
 * writes, manifest) on an in-memory store, for the same photo processed
 *
 * - `variables`: configured the way every deployment was before profiles existed (only today's
 *   variables, no `PIXELPIPE_PROFILES`, no pinned metadata: the object of an old upload or a backfill);
 * - `pinned default`: with three named profiles configured and the object pinned to `default` in its
 *   metadata, as every upload is now.
 *
 * Both run the same variants, so any difference is what the profile machinery (the pinned-profile
 * lookup, the read cap over all profiles, the recipe fingerprint) costs on the default profile. Rounds
 * alternate the order; CPU-time medians on one pinned core.
 */
import { readFileSync } from 'node:fs';
import { loadConfig, type PixelpipeConfig } from '../../shared/config';
import { SharpImageProcessor } from '../../shared/image/sharp-image-processor';
import { manifestKey, originalKey } from '../../shared/keys';
import { createLogger } from '../../shared/logger';
import { PROFILE_METADATA } from '../../shared/profiles';
import { FixedClock } from '../../shared/testing/fakes';
import { testInvocation } from '../../shared/testing/invocation';
import { MemoryObjectStore } from '../../shared/testing/memory-object-store';
import { processImage, type ProcessDeps } from '../../shared/usecases/process-image';
import type { TargetCheck } from './report';
import { median, round, timed, type Timing } from './stats';

/** The worker task: `file` is the photo, processed `rounds` times per configuration after one warm-up each. */
export interface ProfilesTask {
  kind: 'profiles';
  file: string;
  image: string;
  rounds: number;
}

export interface ProfilesResult {
  kind: 'profiles';
  image: string;
  rounds: number;
  /** Medians per configuration. */
  variables: Timing;
  pinnedDefault: Timing;
  /** Median of the per-round ratios pinned ÷ variables, CPU time. */
  ratioCpu: number;
  /** Every round's pinned ÷ variables CPU-time ratio, in round order: the spread says how far the median can be trusted. */
  roundRatiosCpu: number[];
  /** Outputs written per image in each configuration (the same work, or the comparison is void). */
  outputs: { variables: string[]; pinnedDefault: string[] };
}

export type ProfilesReport = ProfilesResult;

/** Three named profiles beside the default, as the README's example configures them. */
const NAMED_PROFILES = JSON.stringify({
  avatar: {
    variants: [{ name: 'avatar', width: 256, height: 256, fit: 'cover' }],
    maxInputBytes: 5_242_880,
    allowedTypes: ['image/jpeg', 'image/png'],
  },
  product: {
    variants: [
      { name: 'full', width: 2400 },
      { name: 'card', width: 600 },
    ],
    maxInputPixels: 80_000_000,
  },
  chat: { maxInputBytes: 10_485_760 },
});

interface Case {
  deps: ProcessDeps;
  metadata: Record<string, string>;
  seq: number;
}

function makeCase(env: Record<string, string>, metadata: Record<string, string>): Case {
  const config: PixelpipeConfig = loadConfig({ PIXELPIPE_AUTH_MODE: 'anonymous', ...env });
  return {
    deps: { store: new MemoryObjectStore(), processor: new SharpImageProcessor(), clock: new FixedClock(), config },
    metadata,
    seq: 0,
  };
}

const silent = createLogger({ sink: () => undefined });

/** One image through the use case under a fresh id (a repeat of the same id would be a duplicate). */
async function processOnce(c: Case, body: Buffer): Promise<{ timing: Timing; outputs: string[] }> {
  const { config, store } = c.deps;
  const id = `bench${String(++c.seq).padStart(8, '0')}`;
  const key = originalKey(config.layout, 'bench', id);
  const info = await store.put(config.buckets.originals, key, body, { contentType: 'image/jpeg', metadata: c.metadata });
  const { value, ...timing } = await timed(() =>
    processImage(c.deps, testInvocation({ logger: silent, deadlineMs: 600_000 }), { bucket: info.bucket, key, generation: info.generation }),
  );
  if (value.status !== 'processed') throw new Error(`profiles bench: ${id} ended ${value.status}`);
  // Drop what was written, so the store does not grow over the rounds.
  for (const v of value.manifest.variants) await store.delete(config.buckets.variants, v.key);
  await store.delete(config.buckets.variants, manifestKey(config.layout, id));
  await store.delete(config.buckets.originals, key);
  return { timing, outputs: value.manifest.variants.map((v) => `${v.name}.${v.format} ${v.width}×${v.height}`) };
}

/** Runs in the worker child: alternating rounds of both configurations. */
export async function profilesCost(task: ProfilesTask): Promise<ProfilesResult> {
  const body = readFileSync(task.file);
  const variables = makeCase({}, {});
  const pinned = makeCase({ PIXELPIPE_PROFILES: NAMED_PROFILES }, { [PROFILE_METADATA]: 'default' });
  const first = { variables: (await processOnce(variables, body)).outputs, pinnedDefault: (await processOnce(pinned, body)).outputs };
  const a: Timing[] = [];
  const b: Timing[] = [];
  const ratios: number[] = [];
  for (let r = 0; r < task.rounds; r++) {
    const order = r % 2 === 0 ? [variables, pinned] : [pinned, variables];
    const t = new Map<Case, Timing>();
    for (const c of order) t.set(c, (await processOnce(c, body)).timing);
    a.push(t.get(variables)!);
    b.push(t.get(pinned)!);
    ratios.push(t.get(pinned)!.cpuMs / t.get(variables)!.cpuMs);
  }
  const med = (xs: Timing[]): Timing => ({ wallMs: median(xs.map((x) => x.wallMs)), cpuMs: median(xs.map((x) => x.cpuMs)) });
  return {
    kind: 'profiles',
    image: task.image,
    rounds: task.rounds,
    variables: med(a),
    pinnedDefault: med(b),
    ratioCpu: median(ratios),
    roundRatiosCpu: ratios,
    outputs: first,
  };
}

/** A difference below this is what two identical runs of the same code show here. */
const UNCHANGED = 0.03;

export function profilesTargets(r: ProfilesReport | undefined): TargetCheck[] {
  if (!r) return [];
  const same = r.outputs.variables.join() === r.outputs.pinnedDefault.join();
  // Quick runs (CI) take two rounds of a small photo: too few to judge a 3 % difference.
  const judged = r.image === 'jpeg-12mp';
  return [
    {
      target: `${r.image}: process use case, default profile pinned (3 named profiles configured) ÷ variables only (CPU-time median ratio, 1 vCPU)`,
      limit: `within ±${UNCHANGED * 100} %, same outputs`,
      measured: `${round(r.ratioCpu, 3)}× (${round(r.pinnedDefault.cpuMs)} vs ${round(r.variables.cpuMs)} ms CPU, ${r.rounds} rounds)${same ? '' : '; outputs differ'}${judged ? '' : '; quick run, not judged'}`,
      pass: !same ? false : judged ? Math.abs(r.ratioCpu - 1) <= UNCHANGED : null,
    },
  ];
}

export function renderProfiles(r: ProfilesReport): string {
  return [
    `#### Profiles: the default profile's processing speed, ${r.image} (whole process use case, in-memory store, 1 vCPU)`,
    '',
    '| configuration | CPU ms | wall ms | outputs |',
    '| --- | --- | --- | --- |',
    `| variables only (no PIXELPIPE_PROFILES, unpinned object) | ${round(r.variables.cpuMs)} | ${round(r.variables.wallMs)} | ${r.outputs.variables.length} |`,
    `| 3 named profiles configured, object pinned to default | ${round(r.pinnedDefault.cpuMs)} | ${round(r.pinnedDefault.wallMs)} | ${r.outputs.pinnedDefault.length} |`,
    '',
    `Pinned ÷ variables: ${round(r.ratioCpu, 3)}× (median of ${r.rounds} per-round CPU-time ratios, alternating order; ` +
      `rounds ${round(Math.min(...r.roundRatiosCpu), 3)}–${round(Math.max(...r.roundRatiosCpu), 3)}×; ratio of the medians ${round(r.pinnedDefault.cpuMs / r.variables.cpuMs, 3)}×).`,
    '',
  ].join('\n');
}
