/**
 * The dev stack's functions: the production AWS handlers and adapters, each with its own clients as
 * each Lambda builds them at cold start, invoked asynchronously for the S3 notifications the deployed
 * buckets would send (originals/ created → process, originals/ removed → cascade, manifests/*.json →
 * notify).
 */
import { createAuthenticator } from '../../shared/auth/jwt-authenticator';
import { newestFirstIds, systemClock } from '../../shared/clock';
import type { PixelpipeConfig } from '../../shared/config';
import { ConfigError } from '../../shared/errors';
import { SharpImageProcessor } from '../../shared/image/sharp-image-processor';
import { createAnalysisStage, type AnalysisStage } from '../../shared/usecases/analyze-image';
import { createEmbeddedAnalyzer } from '../embedded/face-api-image-analyzer';
import type { Authenticator, EventPublisher, ImageAnalyzer, Logger, ObjectStore } from '../../shared/ports';
import { createCascadeHandler } from '../aws/cascade-handler';
import { createImagesHandler } from '../aws/images-handler';
import { createNotifyHandler } from '../aws/notify-handler';
import { createProcessHandler } from '../aws/process-handler';
import { S3ObjectStore } from '../aws/s3-object-store';
import { S3UrlSigner } from '../aws/s3-url-signer';
import { createUploadHandler } from '../aws/upload-handler';
import { AsyncInvoker } from './async-invoker';
import type { DevServerDeps } from './dev-server';
import { matchRules, pipelineRules, toS3NotificationEvent } from './s3-notifications';
import type { LocalS3, S3rverRecord } from './s3rver-server';

/** What the functions are wired to. */
export interface DevFunctionsContext {
  config: PixelpipeConfig;
  /** The stack's root logger: each function logs under its own `fn`. */
  root: Logger;
  /** The stack's own logger (invoker retries and give-ups). */
  log: Logger;
  s3: LocalS3;
  publisher: EventPublisher;
  processConcurrency: number;
  /** Replaces the analyzer the configuration names (tests inject a fake cloud analyzer); configured as `PIXELPIPE_ANALY*` say. */
  analyzer?: ImageAnalyzer;
}

/**
 * The dev stack runs what a deploy runs, except that only the embedded analyzer exists locally: the cloud
 * services need accounts (their adapters are tested against fakes instead).
 */
function devAnalysis(config: PixelpipeConfig): { analysis?: AnalysisStage } {
  if (config.analysis.analyzer === 'none') return {};
  if (config.analysis.analyzer !== 'embedded') {
    throw new ConfigError('PIXELPIPE_ANALYZER', `${config.analysis.analyzer} needs a cloud account; the dev stack runs embedded or none`);
  }
  return { analysis: createAnalysisStage(createEmbeddedAnalyzer(__dirname, { descriptors: config.analysis.faceDescriptors }), config.analysis) };
}

/** The running functions. */
export interface DevFunctions {
  uploadHandler: DevServerDeps['uploadHandler'];
  /** The images API function (`/api/images`), authenticating as the upload function does. */
  imagesHandler: DevServerDeps['imagesHandler'];
  /** The upload function's authenticator. */
  authenticator: Authenticator;
  /** A store for the stack's own reads at start-up. */
  statusStore: ObjectStore;
  /** Invokes, asynchronously, every function whose notification rule matches the record. */
  deliver(record: S3rverRecord): void;
  /** Lets a nearly finished image complete, then drops queued invocations. */
  close(): Promise<void>;
}

/** Builds the handlers and their asynchronous invokers. */
export function startDevFunctions(ctx: DevFunctionsContext): DevFunctions {
  const { config, root, s3 } = ctx;
  const uploadLogger = root.child({ fn: 'upload' });
  const authenticator = createAuthenticator(config, uploadLogger);
  const uploadHandler = createUploadHandler({
    signer: S3UrlSigner.fromClient(s3.client()),
    ids: newestFirstIds(systemClock),
    clock: systemClock,
    config,
    authenticator,
    logger: uploadLogger,
  });
  const imagesHandler = createImagesHandler({
    store: new S3ObjectStore(s3.client()),
    signer: S3UrlSigner.fromClient(s3.client()),
    authenticator,
    logger: root.child({ fn: 'images' }),
    config,
  });
  const processHandler = createProcessHandler({
    store: new S3ObjectStore(s3.client()),
    processor: new SharpImageProcessor(),
    clock: systemClock,
    logger: root.child({ fn: 'process' }),
    config,
    ...(ctx.analyzer ? { analysis: createAnalysisStage(ctx.analyzer, config.analysis) } : devAnalysis(config)),
  });
  const notifyHandler = createNotifyHandler({ store: new S3ObjectStore(s3.client()), publisher: ctx.publisher, logger: root.child({ fn: 'notify' }), config });

  const cascadeHandler = createCascadeHandler({
    store: new S3ObjectStore(s3.client()),
    publisher: ctx.publisher,
    clock: systemClock,
    logger: root.child({ fn: 'cascade' }),
    config,
  });

  const invokers = {
    process: new AsyncInvoker('process', processHandler, { concurrency: ctx.processConcurrency, logger: ctx.log }),
    notify: new AsyncInvoker('notify', notifyHandler, { concurrency: 4, logger: ctx.log }),
    cascade: new AsyncInvoker('cascade', cascadeHandler, { concurrency: 2, logger: ctx.log }),
  };
  const rules = pipelineRules(config);
  return {
    uploadHandler,
    imagesHandler,
    authenticator,
    statusStore: new S3ObjectStore(s3.client()),
    deliver(record) {
      for (const rule of matchRules(record, rules)) invokers[rule.name as keyof typeof invokers].invoke(toS3NotificationEvent(record));
    },
    async close() {
      // sharp cannot be interrupted, so a render in progress gets a moment to finish.
      await Promise.all([invokers.process.close(1500), invokers.notify.close(500), invokers.cascade.close(500)]);
    },
  };
}
