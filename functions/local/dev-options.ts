/**
 * Options of the local dev stack (`npm run dev`), parsed from an environment object handed over by the
 * entry script, plus the `PIXELPIPE_*` environment the functions get: the production `loadConfig`
 * with embedded local defaults, so the dev stack exercises the same configuration code as a deploy.
 */
import { z } from 'zod';
import { ConfigError } from '../../shared/errors';

/** Where the Cloud SDK's Debian package installs the Pub/Sub emulator. */
export const DEFAULT_PUBSUB_EMULATOR_BIN = '/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator';

/** How completion events travel: the real Pub/Sub emulator, an in-process channel, or whichever is available. */
export type EventsMode = 'auto' | 'pubsub' | 'embedded';

/** Everything the dev stack needs to start; see {@link loadDevOptions} for the variables. */
export interface DevOptions {
  /** Always loopback: the stack runs with authentication disabled. */
  host: '127.0.0.1';
  /** Page + API port; 0 picks a free one. */
  port: number;
  /** s3rver port; 0 picks a free one. */
  s3Port: number;
  events: EventsMode;
  /** `PUBSUB_EMULATOR_HOST`: use this running emulator instead of starting one. */
  emulatorHost?: string;
  /** Port for the emulator the stack starts itself. */
  pubsubPort: number;
  emulatorBinary: string;
  projectId: string;
  /** s3rver's directory: objects survive restarts so the recent-images table does too. */
  dataDir: string;
  /** Directory served at `/`. */
  webDir: string;
  /** Originals processed at the same time (each decodes a full image). */
  processConcurrency: number;
  /** `pretty` one-liners for people, or the functions' raw JSON lines. */
  logFormat: 'pretty' | 'json';
  /** The `PIXELPIPE_*` variables the user set; they override the embedded defaults. */
  pixelpipeEnv: Record<string, string>;
  /** PATH and JAVA_HOME, to find Java for the emulator. */
  path: string;
  javaHome?: string;
}

const port = (fallback: number) => z.coerce.number().int().min(0).max(65535).default(fallback);

const schema = z.object({
  PIXELPIPE_DEV_PORT: port(8787),
  PIXELPIPE_DEV_S3_PORT: port(8788),
  PIXELPIPE_DEV_PUBSUB_PORT: port(8085),
  PIXELPIPE_DEV_EVENTS: z.enum(['auto', 'pubsub', 'embedded']).default('auto'),
  PIXELPIPE_DEV_PUBSUB_EMULATOR: z.string().min(1).default(DEFAULT_PUBSUB_EMULATOR_BIN),
  PIXELPIPE_DEV_CONCURRENCY: z.coerce.number().int().min(1).max(16).default(2),
  PIXELPIPE_DEV_LOG: z.enum(['pretty', 'json']).default('pretty'),
  PIXELPIPE_DEV_DATA: z.string().min(1).optional(),
  PUBSUB_EMULATOR_HOST: z
    .string()
    .regex(/^[A-Za-z0-9.[\]:-]+:\d{1,5}$/, 'host:port, e.g. 127.0.0.1:8085')
    .optional(),
  PUBSUB_PROJECT_ID: z
    .string()
    .regex(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/, 'a project id')
    .optional(),
});

/**
 * Reads the dev-stack variables: `PIXELPIPE_DEV_PORT` (8787), `PIXELPIPE_DEV_S3_PORT` (8788),
 * `PIXELPIPE_DEV_EVENTS` (auto | pubsub | embedded), `PIXELPIPE_DEV_PUBSUB_PORT` (8085),
 * `PIXELPIPE_DEV_PUBSUB_EMULATOR`, `PIXELPIPE_DEV_DATA` (`<repo>/.dev-data`), `PIXELPIPE_DEV_CONCURRENCY` (2),
 * `PIXELPIPE_DEV_LOG` (pretty | json), `PUBSUB_EMULATOR_HOST`, `PUBSUB_PROJECT_ID` (pixelpipe-dev).
 * Throws a {@link ConfigError} naming the variable.
 */
