/**
 * `npm run dev`: the whole pipeline on this machine, with embedded defaults (no cloud account, no
 * Docker). Prints the URLs once everything is up, binds 127.0.0.1 only, and stops cleanly on Ctrl-C
 * (a second Ctrl-C forces the exit). Variables: see `functions/local/dev-options.ts` and docs/local.md.
 *
 * Run: node scripts/ts.mjs scripts/dev.ts
 */
import { join } from 'node:path';
import { ConfigError } from '../shared/errors';
import { loadDevOptions, type DevOptions } from '../functions/local/dev-options';
import { prettySink } from '../functions/local/dev-log';
import type { DevStack } from '../functions/local/dev-stack';
import { PortInUseError } from '../functions/local/ports';
import { quietAwsSdkNodeVersionNotice } from '../functions/local/sdk-notices';
import { repoRoot } from './lib/root';

/** A Ctrl-C reaches this process twice (from the terminal and forwarded by scripts/ts.mjs): one press. */
const SAME_PRESS_MS = 500;
/** Shutdown is bounded; past this the exit is forced. */
const SHUTDOWN_LIMIT_MS = 10_000;

async function main(): Promise<void> {
  const root = repoRoot();
  // The Google client libraries would otherwise probe a metadata server that does not exist here.
  process.env.METADATA_SERVER_DETECTION ??= 'none';
  quietAwsSdkNodeVersionNotice();
  let options: DevOptions;
  try {
    options = loadDevOptions(process.env, { root, webDir: join(root, 'web') });
  } catch (err) {
    fail(err instanceof ConfigError ? err.message : String(err));
  }
  const out = (text: string) => process.stdout.write(text);
  const sink = options.logFormat === 'json' ? (line: string) => out(`${line}\n`) : prettySink(out, process.stdout.isTTY === true);

  let stack: DevStack | undefined;
  let starting: Promise<DevStack> | undefined = undefined;
  let stopping: Promise<void> | undefined;
  let firstSignalAt = 0;

  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      const forced = setTimeout(() => {
        process.stderr.write(`shutdown took longer than ${SHUTDOWN_LIMIT_MS / 1000} s; forcing exit\n`);
        stack?.killNow();
        process.exit(1);
      }, SHUTDOWN_LIMIT_MS);
      forced.unref();
      const s = stack ?? (await starting?.catch(() => undefined));
      await s?.close();
      clearTimeout(forced);
    })());

  const onSignal = (signal: NodeJS.Signals) => {
    const now = Date.now();
    if (!stopping) {
      firstSignalAt = now;
      process.stdout.write(`\n${signal}: stopping the dev stack…\n`);
      void stop().then(() => {
        process.stdout.write('stopped.\n');
        process.exit(0);
      });
      return;
    }
    if (now - firstSignalAt < SAME_PRESS_MS) return;
    process.stderr.write('second interrupt: exiting now\n');
    stack?.killNow();
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  // Loaded only now, with the handlers in place: requiring the SDKs and sharp takes a moment, and a
  // Ctrl-C in that window must still end in a clean exit.
  const { startDevStack } = await import('../functions/local/dev-stack');
  if (stopping) return;
  starting = startDevStack(options, { sink, childEnv: process.env });
  try {
    stack = await starting;
  } catch (err) {
    if (stopping) return; // interrupted while starting: stop() finishes and exits 0
    if (err instanceof PortInUseError) fail(err.message);
    if (err instanceof ConfigError) fail(err.message);
    fail(err instanceof Error ? (err.stack ?? err.message) : String(err));
  }
  if (stopping) return;
  out(banner(stack, options));
}

function banner(stack: DevStack, options: DevOptions): string {
  const seconds = process.uptime().toFixed(1);
  const e = stack.events;
  const lines = [
    '',
    `pixelpipe dev stack ready in ${seconds} s`,
    '',
    `  Page          ${stack.urls.page}`,
    `  Upload API    POST ${stack.urls.uploads}`,
    `  Images API    ${stack.urls.images}`,
    `  Events (SSE)  ${stack.urls.events}`,
    `  Storage (S3)  ${stack.urls.storage}  buckets ${stack.buckets.originals}, ${stack.buckets.variants}  (access key S3RVER / S3RVER)`,
    `  Events        ${e.description}`,
    ...(e.emulatorHost
      ? [`                subscriber example: PUBSUB_EMULATOR_HOST=${e.emulatorHost} PUBSUB_PROJECT_ID=${e.projectId} npm run subscriber`]
      : ['                (install the Pub/Sub emulator and Java for a real broker; see docs/local.md)']),
    `  Data          ${options.dataDir}`,
    '',
    'Authentication is disabled (PIXELPIPE_AUTH_MODE=anonymous): this stack is for local development only.',
    'Press Ctrl-C to stop.',
    '',
  ];
  return `${lines.join('\n')}\n`;
}

function fail(message: string): never {
  process.stderr.write(`pixelpipe dev: ${message}\n`);
  process.exit(1);
}

void main();
