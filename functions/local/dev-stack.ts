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
import { mkdir } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAuthenticator } from '../../shared/auth/jwt-authenticator';
import { systemClock, uuidIds } from '../../shared/clock';
import { loadConfig, type PixelpipeConfig } from '../../shared/config';
import { newTraceId, withInvocation } from '../../shared/invocation';
import { parseCompletionEvent } from '../../shared/events';
import { SharpImageProcessor } from '../../shared/image/sharp-image-processor';
import { ownerSegment, parseOriginalKey } from '../../shared/keys';
import { createLogger, type LineSink } from '../../shared/logger';
import { parseManifest } from '../../shared/manifest';
import type { Logger, ObjectStore } from '../../shared/ports';
import { sanitizeFilename } from '../../shared/usecases/request-upload';
import { getImageStatus } from '../../shared/usecases/get-image-status';
import { createNotifyHandler } from '../aws/notify-handler';
import { createProcessHandler } from '../aws/process-handler';
import { S3ObjectStore } from '../aws/s3-object-store';
import { S3UrlSigner } from '../aws/s3-url-signer';
import { createUploadHandler } from '../aws/upload-handler';
import { AsyncInvoker } from './async-invoker';
import { createDevRequestListener } from './dev-server';
import { devPixelpipeEnv, pageOrigins, type DevOptions } from './dev-options';
import { EmbeddedEventChannel, type EventChannel } from './event-channel';
import { assertPortsFree, isAddressInUse, PortInUseError } from './ports';
import { pubsubEmulatorUnavailable, startEmulatorProcess, type EmulatorProcess } from './pubsub-emulator-process';
import { openPubSubChannel } from './pubsub-event-channel';
import { RecentImages } from './recent-images';
import { startLocalS3, type LocalS3 } from './s3rver-server';
import { matchRules, pipelineRules, toS3NotificationEvent } from './s3-notifications';
import { SseHub } from './sse-hub';

