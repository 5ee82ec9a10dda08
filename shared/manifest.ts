/**
 * The manifest: one JSON document per image, written after every variant, describing the source,
 * every output and the outcome. It is the `data` of the completion event, so its schema is part of
 * the public contract (see `shared/schema/completion-event.v1.schema.json`).
 */
import { z } from 'zod';
import { IMAGE_REASON_CODES } from './errors';

export const MANIFEST_SCHEMA_VERSION = 1;

export const variantEntrySchema = z.object({
  name: z.string(),
  format: z.enum(['jpeg', 'webp', 'avif', 'png', 'gif']),
  key: z.string(),
  contentType: z.string(),
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  bytes: z.number().int().nonnegative(),
  /** Encoder quality used (lossy formats). */
  quality: z.number().int().min(1).max(100).optional(),
  /** Variants with `quality: "auto"`: the achieved score (luma SSIM against the output's own pixels, 0..1). */
  score: z.number().min(-1).max(1).optional(),
  url: z.string().optional(),
  /**
   * `true`: not the image but the neutral stand-in of a blocked one (`PIXELPIPE_BLOCKED_PLACEHOLDER`), in
   * a `failed` / `content_blocked` manifest. Absent on every real variant.
   */
  placeholder: z.literal(true).optional(),
  /** Cropped (`cover`) variants: the region of the oriented original shown, in its pixels. */
  crop: z
    .object({
      left: z.number().int().nonnegative(),
      top: z.number().int().nonnegative(),
      width: z.number().int().positive(),
      height: z.number().int().positive(),
    })
    .optional(),
});

/** A box as fractions (0–1) of the oriented original's width and height. */
const boxSchema = z.object({
  left: z.number().min(0).max(1),
  top: z.number().min(0).max(1),
  width: z.number().min(0).max(1),
  height: z.number().min(0).max(1),
});

/**
 * What the analyzer saw (`shared/usecases/analyze-image.ts`). Only the analyses that were asked for are
 * present. `moderation.verdict` is the policy's outcome: `blocked` when `PIXELPIPE_MODERATION=block` withheld
 * the image, `unavailable` when moderation was asked for but did not happen (never read it as `ok`).
 * `error`: the analysis failed and was optional, so the image was processed without it (fallback crops).
 */
export const analysisSchema = z.object({
  analyzer: z.string(),
  ms: z.number().nonnegative(),
  faces: z
    .array(
      z.object({
        box: boxSchema,
        score: z.number().min(0).max(1),
        /**
         * `PIXELPIPE_FACE_DESCRIPTORS=true` only: the face's 128-d embedding (Euclidean distance: smaller is
         * more alike). Biometric data: in the private manifest only, never in the completion event.
         */
        descriptor: z.array(z.number()).length(128).optional(),
      }),
    )
    .optional(),
  /**
   * How many faces carry a descriptor in the manifest (descriptors on). The completion event keeps this
   * count and drops the descriptors themselves: a subscriber that needs them reads the manifest.
   */
  faceDescriptors: z.number().int().nonnegative().optional(),
  labels: z.array(z.object({ name: z.string(), score: z.number().min(0).max(1) })).optional(),
  moderation: z
    .object({
      verdict: z.enum(['ok', 'flagged', 'blocked', 'unavailable']),
      categories: z.array(z.object({ name: z.string(), score: z.number().min(0).max(1) })),
    })
    .optional(),
  /** Requested analyses this analyzer could not perform. */
  unavailable: z.array(z.string()).optional(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
});

export const manifestSchema = z.object({
  schemaVersion: z.literal(MANIFEST_SCHEMA_VERSION),
  id: z.string(),
  owner: z.string(),
  status: z.enum(['processed', 'failed']),
  reason: z.object({ code: z.enum(IMAGE_REASON_CODES), message: z.string() }).optional(),
  source: z.object({
    bucket: z.string(),
    key: z.string(),
    generation: z.string(),
    contentType: z.string().optional(),
    bytes: z.number().int().nonnegative(),
    width: z.number().int().positive().optional(),
    height: z.number().int().positive().optional(),
    format: z.string().optional(),
    filename: z.string().optional(),
  }),
  variants: z.array(variantEntrySchema),
  placeholder: z.object({ type: z.literal('thumbhash'), value: z.string(), dataUrl: z.string() }).nullable(),
  bucket: z.string(),
  traceId: z.string().optional(),
  attempts: z.number().int().positive(),
  createdAt: z.string(),
  durationMs: z.number().nonnegative(),
  /** The profile the image was processed with (absent in manifests from before profiles: `default`). */
  profile: z.string().optional(),
  /** Fingerprint of that profile's recipe when it was processed (shared/profiles.ts `recipeOf`); `backfill --stale` compares it. */
  recipe: z.string().optional(),
  metrics: z
    .object({
      decodeMs: z.number().nonnegative(),
      encodeMs: z.record(z.string(), z.number().nonnegative()),
      bytesIn: z.number().int().nonnegative(),
      bytesOut: z.number().int().nonnegative(),
      peakRssBytes: z.number().int().nonnegative(),
    })
    .optional(),
  analysis: analysisSchema.optional(),
});

export type Manifest = z.infer<typeof manifestSchema>;
export type VariantEntry = z.infer<typeof variantEntrySchema>;
export type ManifestAnalysis = z.infer<typeof analysisSchema>;

/** Validates an untrusted manifest (e.g. read back from storage). */
export function parseManifest(input: unknown): Manifest {
  return manifestSchema.parse(input);
}
