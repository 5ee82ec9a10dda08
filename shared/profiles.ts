/**
 * Profiles at run time: which profile an image gets, the byte cap a read needs before that is known,
 * and the recipe fingerprint that tells a stale manifest from a current one.
 */
import { createHash } from 'node:crypto';
import { DEFAULT_PROFILE_NAME, type PixelpipeConfig, type Profile } from './config';

/** The metadata key (`x-goog-meta-…` / `x-amz-meta-…`) that pins an original's profile. */
export const PROFILE_METADATA = 'pixelpipe-profile';

/**
 * Bumped whenever the processor's output for the same recipe changes (encoder options, resampling,
 * colour handling, the placeholder), so `backfill --stale` regenerates images rendered by an older processor.
 * 2: the ThumbHash placeholder is computed from 32 px instead of 100 px (a slightly different hash), and
 * JPEG outputs above 2 MP of originals that are not JPEG or HEIF get mozjpeg's scan search (fewer bytes), and
 * those of JPEG/HEIF originals at quality ≥ 90 are plain progressive (less CPU).
 */
export const PROCESSOR_OUTPUT_VERSION = 2;

/**
 * Bumped whenever the `quality: "auto"` search picks differently for the same pixels and target. It
 * enters only the recipes of profiles with an "auto" variant, so a search change makes only their
 * images stale. 2: searches start from the next smaller output's choice and sample fewer rows. 3: samples of
 * ≈ 50 000 px in 32-row bands (was ≈ 100 000 px in 64-row bands).
 */
export const AUTO_QUALITY_VERSION = 3;

/** Every configured profile name, `default` first. */
export function profileNames(config: PixelpipeConfig): string[] {
  return [DEFAULT_PROFILE_NAME, ...Object.keys(config.profiles)];
}

/**
 * The profile called `name`, or `undefined` when none is configured under it. `default` is built from
 * `config.variants` and `config.limits`, so a caller that adjusted those (the CLI's `--config`) is obeyed.
 */
export function findProfile(config: PixelpipeConfig, name: string): Profile | undefined {
  if (name === DEFAULT_PROFILE_NAME) return { name, variants: config.variants, limits: config.limits };
  return Object.hasOwn(config.profiles, name) ? config.profiles[name] : undefined;
}

/** The profile of an upload or original that names none: `PIXELPIPE_DEFAULT_PROFILE`. */
export function defaultProfile(config: PixelpipeConfig): Profile {
  return findProfile(config, config.defaultProfile) ?? findProfile(config, DEFAULT_PROFILE_NAME)!;
}

/**
 * The profile an original is processed with, from its pinned metadata only (never the key or a client).
 * Absent (objects older than profiles) → the default profile. A name no longer configured → the default
 * profile too, with `unknown` set so the caller can warn: a profile removed from the configuration must
 * not turn the uploads still in flight, or a later backfill, into failures.
 */
export function profileForOriginal(config: PixelpipeConfig, metadata: Record<string, string>): { profile: Profile; unknown?: string } {
  const pinned = metadata[PROFILE_METADATA];
  if (pinned === undefined || pinned === '') return { profile: defaultProfile(config) };
  const found = findProfile(config, pinned);
  return found ? { profile: found } : { profile: defaultProfile(config), unknown: pinned };
}

/**
 * The byte cap of the one read of an original, taken before its profile is known (the metadata
 * arrives with the body): the largest over all profiles. The profile's own cap is checked right after.
 */
export function readCapBytes(config: PixelpipeConfig): number {
  return Math.max(config.limits.maxInputBytes, ...Object.values(config.profiles).map((p) => p.limits.maxInputBytes));
}

/**
 * The recipe fingerprint: a hash of everything that decides a profile's outputs, the normalised variant
 * specs (parsed, defaults filled in, sorted by name, keys sorted), the encoder settings and limits that
 * change pixels or formats, the analysis settings that change outputs or the manifest, and
 * {@link PROCESSOR_OUTPUT_VERSION}. Limits that only accept or refuse an
 * input (bytes, pixels, types) are left out: changing them changes no existing output.
 */
export function recipeOf(config: PixelpipeConfig, profile: Profile): string {
  const usesAuto = profile.variants.some((v) => v.quality === 'auto');
  const spec = {
    processor: PROCESSOR_OUTPUT_VERSION,
    variants: [...profile.variants].sort((a, b) => (a.name < b.name ? -1 : 1)),
    encoder: {
      webpEffort: config.output.webpEffort,
      avifEffort: config.output.avifEffort,
      placeholder: config.output.placeholder,
      // Only where a variant aims for it: otherwise changing the target changes no output.
      ...(usesAuto ? { qualityTarget: config.output.qualityTarget, autoQuality: AUTO_QUALITY_VERSION } : {}),
    },
    frames: { animated: profile.limits.animated ?? true, maxAnimatedPixels: profile.limits.maxAnimatedPixels ?? 25_000_000 },
    analysis: analysisRecipe(config, profile),
  };
  return `r${PROCESSOR_OUTPUT_VERSION}-${createHash('sha256').update(canonicalJson(spec)).digest('hex').slice(0, 24)}`;
}

/**
 * The analysis settings that change what an image's outputs and manifest hold: the analyzer (its faces
 * place `faces` crops), what is asked of it, the moderation verdict's rule and what a blocked image
 * serves, and face descriptors. `undefined` when nothing is analysed, so a deployment without analysis
 * keeps the fingerprints it had before analysis existed. `required` and `budgetMs` are left out: they
 * decide retries and time, not the result of an analysis that completes.
 */
function analysisRecipe(config: PixelpipeConfig, profile: Profile): Record<string, unknown> | undefined {
  const a = { ...config.analysis, ...profile.analysis };
  const facesCrop = profile.variants.some((v) => v.position === 'faces');
  if (a.analyzer === 'none' || (!a.analyses.length && !facesCrop)) return undefined;
  const moderating = a.moderation !== 'off';
  return {
    analyzer: a.analyzer,
    analyses: [...a.analyses].sort(),
    moderation: a.moderation,
    ...(moderating ? { moderationMinConfidence: a.moderationMinConfidence } : {}),
    ...(a.moderation === 'block' ? { blockedPlaceholder: a.blockedPlaceholder } : {}),
    ...(a.faceDescriptors ? { faceDescriptors: true } : {}),
  };
}

/** JSON with object keys sorted at every level and `undefined` members dropped, so key order cannot change a hash. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