/** What the caller provides besides the options. */
export interface DevStackIo {
  /** Where the functions' log lines go. */
  sink: LineSink;
  /** Environment for the emulator child process. */
  childEnv: Record<string, string | undefined>;
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

type EventsPlan = { kind: 'embedded'; warning?: string } | { kind: 'external'; host: string } | { kind: 'spawn' };

/** Chooses the event channel from the options and what is installed. */
export function planEvents(options: DevOptions): EventsPlan {
  if (options.events === 'embedded') return { kind: 'embedded' };
  if (options.emulatorHost) return { kind: 'external', host: options.emulatorHost };
  const missing = pubsubEmulatorUnavailable(options.emulatorBinary, { path: options.path, javaHome: options.javaHome });
  if (!missing) return { kind: 'spawn' };
  if (options.events === 'pubsub') throw new Error(`PIXELPIPE_DEV_EVENTS=pubsub but ${missing} (or set PUBSUB_EMULATOR_HOST)`);
  return { kind: 'embedded', warning: `${missing}; using the embedded event channel instead` };
}

/** Starts the stack; on failure everything already started is stopped before the error propagates. */
export async function startDevStack(options: DevOptions, io: DevStackIo): Promise<DevStack> {
  const plan = planEvents(options);
  await assertPortsFree(options.host, [
    { port: options.port, variable: 'PIXELPIPE_DEV_PORT', what: 'page and API' },
    { port: options.s3Port, variable: 'PIXELPIPE_DEV_S3_PORT', what: 'local S3 (s3rver)' },
    ...(plan.kind === 'spawn' ? [{ port: options.pubsubPort, variable: 'PIXELPIPE_DEV_PUBSUB_PORT', what: 'Pub/Sub emulator' }] : []),
  ]);

  const cleanups: Array<() => Promise<void>> = [];
  let emulator: EmulatorProcess | undefined;
  const cleanup = async () => {
    for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => undefined);
  };
  try {
    // The JVM is the slowest part: start it first and build everything else meanwhile.
    // Set once the config (and so the log level) is known; the emulator may stop before or after that.
    const devLog: { current?: Logger } = {};
    const emulatorStarting =
      plan.kind === 'spawn'
        ? startEmulatorProcess({
            binary: options.emulatorBinary,
            host: options.host,
            port: options.pubsubPort,
            env: io.childEnv,
            onUnexpectedExit: (detail) => devLog.current?.error(`the Pub/Sub emulator stopped unexpectedly: ${detail}`),
          }).then((e) => {
            emulator = e;
            return e;
          })
        : undefined;
    // Kill it even when start-up fails elsewhere before it is awaited.
    cleanups.push(async () => {
      await emulatorStarting?.catch(() => undefined);
      await emulator?.stop();
    });

    let listener: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => {
      res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '1' });
      res.end('pixelpipe dev stack is starting');
    };
    const server = createServer((req, res) => listener(req, res));
    await listen(server, options.host, options.port);
    cleanups.push(() => closeServer(server));
    const pagePort = (server.address() as AddressInfo).port;

    // Validates the user's PIXELPIPE_* early, before anything else starts.
    const draft = loadConfig(devPixelpipeEnv(options, { page: pagePort, s3: options.s3Port || 1 }));
    await mkdir(`${options.dataDir}/s3`, { recursive: true });
    const origins = pageOrigins(pagePort);
    const s3: LocalS3 = await startLocalS3({
      host: options.host,
      port: options.s3Port,
      directory: `${options.dataDir}/s3`,
      buckets: [...new Set([draft.buckets.originals, draft.buckets.variants])],
      cors: { buckets: [draft.buckets.originals], origins: [...new Set([...origins, ...draft.upload.corsOrigins])] },
    });
    cleanups.push(() => s3.close());

    const config = loadConfig(devPixelpipeEnv(options, { page: pagePort, s3: s3.port }));
    const root = createLogger({ level: config.logLevel, sink: io.sink });
    const log = root.child({ fn: 'dev' });
    devLog.current = log;
    if (plan.kind === 'embedded' && plan.warning) log.warn(plan.warning);

    const channel = await openChannel(plan, options, config, log, await emulatorStarting);
    cleanups.push(() => channel.close());

    // One client and adapter set per function, as each Lambda builds its own at cold start.
    const uploadLogger = root.child({ fn: 'upload' });
    const authenticator = createAuthenticator(config, uploadLogger);
    const uploadHandler = createUploadHandler({
      signer: S3UrlSigner.fromClient(s3.client()),
      ids: uuidIds,
      clock: systemClock,
      config,
      authenticator,
      logger: uploadLogger,
    });
    const processHandler = createProcessHandler({
      store: new S3ObjectStore(s3.client()),
      processor: new SharpImageProcessor(),
      clock: systemClock,
      logger: root.child({ fn: 'process' }),
      config,
    });
    const notifyStore = new S3ObjectStore(s3.client());
    const notifyHandler = createNotifyHandler({ store: notifyStore, publisher: channel.publisher, logger: root.child({ fn: 'notify' }), config });
    const statusStore: ObjectStore = new S3ObjectStore(s3.client());

    const invokers = {
      process: new AsyncInvoker('process', processHandler, { concurrency: options.processConcurrency, logger: log }),
      notify: new AsyncInvoker('notify', notifyHandler, { concurrency: 4, logger: log }),
    };
    cleanups.push(async () => {
      // Let a nearly finished image complete; sharp cannot be interrupted anyway.
      await Promise.all([invokers.process.close(1500), invokers.notify.close(500)]);
    });

    const images = new RecentImages();
    const sse = new SseHub();
    cleanups.push(() => Promise.resolve(sse.close()));

    const rules = pipelineRules(config);
    s3.onRecord((record) => {
      if (record.s3.bucket.name === config.buckets.originals && record.eventName.startsWith('ObjectCreated:')) {
        const ref = parseOriginalKey(config.layout, record.s3.object.key);
        if (ref) images.uploaded(ref.id, record.s3.object.size);
      }
      for (const rule of matchRules(record, rules)) invokers[rule.name as 'process' | 'notify'].invoke(toS3NotificationEvent(record));
    });

    channel.subscribe((message) => {
      let event;
      try {
        event = parseCompletionEvent(message);
      } catch (err) {
        log.warn('ignoring a message that is not a valid completion event', { err, messageId: message.id });
        return;
      }
      images.completed(event.data);
      sse.broadcast('completion', event.id, JSON.stringify(event));
    });

    await seedRecentImages(statusStore, config, images, log);

    listener = createDevRequestListener({
      webDir: options.webDir,
      uploadHandler,
      status: async (id, authorization) => {
        let owner: string;
        try {
          owner = ownerSegment((await authenticator.authenticate(authorization)).subject);
        } catch {
          return null;
        }
        // A status request gets the deadline a deployed function would have.
        const init = { deadline: Date.now() + config.invocation.timeoutSeconds * 1000, traceId: newTraceId(), logger: log };
        return withInvocation(init, (inv) => getImageStatus({ store: statusStore, config }, inv, id, owner));
      },
      images,
      sse,
      onUploadSigned: (response, filename) =>
        images.signed(response.id, { filename: filename ? sanitizeFilename(filename) : undefined, expiresAt: response.expiresAt }),
      corsOrigins: config.upload.corsOrigins,
      storageOrigin: s3.endpoint,
      logger: log,
    });

    const page = `http://${options.host}:${pagePort}`;
    const stack: DevStack = {
      urls: { page: `${page}/`, uploads: `${page}/api/uploads`, images: `${page}/api/images`, events: `${page}/api/events`, storage: s3.endpoint },
      buckets: config.buckets,
      events: {
        kind: channel.kind,
        description: channel.description,
        ...(plan.kind === 'external' ? { emulatorHost: plan.host } : emulator ? { emulatorHost: emulator.host } : {}),
        projectId: options.projectId,
        topic: config.topic,
      },
      config,
      async close() {
        // Stop taking requests and end the event streams first, so nothing new arrives while stopping.
        sse.close();
        server.close();
        server.closeAllConnections();
        await cleanup();
      },
      killNow() {
        if (emulator) {
          try {
            process.kill(-emulator.pid, 'SIGKILL');
          } catch {
            /* already gone */
          }
        }
      },
    };
    return stack;
  } catch (err) {
    await cleanup();
    throw err;
  }
}

async function openChannel(
  plan: EventsPlan,
  options: DevOptions,
  config: PixelpipeConfig,
  log: Logger,
  emulator: EmulatorProcess | undefined,
): Promise<EventChannel> {
  if (plan.kind === 'embedded') return new EmbeddedEventChannel(log);
  const host = plan.kind === 'external' ? plan.host : emulator!.host;
  return openPubSubChannel({
    emulatorHost: host,
    projectId: options.projectId,
    topic: config.topic,
    subscription: `pixelpipe-dev-sse-${process.pid}-${Date.now().toString(36)}`,
    logger: log,
    note: plan.kind === 'external' ? 'PUBSUB_EMULATOR_HOST' : 'started by the dev stack',
  });
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

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', (err) => reject(isAddressInUse(err) ? new PortInUseError(port, 'PIXELPIPE_DEV_PORT', 'page and API') : err));
    server.listen({ host, port, exclusive: true }, () => resolve());
  });
}

async function closeServer(server: Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  await closed;
}