export function loadDevOptions(env: Record<string, string | undefined>, paths: { root: string; webDir: string }): DevOptions {
  const input: Record<string, string | undefined> = {};
  for (const key of Object.keys(schema.shape)) input[key] = env[key] === '' ? undefined : env[key];
  const r = schema.safeParse(input);
  if (!r.success) {
    const issue = r.error.issues[0];
    const name = String(issue.path[0]);
    throw new ConfigError(name, `${issue.message} (got ${JSON.stringify(input[name])})`);
  }
  const v = r.data;
  const pixelpipeEnv: Record<string, string> = {};
  for (const [k, val] of Object.entries(env)) {
    if (k.startsWith('PIXELPIPE_') && !k.startsWith('PIXELPIPE_DEV_') && val !== undefined && val !== '') pixelpipeEnv[k] = val;
  }
  return {
    host: '127.0.0.1',
    port: v.PIXELPIPE_DEV_PORT,
    s3Port: v.PIXELPIPE_DEV_S3_PORT,
    events: v.PIXELPIPE_DEV_EVENTS,
    emulatorHost: v.PUBSUB_EMULATOR_HOST,
    pubsubPort: v.PIXELPIPE_DEV_PUBSUB_PORT,
    emulatorBinary: v.PIXELPIPE_DEV_PUBSUB_EMULATOR,
    projectId: v.PUBSUB_PROJECT_ID ?? 'pixelpipe-dev',
    dataDir: v.PIXELPIPE_DEV_DATA ?? `${paths.root}/.dev-data`,
    webDir: paths.webDir,
    processConcurrency: v.PIXELPIPE_DEV_CONCURRENCY,
    logFormat: v.PIXELPIPE_DEV_LOG,
    pixelpipeEnv,
    path: env.PATH ?? '',
    javaHome: env.JAVA_HOME || undefined,
  };
}

/** The browser origins the page can be opened from: both loopback spellings. */
export function pageOrigins(port: number): string[] {
  return [`http://127.0.0.1:${port}`, `http://localhost:${port}`];
}

/** The dev stack's example profile: square avatars, 5 MB, no animation. */
export const DEV_EXAMPLE_PROFILES = {
  avatar: {
    variants: [
      { name: 'avatar', width: 256, height: 256, fit: 'cover', position: 'faces', formats: ['webp', 'jpeg'] },
      { name: 'avatar-small', width: 64, height: 64, fit: 'cover', position: 'faces', formats: ['webp'] },
    ],
    maxInputBytes: 5 * 1024 * 1024,
    allowedTypes: ['image/jpeg', 'image/png', 'image/webp', 'image/heic', 'image/heif', 'image/avif'],
    animated: false,
  },
};

/**
 * The environment `loadConfig` sees: local defaults (anonymous auth, the page's origins, the local
 * status endpoint, variant URLs on s3rver) under the user's own `PIXELPIPE_*` values. The URLs that
 * depend on the ports the stack bound are always set by the stack, and the page's origins are added
 * to any the user listed.
 */
export function devPixelpipeEnv(options: Pick<DevOptions, 'pixelpipeEnv' | 'host'>, ports: { page: number; s3: number }): Record<string, string> {
  const user = options.pixelpipeEnv;
  const variantsBucket = user.PIXELPIPE_VARIANTS_BUCKET ?? 'pixelpipe-variants';
  const origins = [
    ...new Set([
      ...pageOrigins(ports.page),
      ...(user.PIXELPIPE_CORS_ORIGINS ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    ]),
  ];
  return {
    PIXELPIPE_AUTH_MODE: 'anonymous',
    PIXELPIPE_ORIGINALS_BUCKET: 'pixelpipe-originals',
    PIXELPIPE_VARIANTS_BUCKET: variantsBucket,
    PIXELPIPE_SOURCE: '//pixelpipe/dev',
    // Faces on a model shipped in an npm package: what a new user sees without any account.
    PIXELPIPE_ANALYZER: 'embedded',
    // One example profile to try from the page's selector; uploads without one still get the default variants.
    PIXELPIPE_PROFILES: JSON.stringify(DEV_EXAMPLE_PROFILES),
    ...user,
    PIXELPIPE_CORS_ORIGINS: origins.join(','),
    PIXELPIPE_STATUS_URL_BASE: `http://${options.host}:${ports.page}/api/images`,
    // Path style, so the browser loads variants straight from s3rver without any DNS tricks.
    PIXELPIPE_PUBLIC_BASE_URL: `http://${options.host}:${ports.s3}/${variantsBucket}`,
  };
}
