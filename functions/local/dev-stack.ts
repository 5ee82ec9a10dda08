/**
 * The whole pipeline on one machine (`npm run dev`): s3rver as the object store, the production AWS
 * handlers and adapters (upload, process, notify; S3ObjectStore, S3UrlSigner) wired to it the way
 * S3 notifications and API Gateway wire them in the cloud, a completion-event channel (the real
 * Pub/Sub emulator with the GCP publisher, or an embedded one), and a dev server for the page.
 *
 *   browser ──POST /api/uploads──▶ dev server ──API GW v2 event──▶ upload handler (S3UrlSigner)
 *   browser ──presigned POST form──▶ s3rver ──ObjectCreated originals/──▶ process handler (sharp)
 *   process handler ──manifests/<id>.json──▶ s3rver ──ObjectCreated manifests/*.json──▶ notify handler
 *   notify handler ──CloudEvent──▶ Pub/Sub topic ──subscription──▶ dev server ──SSE──▶ browser
 *   browser ──GET|DELETE /api/images──▶ dev server ──API GW v2 event──▶ images handler
 */
import { loadConfig, type PixelpipeConfig } from '../../shared/config';
import { parseCompletionEvent } from '../../shared/events';
import { profileNames } from '../../shared/profiles';
import { createLogger, type LineSink } from '../../shared/logger';
import type { ImageAnalyzer, Logger } from '../../shared/ports';
import { openEventChannel, planEvents, startEmulatorIfPlanned } from './dev-events';
import type { ChannelMessage } from './event-channel';
import { startDevFunctions, type DevFunctions } from './dev-functions';
import { startPageServer } from './dev-http';
import { devPixelpipeEnv, pageOrigins, type DevOptions } from './dev-options';
import { createDevRequestListener } from './dev-server';
import { startDevStorage } from './dev-storage';
import { assertPortsFree } from './ports';
import { SseHub } from './sse-hub';

export { planEvents, type EventsPlan } from './dev-events';

/** What the caller provides besides the options. */
export interface DevStackIo {
  /** Where the functions' log lines go. */
  sink: LineSink;
  /** Environment for the emulator child process. */
  childEnv: Record<string, string | undefined>;
  /** Stands in for the configured analyzer (tests: a fake cloud analyzer, so moderation runs locally). */
  analyzer?: ImageAnalyzer;
}

/** A running stack. */
export interface DevStack {
  urls: { page: string; uploads: string; images: string; events: string; storage: string };
  buckets: { originals: string; variants: string };
  events: { kind: 'pubsub' | 'embedded'; description: string; emulatorHost?: string; projectId: string; topic: string };
  config: PixelpipeConfig;
  /** Stops everything it started, in reverse order; idempotent. */
  close(): Promise<void>;
  /** Kills what cannot be left behind (the emulator) synchronously: for a forced exit. */
  killNow(): void;
}

/**
 * Starts the stack: page server, storage, event channel, functions, then the routes that join them.
 * On failure everything already started is stopped, in reverse order, before the error propagates.
 */
