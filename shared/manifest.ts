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
  metrics: z
    .object({
      decodeMs: z.number().nonnegative(),
      encodeMs: z.record(z.string(), z.number().nonnegative()),
      bytesIn: z.number().int().nonnegative(),
      bytesOut: z.number().int().nonnegative(),
      peakRssBytes: z.number().int().nonnegative(),
    })
    .optional(),
});

export type Manifest = z.infer<typeof manifestSchema>;
export type VariantEntry = z.infer<typeof variantEntrySchema>;

/** Validates an untrusted manifest (e.g. read back from storage). */
export function parseManifest(input: unknown): Manifest {
  return manifestSchema.parse(input);
}
