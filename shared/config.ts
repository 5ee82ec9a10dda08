/**
 * Configuration: parsed and validated once per cold start by {@link loadConfig}. The core receives the
 * resulting object and never reads `process.env` itself, so tests and the CLI can build configs freely.
 */
import { z } from 'zod';
import { ConfigError } from './errors';
import { ANALYSIS_KINDS, type AnalysisKind } from './ports';

export const FITS = ['cover', 'contain', 'inside', 'outside', 'fill'] as const;
export const OUTPUT_FORMATS = ['jpeg', 'webp', 'avif', 'png', 'original'] as const;
export type Fit = (typeof FITS)[number];
/**
 * Where a `cover` variant is cut: `centre` (the default), sharp's saliency strategies `attention` and
 * `entropy`, or `faces` (the smallest crop holding every detected face; `attention` when none was found).
 * Absent means `centre`.
 */
export const POSITIONS = ['centre', 'attention', 'entropy', 'faces'] as const;
export type Position = (typeof POSITIONS)[number];
export type ImageFormat = (typeof OUTPUT_FORMATS)[number];

/** Input types the pipeline can decode (HEIC/HEIF through the WebAssembly decoder). */
export const KNOWN_INPUT_TYPES = [
  'image/jpeg',
  'image/png',
  'image/webp',
  'image/gif',
  'image/avif',
  'image/heic',
  'image/heif',
  'image/tiff',
  'image/svg+xml',
] as const;

export type Filter =
  | { type: 'grayscale' }
  | { type: 'sharpen' }
  | { type: 'sepia' }
  | { type: 'negate' }
  | { type: 'blur'; sigma: number }
  | { type: 'tint'; color: string }
  | { type: 'modulate'; brightness: number; saturation: number; hue: number };

const COLOR = /^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$/;

/** Parses `grayscale`, `blur(2)`, `tint(#ff8800)`, `modulate(1.1,0.8,30)` and friends. */
export function parseFilter(text: string): Filter {
  const m = /^\s*([a-z]+)\s*(?:\(([^)]*)\))?\s*$/.exec(text);
  if (!m) throw new Error(`unrecognised filter "${text}"`);
  const name = m[1];
  const args =
    m[2] === undefined
      ? []
      : m[2]
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== '');
  const num = (s: string | undefined, lo: number, hi: number, what: string): number => {
    const n = Number(s);
    if (s === undefined || !Number.isFinite(n) || n < lo || n > hi) throw new Error(`${name}: ${what} must be a number in [${lo}, ${hi}]`);
    return n;
  };
  const noArgs = (): void => {
    if (args.length) throw new Error(`${name} takes no arguments`);
  };
  switch (name) {
    case 'grayscale':
    case 'greyscale':
      noArgs();
      return { type: 'grayscale' };
    case 'sharpen':
    case 'sepia':
    case 'negate':
      noArgs();
      return { type: name };
    case 'blur':
      if (args.length !== 1) throw new Error('blur takes one argument: blur(sigma)');
      return { type: 'blur', sigma: num(args[0], 0.3, 1000, 'sigma') };
    case 'tint':
      if (args.length !== 1 || !COLOR.test(args[0])) throw new Error('tint takes one #rgb or #rrggbb colour: tint(#ff8800)');
      return { type: 'tint', color: args[0] };
    case 'modulate':
      if (args.length !== 3) throw new Error('modulate takes three arguments: modulate(brightness,saturation,hue)');
      return {
        type: 'modulate',
        brightness: num(args[0], 0, 10, 'brightness'),
        saturation: num(args[1], 0, 10, 'saturation'),
        hue: num(args[2], -360, 360, 'hue'),
      };
    default:
      throw new Error(`unknown filter "${name}" (expected grayscale, blur(sigma), sharpen, sepia, negate, tint(color) or modulate(b,s,h))`);
  }
}

const filterSchema = z.string().transform((s, ctx) => {
  try {
    return parseFilter(s);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
    return z.NEVER;
  }
});

const variantSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, 'lower-case letters, digits, "-" or "_", at most 32'),
    width: z.number().int().min(1).max(8192).optional(),
    height: z.number().int().min(1).max(8192).optional(),
    fit: z.enum(FITS).default('inside'),
    // Optional rather than defaulted, so configurations (and their parsed form) without it stay exactly as they were.
    position: z.enum(POSITIONS).optional(),
    formats: z.array(z.enum(OUTPUT_FORMATS)).min(1).default(['webp', 'jpeg']),
    /** Encoder quality 1–100, `"auto"` (lowest quality meeting `PIXELPIPE_QUALITY_TARGET`), or absent: {@link DEFAULT_QUALITY}. */
    quality: z.union([z.number().int().min(1).max(100), z.literal('auto')]).optional(),
    withoutEnlargement: z.boolean().default(true),
    filter: filterSchema.optional(),
    background: z.string().regex(COLOR, '#rgb or #rrggbb').default('#ffffff'),
  })
  .strict()
  .refine((v) => v.width !== undefined || v.height !== undefined, 'needs a width or a height')
  .refine((v) => !(v.fit === 'cover' || v.fit === 'contain' || v.fit === 'fill') || (v.width !== undefined && v.height !== undefined), {
    message: 'fit cover, contain and fill need both width and height',
  })
  .refine((v) => v.position === undefined || v.position === 'centre' || v.fit === 'cover', {
    message: 'position only applies to fit cover (the other fits do not crop)',
  });

export type VariantSpec = z.output<typeof variantSchema>;

const variantsSchema = z
  .array(variantSchema)
  .min(1)
  .max(32)
  .refine((vs) => new Set(vs.map((v) => v.name)).size === vs.length, 'variant names must be unique');

/**
 * Encoder quality of a variant that sets none, per format. Not one number for all: libjpeg's and
 * libwebp's scales differ. WebP 74 (at effort 2; the processor
 * adjusts it for alpha and very large outputs, see `defaultQuality`) and progressive JPEG 80 give
 * smaller files with higher SSIM than the Firebase extension's q80 outputs on the bench photos
 * (docs/performance.md, "Dominance").
 */
export const DEFAULT_QUALITY = { jpeg: 80, webp: 74, avif: 80 } as const;

/** What `quality: "auto"` aims for: the lowest encoder quality whose output scores at least `value`. */
export interface QualityTarget {
  /** Luma SSIM of the encoded output against the pixels it was encoded from (shared/image/ssim.ts). */
  metric: 'ssim';
  value: number;
}

/** Parses `ssim:0.985` (the `PIXELPIPE_QUALITY_TARGET` syntax). */
export function parseQualityTarget(text: string): QualityTarget {
  const m = /^\s*ssim\s*:\s*([0-9.]+)\s*$/.exec(text);
  const value = m ? Number(m[1]) : Number.NaN;
  if (!m || !(value >= 0.5 && value < 1)) throw new Error(`expected "ssim:<value>" with 0.5 <= value < 1, e.g. ssim:0.985 (got "${text}")`);
  return { metric: 'ssim', value };
}

const qualityTargetSchema = z.string().transform((s, ctx) => {
  try {
    return parseQualityTarget(s);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
    return z.NEVER;
  }
});

/** The variants used when `PIXELPIPE_VARIANTS` is not set. */
export const DEFAULT_VARIANTS: z.input<typeof variantsSchema> = [
  { name: 'thumb', width: 200, height: 200, fit: 'cover', formats: ['webp', 'jpeg'] },
  { name: 'small', width: 480, formats: ['webp', 'jpeg'] },
  { name: 'medium', width: 1024, formats: ['webp', 'jpeg'] },
  { name: 'large', width: 2048, formats: ['webp', 'jpeg'] },
  { name: 'medium-gray', width: 1024, formats: ['jpeg'], filter: 'grayscale' },
];

const prefix = z
  .string()
  .regex(/^(?:[A-Za-z0-9._-]+\/)+$/, 'a key prefix such as "originals/" (segments of letters, digits, ".", "_" or "-", each ending in "/")');
const bucketName = z.string().regex(/^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/, 'a bucket name (lower-case letters, digits, ".", "-", "_")');
const intFrom = (lo: number, hi: number) => z.coerce.number().int().min(lo).max(hi);
const bool = z.enum(['true', 'false', '1', '0']).transform((s) => s === 'true' || s === '1');
const csv = z.string().transform((s) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean),
);
const json = <T extends z.ZodTypeAny>(schema: T) =>
  z
    .string()
    .transform((s, ctx) => {
      try {
        return JSON.parse(s) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'is not valid JSON' });
        return z.NEVER;
      }
    })
    .pipe(schema);

/** The colour of `PIXELPIPE_BLOCKED_PLACEHOLDER=neutral`: a mid grey, no brand, no hint of the content. */
export const NEUTRAL_PLACEHOLDER = '#9e9e9e';

/** `none`, `neutral` or a colour, normalised to `none` or `#rrggbb`. */
const blockedPlaceholder = z
  .string()
  .trim()
  .toLowerCase()
  .refine((s) => s === 'none' || s === 'neutral' || COLOR.test(s), 'none, neutral or a #rgb/#rrggbb colour')
  .transform((s) => (s === 'neutral' ? NEUTRAL_PLACEHOLDER : s.length === 4 ? `#${[...s.slice(1)].map((c) => c + c).join('')}` : s));