export async function startDevStack(options: DevOptions, io: DevStackIo): Promise<DevStack> {
  const plan = planEvents(options);
  await assertPortsFree(options.host, [
    { port: options.port, variable: 'PIXELPIPE_DEV_PORT', what: 'page and API' },
    { port: options.s3Port, variable: 'PIXELPIPE_DEV_S3_PORT', what: 'local S3 (s3rver)' },
    ...(plan.kind === 'spawn' ? [{ port: options.pubsubPort, variable: 'PIXELPIPE_DEV_PUBSUB_PORT', what: 'Pub/Sub emulator' }] : []),
  ]);

  const cleanups: Array<() => Promise<void>> = [];
  const cleanup = async () => {
    for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => undefined);
  };
  try {
    // The JVM is the slowest part: start it first and build everything else meanwhile.
    // Set once the config (and so the log level) is known; the emulator may stop before or after that.
    const devLog: { current?: Logger } = {};
    const emulator = startEmulatorIfPlanned(plan, options, io.childEnv, (detail) =>
      devLog.current?.error(`the Pub/Sub emulator stopped unexpectedly: ${detail}`),
    );
    // Kill it even when start-up fails elsewhere before it is awaited.
    cleanups.push(() => emulator.stop());

    const server = await startPageServer(options.host, options.port);
    cleanups.push(() => server.close());

    // Validates the user's PIXELPIPE_* early, before anything else starts.
    const draft = loadConfig(devPixelpipeEnv(options, { page: server.port, s3: options.s3Port || 1 }));
    const s3 = await startDevStorage(options, draft, pageOrigins(server.port));
    cleanups.push(() => s3.close());

    const config = loadConfig(devPixelpipeEnv(options, { page: server.port, s3: s3.port }));
    const root = createLogger({ level: config.logLevel, sink: io.sink });
    const log = root.child({ fn: 'dev' });
    devLog.current = log;
    if (plan.kind === 'embedded' && plan.warning) log.warn(plan.warning);

    const channel = await openEventChannel(plan, options, config, log, await emulator.ready);
    cleanups.push(() => channel.close());

    const fns = startDevFunctions({
      config,
      root,
      log,
      s3,
      publisher: channel.publisher,
      processConcurrency: options.processConcurrency,
      ...(io.analyzer ? { analyzer: io.analyzer } : {}),
    });
    cleanups.push(() => fns.close());

    const sse = new SseHub();
    cleanups.push(() => {
      sse.close();
      return Promise.resolve();
    });

    s3.onRecord((record) => fns.deliver(record));

    channel.subscribe((message) => showCompletion(message, { sse, log }));

    server.serve(pageRoutes({ options, config, fns, sse, storageOrigin: s3.endpoint, log }));

    const page = `http://${options.host}:${server.port}`;
    const running = emulator.current();
    return {
      urls: { page: `${page}/`, uploads: `${page}/api/uploads`, images: `${page}/api/images`, events: `${page}/api/events`, storage: s3.endpoint },
      buckets: config.buckets,
      events: {
        kind: channel.kind,
        description: channel.description,
        ...(plan.kind === 'external' ? { emulatorHost: plan.host } : running ? { emulatorHost: running.host } : {}),
        projectId: options.projectId,
        topic: config.topic,
      },
      config,
      async close() {
        // Stop taking requests and end the event streams first, so nothing new arrives while stopping.
        sse.close();
        server.stopAccepting();
        await cleanup();
      },
      killNow() {
        const pid = emulator.current()?.pid;
        if (pid === undefined) return;
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      },
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** What the page's routes are served from. */
interface PageContext {
  options: DevOptions;
  config: PixelpipeConfig;
  fns: DevFunctions;
  sse: SseHub;
  storageOrigin: string;
  log: Logger;
}

/** The page, its API (the upload and images functions, as deployed) and the event stream. */
function pageRoutes(ctx: PageContext): ReturnType<typeof createDevRequestListener> {
  const { config, fns } = ctx;
  return createDevRequestListener({
    webDir: ctx.options.webDir,
    uploadHandler: fns.uploadHandler,
    imagesHandler: fns.imagesHandler,
    sse: ctx.sse,
    profiles: { names: profileNames(config), default: config.defaultProfile },
    corsOrigins: config.upload.corsOrigins,
    storageOrigin: ctx.storageOrigin,
    logger: ctx.log,
  });
}

/** A completion event from the channel: out to every open page (which then refreshes its list). */
function showCompletion(message: ChannelMessage, to: { sse: SseHub; log: Logger }): void {
  let event;
  try {
    event = parseCompletionEvent(message);
  } catch (err) {
    to.log.warn('ignoring a message that is not a valid completion event', { err, messageId: message.id });
    return;
  }
  to.sse.broadcast('completion', event.id, JSON.stringify(event));
}
