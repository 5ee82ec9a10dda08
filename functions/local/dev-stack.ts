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
 */
import { loadConfig, type PixelpipeConfig } from '../../shared/config';
import { EVENT_TYPES, parseCompletionEvent } from '../../shared/events';
import { newTraceId, withInvocation } from '../../shared/invocation';
import { ownerSegment, parseOriginalKey } from '../../shared/keys';
import { createLogger, type LineSink } from '../../shared/logger';
import { parseManifest } from '../../shared/manifest';
import type { ImageAnalyzer, Logger, ObjectStore } from '../../shared/ports';
import { getImageStatus } from '../../shared/usecases/get-image-status';
import { sanitizeFilename } from '../../shared/usecases/request-upload';
import { openEventChannel, planEvents, startEmulatorIfPlanned } from './dev-events';
import type { ChannelMessage } from './event-channel';
import { startDevFunctions, type DevFunctions } from './dev-functions';
import { startPageServer } from './dev-http';
import { devPixelpipeEnv, pageOrigins, type DevOptions } from './dev-options';
import { createDevRequestListener } from './dev-server';
import { startDevStorage } from './dev-storage';
import { assertPortsFree } from './ports';
import { RecentImages } from './recent-images';
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

    const images = new RecentImages();
    const sse = new SseHub();
    cleanups.push(() => {
      sse.close();
      return Promise.resolve();
    });

    s3.onRecord((record) => {
      if (record.s3.bucket.name === config.buckets.originals && record.eventName.startsWith('ObjectCreated:')) {
        const ref = parseOriginalKey(config.layout, record.s3.object.key);
        if (ref) images.uploaded(ref.id, record.s3.object.size);
      }
      fns.deliver(record);
    });

    channel.subscribe((message) => showCompletion(message, { images, sse, log }));

    await seedRecentImages(fns.statusStore, config, images, log);

    server.serve(pageRoutes({ options, config, fns, images, sse, storageOrigin: s3.endpoint, log }));

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
  images: RecentImages;
  sse: SseHub;
  storageOrigin: string;
  log: Logger;
}

/** The page, its API (upload through the upload function, status for the caller only) and the event stream. */
function pageRoutes(ctx: PageContext): ReturnType<typeof createDevRequestListener> {
  const { config, fns, images } = ctx;
  return createDevRequestListener({
    webDir: ctx.options.webDir,
    uploadHandler: fns.uploadHandler,
    status: async (id, authorization) => {
      let owner: string;
      try {
        owner = ownerSegment((await fns.authenticator.authenticate(authorization)).subject);
      } catch {
        return null;
      }
      // A status request gets the deadline a deployed function would have.
      const init = { deadline: Date.now() + config.invocation.timeoutSeconds * 1000, traceId: newTraceId(), logger: ctx.log };
      return withInvocation(init, (inv) => getImageStatus({ store: fns.statusStore, config }, inv, id, owner));
    },
    images,
    sse: ctx.sse,
    onUploadSigned: (response, filename) =>
      images.signed(response.id, { filename: filename ? sanitizeFilename(filename) : undefined, expiresAt: response.expiresAt }),
    corsOrigins: config.upload.corsOrigins,
    storageOrigin: ctx.storageOrigin,
    logger: ctx.log,
  });
}

/** A completion event from the channel: into the recent-images table and out to every open page. */
function showCompletion(message: ChannelMessage, to: { images: RecentImages; sse: SseHub; log: Logger }): void {
  let event;
  try {
    event = parseCompletionEvent(message);
  } catch (err) {
    to.log.warn('ignoring a message that is not a valid completion event', { err, messageId: message.id });
    return;
  }
  if (event.type === EVENT_TYPES.deleted) to.images.deleted(event.data.id);
  else to.images.completed(event.data);
  to.sse.broadcast('completion', event.id, JSON.stringify(event));
}

/** Fills the recent-images table from the newest manifests already in storage (data kept across restarts). */
async function seedRecentImages(store: ObjectStore, config: PixelpipeConfig, images: RecentImages, log: Logger): Promise<void> {
  try {
    // s3rver cannot continue a truncated listing on OpenSSL 3 (it uses single DES for the token): one page.
    const page = await store.list(config.buckets.variants, config.layout.manifests, { pageSize: 1000 });
    const newest = page.items.sort((a, b) => (b.updated?.getTime() ?? 0) - (a.updated?.getTime() ?? 0)).slice(0, 50);
    await Promise.all(
      newest.map(async (item) => {
        try {
          const obj = await store.get(item.bucket, item.key, { maxBytes: 1024 * 1024 });
          images.completed(parseManifest(JSON.parse(obj.body.toString('utf8'))));
        } catch {
          /* a manifest from an older schema or a partial write: not worth a table row */
        }
      }),
    );
  } catch (err) {
    log.warn('could not list existing manifests; the recent-images table starts empty', { err });
  }
}