/** A profile's name: what upload requests send and what the original's `pixelpipe-profile` metadata holds. */
export const PROFILE_NAME = /^[a-z0-9-]{1,32}$/;
/** The profile today's variables (`PIXELPIPE_VARIANTS`, `PIXELPIPE_MAX_INPUT_BYTES`, …) form. */
export const DEFAULT_PROFILE_NAME = 'default';

/**
 * One entry of `PIXELPIPE_PROFILES`. Every field is optional and falls back to the variable of today's
 * `default` profile, so an `avatar` profile can say only what differs (its variants and a 5 MB cap).
 * Per-profile analysis settings go here too, as one more optional field.
 */
const profileSchema = z
  .object({
    variants: variantsSchema.optional(),
    allowedTypes: z.array(z.enum(KNOWN_INPUT_TYPES)).min(1).optional(),
    maxInputBytes: z
      .number()
      .int()
      .min(1)
      .max(1024 * 1024 * 1024)
      .optional(),
    maxInputPixels: z.number().int().min(1).max(1_000_000_000).optional(),
    maxFrames: z.number().int().min(1).max(10_000).optional(),
    animated: z.boolean().optional(),
    maxAnimatedPixels: z.number().int().min(1).max(1_000_000_000).optional(),
    analysis: z
      .object({
        analyses: z
          .array(z.enum(ANALYSIS_KINDS))
          .refine((a) => new Set(a).size === a.length, 'each analysis at most once')
          .optional(),
        moderation: z.enum(['off', 'flag', 'block']).optional(),
        required: z.boolean().optional(),
        blockedPlaceholder: blockedPlaceholder.optional(),
      })
      .strict()
      .optional(),
  })
  .strict();
type ProfileInput = z.output<typeof profileSchema>;

const profilesSchema = z
  .record(z.string().regex(PROFILE_NAME, 'profile names are 1-32 lower-case letters, digits or "-"'), profileSchema)
  .refine((r) => !(DEFAULT_PROFILE_NAME in r), {
    message: `"${DEFAULT_PROFILE_NAME}" is the profile of the PIXELPIPE_VARIANTS and PIXELPIPE_MAX_* variables; set those instead`,
  });

/** Zod reports a bad record key as "Invalid key in record"; the key schema's own message says what is expected. */
function keyMessage(issue: z.core.$ZodIssue): string {
  return issue.code === 'invalid_key' && issue.issues.length ? issue.issues.map((i) => i.message).join('; ') : issue.message;
}

/** `avatar.variants[0].width` for zod's path `['avatar', 'variants', 0, 'width']`. */
function fieldPath(path: ReadonlyArray<PropertyKey>): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i ? '.' : ''}${String(p)}`)).join('');
}

/**
 * Where analysis runs: `none`, `embedded` (face-api in the function), Google Cloud `vision`, Amazon
 * `rekognition`. Deployed functions default to `none`; the CLI and the dev stack default to `embedded`.
 */
export const ANALYZERS = ['none', 'embedded', 'vision', 'rekognition'] as const;
export type AnalyzerName = (typeof ANALYZERS)[number];

/**
 * What each analyzer can really do; configuration refuses to ask for more, so a result can never be
 * an absent analysis passed off as a clean one. Kept here (not read from the adapters) because the core
 * validates configuration without loading any adapter.
 */
export const ANALYZER_CAPABILITIES: Record<AnalyzerName, readonly AnalysisKind[]> = {
  none: [],
  embedded: ['faces'],
  vision: ['faces', 'labels', 'moderation'],
  rekognition: ['faces', 'labels', 'moderation'],
};

/**
 * Analysis settings. `analyses` is what is asked of the analyzer on every image (moderation is in it
 * whenever `moderation` is not `off`); `faces` is also asked for on its own when a variant uses
 * `position: faces`. `budgetMs` bounds the whole analysis (retries included) within one invocation.
 */
export interface AnalysisConfig {
  analyzer: AnalyzerName;
  analyses: AnalysisKind[];
  /** `flag`: processed, verdict recorded; `block`: a flagged image gets no variants and a `content_blocked` manifest. */
  moderation: 'off' | 'flag' | 'block';
  /** `true`: a failed analysis is retried like a storage fault instead of processing without it. */
  required: boolean;
  budgetMs: number;
  /**
   * Face embeddings (biometric data): each face in the manifest gets its 128-d descriptor. Embedded analyzer
   * only (refused with any other); never in the completion event, only in the private manifest.
   */
  faceDescriptors: boolean;
  /** Rekognition `DetectModerationLabels` `MinConfidence` (percent): a moderation label at or above it flags the image. */
  moderationMinConfidence: number;
  /**
   * What a blocked image's variant URLs serve: `none` (nothing is written: they 404), or a flat image of
   * this `#rrggbb` colour at every variant's size and format (`PIXELPIPE_BLOCKED_PLACEHOLDER=neutral` is
   * {@link NEUTRAL_PLACEHOLDER}). Never derived from the blocked pixels.
   */
  blockedPlaceholder: string;
}

/**
 * Every environment variable the functions read, with its schema and default.
 * Kept as a table so `loadConfig` can name the variable in an error and the README can list them.
 */
const ENV = {
  PIXELPIPE_ORIGINALS_BUCKET: bucketName.default('pixelpipe-originals'),
  PIXELPIPE_VARIANTS_BUCKET: bucketName.default('pixelpipe-variants'),
  PIXELPIPE_ORIGINALS_PREFIX: prefix.default('originals/'),
  PIXELPIPE_VARIANTS_PREFIX: prefix.default('variants/'),
  PIXELPIPE_MANIFESTS_PREFIX: prefix.default('manifests/'),
  PIXELPIPE_STATE_PREFIX: prefix.default('state/'),
  PIXELPIPE_TOPIC: z.string().min(1).default('pixelpipe-events'),
  PIXELPIPE_VARIANTS: json(variantsSchema).optional(),
  PIXELPIPE_PROFILES: json(profilesSchema).optional(),
  PIXELPIPE_DEFAULT_PROFILE: z.string().regex(PROFILE_NAME, 'a profile name: 1-32 lower-case letters, digits or "-"').default(DEFAULT_PROFILE_NAME),
  PIXELPIPE_MAX_INPUT_BYTES: intFrom(1, 1024 * 1024 * 1024).default(32 * 1024 * 1024),
  PIXELPIPE_MAX_INPUT_PIXELS: intFrom(1, 1_000_000_000).default(50_000_000),
  PIXELPIPE_MAX_FRAMES: intFrom(1, 10_000).default(100),
  PIXELPIPE_ANIMATED: bool.default(true),
  PIXELPIPE_MAX_ANIMATED_PIXELS: intFrom(1, 1_000_000_000).default(25_000_000),
  PIXELPIPE_FAIL_ON: z.enum(['truncated', 'error', 'warning']).default('warning'),
  PIXELPIPE_ALLOWED_TYPES: csv
    .pipe(z.array(z.enum(KNOWN_INPUT_TYPES)).min(1))
    .default(['image/jpeg', 'image/png', 'image/webp', 'image/gif', 'image/avif', 'image/heic', 'image/heif']),
  PIXELPIPE_UPLOAD_EXPIRY_SECONDS: intFrom(30, 900).default(600),
  PIXELPIPE_CORS_ORIGINS: csv
    .pipe(z.array(z.string().regex(/^https?:\/\/[^/*\s]+$/, 'each origin like https://app.example.com (no "*", no path)')))
    .default([]),
  PIXELPIPE_CACHE_CONTROL: z.string().min(1).default('public, max-age=31536000, immutable'),
  PIXELPIPE_WEBP_EFFORT: intFrom(0, 6).default(2),
  PIXELPIPE_AVIF_EFFORT: intFrom(0, 9).default(4),
  PIXELPIPE_PLACEHOLDER: bool.default(true),
  PIXELPIPE_QUALITY_TARGET: qualityTargetSchema.default({ metric: 'ssim', value: 0.97 }),
  PIXELPIPE_MAX_ATTEMPTS: intFrom(1, 100).default(5),
  PIXELPIPE_MAX_EVENT_AGE_SECONDS: intFrom(60, 7 * 24 * 3600).default(6 * 3600),
  PIXELPIPE_FUNCTION_TIMEOUT_SECONDS: intFrom(1, 3600).default(60),
  PIXELPIPE_DEADLINE_RESERVE_MS: intFrom(0, 600_000).default(5000),
  PIXELPIPE_AUTH_MODE: z.enum(['jwt', 'anonymous']).default('jwt'),
  PIXELPIPE_JWKS_URL: z.url().optional(),
  PIXELPIPE_JWT_ISSUER: z.string().min(1).optional(),
  PIXELPIPE_JWT_AUDIENCE: z.string().min(1).optional(),
  PIXELPIPE_JWT_MAX_AGE_SECONDS: intFrom(60, 31 * 24 * 3600).default(24 * 3600),
  PIXELPIPE_STATUS_URL_BASE: z.url().optional(),
  PIXELPIPE_PUBLIC_BASE_URL: z.url().optional(),
  PIXELPIPE_SOURCE: z.string().min(1).default('//pixelpipe'),
  PIXELPIPE_LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
  PIXELPIPE_ANALYZER: z.enum(ANALYZERS).default('none'),
  // No default here: it depends on the analyzer (see `loadConfig`).
  PIXELPIPE_ANALYSES: csv.pipe(z.array(z.enum(ANALYSIS_KINDS)).refine((a) => new Set(a).size === a.length, 'each analysis at most once')).optional(),
  PIXELPIPE_MODERATION: z.enum(['off', 'flag', 'block']).default('off'),
  PIXELPIPE_ANALYSIS_REQUIRED: bool.default(false),
  PIXELPIPE_ANALYSIS_BUDGET_MS: intFrom(50, 600_000).default(5000),
  // Rekognition's own default when the parameter is omitted (see functions/aws/rekognition-image-analyzer.ts).
  PIXELPIPE_MODERATION_MIN_CONFIDENCE: intFrom(0, 100).default(50),
  PIXELPIPE_FACE_DESCRIPTORS: bool.default(false),
  PIXELPIPE_BLOCKED_PLACEHOLDER: blockedPlaceholder.default('none'),
} as const;

export type EnvName = keyof typeof ENV;
export const ENV_NAMES = Object.keys(ENV) as EnvName[];

/**
 * A named recipe: which variants an image gets and which inputs it accepts. An upload names its profile,
 * the signed target pins it in the original's metadata, and processing applies it (shared/profiles.ts).
 */
export interface Profile {
  name: string;
  variants: VariantSpec[];
  limits: PixelpipeConfig['limits'];
  /** Overrides of `config.analysis` for this profile's images (e.g. moderation only for chat attachments). */
  analysis?: Partial<Pick<AnalysisConfig, 'analyses' | 'moderation' | 'required' | 'blockedPlaceholder'>>;
}

export interface PixelpipeConfig {
  /**
   * The profiles of `PIXELPIPE_PROFILES`, by name. The `default` profile is not in here: it is
   * `variants` and `limits` below (today's variables), so code that adjusts those keeps working.
   */
  profiles: Record<string, Profile>;
  /** The profile of uploads that name none and of originals without a pinned one (`PIXELPIPE_DEFAULT_PROFILE`). */
  defaultProfile: string;
  buckets: { originals: string; variants: string };
  /** True when originals and outputs share a bucket: the prefix guard is then the only recursion barrier. */
  singleBucket: boolean;
  layout: { originals: string; variants: string; manifests: string; state: string };
  topic: string;
  variants: VariantSpec[];
  limits: {
    maxInputBytes: number;
    maxInputPixels: number;
    maxFrames: number;
    allowedTypes: string[];
    /** How picky the decoder is: `warning` refuses JPEGs with corrupt segments instead of rendering grey blocks. */
    failOn: 'truncated' | 'error' | 'warning';
    /**
     * Animated GIF/WebP inputs keep every frame in GIF/WebP outputs (JPEG/PNG/AVIF get the first frame).
     * `false` renders the first frame only. Absent means true.
     */
    animated?: boolean;
    /**
     * Largest animation (width × height × frames) rendered with all its frames; a larger one gets its
     * first frame only. Lower than `maxInputPixels` because every frame is held at once and libwebp's
     * decoder needs about twice that while compositing. Absent means 25 000 000.
     */
    maxAnimatedPixels?: number;
  };
  upload: { expirySeconds: number; corsOrigins: string[]; statusUrlBase?: string };
  output: {
    cacheControl: string;
    webpEffort: number;
    avifEffort: number;
    placeholder: boolean;
    /** The score `quality: "auto"` variants aim for. */
    qualityTarget: QualityTarget;
    publicBaseUrl?: string;
  };
  retry: { maxAttempts: number; maxEventAgeSeconds: number };
  /**
   * Time limits of one invocation. `timeoutSeconds` is the platform's limit where the platform does
   * not say it at run time (GCP: the deploy sets it to the function's `--timeout`; CLI and dev stack:
   * per image); Lambda's remaining time comes from its context instead. `reserveMs` is kept back
   * from normal work so that, when a downstream stalls, the attempt record or the failed manifest can
   * still be written before the platform ends the invocation.
   */
  invocation: { timeoutSeconds: number; reserveMs: number };
  /**
   * JWT mode: `maxTokenAgeSeconds` bounds how long a token may be used at all, whatever its `exp`
   * says: one issued (`iat`) longer ago, or expiring further ahead, is refused.
   */
  auth: { mode: 'anonymous' } | { mode: 'jwt'; jwksUrl: string; issuer: string; audience: string; maxTokenAgeSeconds: number };
  eventSource: string;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  analysis: AnalysisConfig;
}

/**
 * Validates every `PIXELPIPE_*` variable at once. Throws a {@link ConfigError} whose message names
 * each bad variable and what was expected; call it once per cold start.
 */
export function loadConfig(env: Record<string, string | undefined>): PixelpipeConfig {
  const values: Record<string, unknown> = {};
  const problems: Array<{ variable: string; label?: string; message: string }> = [];
  for (const name of ENV_NAMES) {
    const raw = env[name];
    const result = (ENV[name] as z.ZodTypeAny).safeParse(raw === '' ? undefined : raw);
    if (result.success) values[name] = result.data;
    else {
      if (name === 'PIXELPIPE_PROFILES') {
        // One line per field, named the way a user finds it in the JSON: PIXELPIPE_PROFILES.avatar.variants[0].width.
        for (const i of result.error.issues)
          problems.push({ variable: name, label: `${name}${i.path.length ? '.' : ''}${fieldPath(i.path)}`, message: keyMessage(i) });
        continue;
      }
      const msg = result.error.issues.map((i) => (i.path.length ? `${i.path.join('.')}: ` : '') + i.message).join('; ');
      problems.push({ variable: name, message: `${msg} (got ${raw === undefined ? 'nothing' : JSON.stringify(truncate(raw))})` });
    }
  }
  const v = values as { [K in EnvName]: z.output<(typeof ENV)[K]> };
  if (!problems.length && v.PIXELPIPE_AUTH_MODE === 'jwt') {
    for (const name of ['PIXELPIPE_JWKS_URL', 'PIXELPIPE_JWT_ISSUER', 'PIXELPIPE_JWT_AUDIENCE'] as const) {
      if (!v[name])
        problems.push({ variable: name, message: 'required when PIXELPIPE_AUTH_MODE=jwt (set PIXELPIPE_AUTH_MODE=anonymous only for local development)' });
    }
  }
  if (!problems.length) {
    const prefixes = [v.PIXELPIPE_ORIGINALS_PREFIX, v.PIXELPIPE_VARIANTS_PREFIX, v.PIXELPIPE_MANIFESTS_PREFIX, v.PIXELPIPE_STATE_PREFIX];
    for (let i = 0; i < prefixes.length; i++)
      for (let j = 0; j < prefixes.length; j++)
        if (i !== j && prefixes[j].startsWith(prefixes[i]))
          problems.push({
            variable: 'PIXELPIPE_ORIGINALS_PREFIX',
            message: `key prefixes must not nest ("${prefixes[j]}" is under "${prefixes[i]}"), or outputs could re-trigger processing`,
          });
  }
  // The reserve must leave most of the invocation to the work itself, or every image would time out.
  if (!problems.length && v.PIXELPIPE_DEADLINE_RESERVE_MS * 2 > v.PIXELPIPE_FUNCTION_TIMEOUT_SECONDS * 1000) {
    problems.push({
      variable: 'PIXELPIPE_DEADLINE_RESERVE_MS',
      message: `must be at most half of PIXELPIPE_FUNCTION_TIMEOUT_SECONDS (${v.PIXELPIPE_FUNCTION_TIMEOUT_SECONDS} s) (got ${v.PIXELPIPE_DEADLINE_RESERVE_MS})`,
    });
  }
  if (!problems.length) problems.push(...analysisProblems(v));
  if (!problems.length) problems.push(...profileAnalysisProblems(v.PIXELPIPE_ANALYZER, v.PIXELPIPE_PROFILES ?? {}));
  if (!problems.length && v.PIXELPIPE_DEFAULT_PROFILE !== DEFAULT_PROFILE_NAME && !v.PIXELPIPE_PROFILES?.[v.PIXELPIPE_DEFAULT_PROFILE]) {
    problems.push({
      variable: 'PIXELPIPE_DEFAULT_PROFILE',
      message: `"${v.PIXELPIPE_DEFAULT_PROFILE}" is not a profile (configured: ${[DEFAULT_PROFILE_NAME, ...Object.keys(v.PIXELPIPE_PROFILES ?? {})].join(', ')})`,
    });
  }
  if (problems.length) {
    const line = (p: (typeof problems)[number]) => `${p.label ?? p.variable}: ${p.message}`;
    const err = new ConfigError(problems[0].variable, problems.map(line).join('\n'));
    err.message = `invalid configuration:\n${problems.map((p) => `  ${line(p)}`).join('\n')}`;
    throw err;
  }
  const variants = v.PIXELPIPE_VARIANTS ?? variantsSchema.parse(DEFAULT_VARIANTS);
  const limits: PixelpipeConfig['limits'] = {
    maxInputBytes: v.PIXELPIPE_MAX_INPUT_BYTES,
    maxInputPixels: v.PIXELPIPE_MAX_INPUT_PIXELS,
    maxFrames: v.PIXELPIPE_MAX_FRAMES,
    allowedTypes: v.PIXELPIPE_ALLOWED_TYPES,
    failOn: v.PIXELPIPE_FAIL_ON,
    animated: v.PIXELPIPE_ANIMATED,
    maxAnimatedPixels: v.PIXELPIPE_MAX_ANIMATED_PIXELS,
  };
  return {
    profiles: Object.fromEntries(
      Object.entries(v.PIXELPIPE_PROFILES ?? {}).map(([name, p]) => [name, namedProfile(name, p, variants, limits, requestedAnalyses(v))]),
    ),
    defaultProfile: v.PIXELPIPE_DEFAULT_PROFILE,
    buckets: { originals: v.PIXELPIPE_ORIGINALS_BUCKET, variants: v.PIXELPIPE_VARIANTS_BUCKET },
    singleBucket: v.PIXELPIPE_ORIGINALS_BUCKET === v.PIXELPIPE_VARIANTS_BUCKET,
    layout: {
      originals: v.PIXELPIPE_ORIGINALS_PREFIX,
      variants: v.PIXELPIPE_VARIANTS_PREFIX,
      manifests: v.PIXELPIPE_MANIFESTS_PREFIX,
      state: v.PIXELPIPE_STATE_PREFIX,
    },
    topic: v.PIXELPIPE_TOPIC,
    variants,
    limits,
    upload: {
      expirySeconds: v.PIXELPIPE_UPLOAD_EXPIRY_SECONDS,
      corsOrigins: v.PIXELPIPE_CORS_ORIGINS,
      statusUrlBase: v.PIXELPIPE_STATUS_URL_BASE,
    },
    output: {
      cacheControl: v.PIXELPIPE_CACHE_CONTROL,
      webpEffort: v.PIXELPIPE_WEBP_EFFORT,
      avifEffort: v.PIXELPIPE_AVIF_EFFORT,
      placeholder: v.PIXELPIPE_PLACEHOLDER,
      qualityTarget: v.PIXELPIPE_QUALITY_TARGET,
      publicBaseUrl: v.PIXELPIPE_PUBLIC_BASE_URL,
    },
    retry: { maxAttempts: v.PIXELPIPE_MAX_ATTEMPTS, maxEventAgeSeconds: v.PIXELPIPE_MAX_EVENT_AGE_SECONDS },
    invocation: { timeoutSeconds: v.PIXELPIPE_FUNCTION_TIMEOUT_SECONDS, reserveMs: v.PIXELPIPE_DEADLINE_RESERVE_MS },
    auth:
      v.PIXELPIPE_AUTH_MODE === 'anonymous'
        ? { mode: 'anonymous' }
        : {
            mode: 'jwt',
            jwksUrl: v.PIXELPIPE_JWKS_URL!,
            issuer: v.PIXELPIPE_JWT_ISSUER!,
            audience: v.PIXELPIPE_JWT_AUDIENCE!,
            maxTokenAgeSeconds: v.PIXELPIPE_JWT_MAX_AGE_SECONDS,
          },
    eventSource: v.PIXELPIPE_SOURCE,
    logLevel: v.PIXELPIPE_LOG_LEVEL,
    analysis: {
      analyzer: v.PIXELPIPE_ANALYZER,
      analyses: requestedAnalyses(v),
      moderation: v.PIXELPIPE_MODERATION,
      required: v.PIXELPIPE_ANALYSIS_REQUIRED,
      budgetMs: v.PIXELPIPE_ANALYSIS_BUDGET_MS,
      faceDescriptors: v.PIXELPIPE_FACE_DESCRIPTORS,
      moderationMinConfidence: v.PIXELPIPE_MODERATION_MIN_CONFIDENCE,
      blockedPlaceholder: v.PIXELPIPE_BLOCKED_PLACEHOLDER,
    },
  };
}

/** A profile may ask for less or other analysis than the global settings, but never for what the analyzer cannot do. */
function profileAnalysisProblems(analyzer: AnalyzerName, profiles: Record<string, ProfileInput>): Array<{ variable: string; label: string; message: string }> {
  const can = ANALYZER_CAPABILITIES[analyzer];
  const out: Array<{ variable: string; label: string; message: string }> = [];
  for (const [name, p] of Object.entries(profiles)) {
    const label = (field: string) => `PIXELPIPE_PROFILES.${name}.analysis.${field}`;
    if (p.analysis?.moderation && p.analysis.moderation !== 'off' && !can.includes('moderation')) {
      out.push({
        variable: 'PIXELPIPE_PROFILES',
        label: label('moderation'),
        message: `needs an analyzer that can moderate; PIXELPIPE_ANALYZER=${analyzer} cannot`,
      });
    }
    const missing = (p.analysis?.analyses ?? []).filter((a) => !can.includes(a));
    if (missing.length) {
      out.push({ variable: 'PIXELPIPE_PROFILES', label: label('analyses'), message: `PIXELPIPE_ANALYZER=${analyzer} cannot do ${missing.join(', ')}` });
    }
  }
  return out;
}

/** A `PIXELPIPE_PROFILES` entry with every absent field taken from the `default` profile's variables. */
function namedProfile(name: string, p: ProfileInput, variants: VariantSpec[], limits: PixelpipeConfig['limits'], analyses: AnalysisKind[]): Profile {
  const { variants: own, analysis, ...limitOverrides } = p;
  let merged: Profile['analysis'];
  if (analysis) {
    // As for the global settings: a moderation policy asks for moderation, whatever `analyses` says.
    const moderation = analysis.moderation ?? 'off';
    const asked = analysis.analyses ?? analyses;
    const all = analysis.moderation && moderation !== 'off' && !asked.includes('moderation') ? [...asked, 'moderation' as const] : asked;
    merged = { ...analysis, analyses: ANALYSIS_KINDS.filter((k) => all.includes(k)) };
  }
  return { name, variants: own ?? variants, limits: { ...limits, ...limitOverrides }, ...(merged ? { analysis: merged } : {}) };
}

type AnalysisEnv = {
  PIXELPIPE_ANALYZER: AnalyzerName;
  PIXELPIPE_ANALYSES?: AnalysisKind[];
  PIXELPIPE_MODERATION: AnalysisConfig['moderation'];
  PIXELPIPE_FACE_DESCRIPTORS: boolean;
};

/** Faces by default (what smart crops need, and the cheapest call); moderation whenever a policy is set. */
function requestedAnalyses(v: AnalysisEnv): AnalysisKind[] {
  const base = v.PIXELPIPE_ANALYSES ?? (v.PIXELPIPE_ANALYZER === 'none' ? [] : ['faces']);
  const all = v.PIXELPIPE_MODERATION !== 'off' && !base.includes('moderation') ? [...base, 'moderation' as const] : base;
  return ANALYSIS_KINDS.filter((k) => all.includes(k));
}

/** Asking an analyzer for what it cannot do is a configuration error, never a silent "ok". */
function analysisProblems(v: AnalysisEnv): Array<{ variable: string; message: string }> {
  const analyzer = v.PIXELPIPE_ANALYZER;
  const can = ANALYZER_CAPABILITIES[analyzer];
  const problems: Array<{ variable: string; message: string }> = [];
  if (v.PIXELPIPE_MODERATION !== 'off' && !can.includes('moderation')) {
    problems.push({
      variable: 'PIXELPIPE_MODERATION',
      message: `${v.PIXELPIPE_MODERATION} needs an analyzer that can moderate (vision or rekognition); PIXELPIPE_ANALYZER=${analyzer} cannot`,
    });
  }
  const missing = (v.PIXELPIPE_ANALYSES ?? []).filter((a) => !can.includes(a));
  if (missing.length) {
    problems.push({
      variable: 'PIXELPIPE_ANALYSES',
      message: `PIXELPIPE_ANALYZER=${analyzer} cannot do ${missing.join(', ')} (it can do: ${can.join(', ') || 'nothing'})`,
    });
  }
  // Only the embedded analyzer computes descriptors: Vision and Rekognition return no embeddings.
  if (v.PIXELPIPE_FACE_DESCRIPTORS && analyzer !== 'embedded') {
    problems.push({
      variable: 'PIXELPIPE_FACE_DESCRIPTORS',
      message: `face descriptors (biometric embeddings) are computed by PIXELPIPE_ANALYZER=embedded only; ${analyzer} cannot return them, so set it to false or use embedded`,
    });
  }
  return problems;
}

/** Parses a variants array (e.g. from a CLI `--config` file) with the same rules as `PIXELPIPE_VARIANTS`. */
export function parseVariants(input: unknown): VariantSpec[] {
  const r = variantsSchema.safeParse(input);
  if (!r.success) throw new ConfigError('variants', r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  return r.data;
}

function truncate(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
