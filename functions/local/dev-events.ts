/**
 * The dev stack's completion-event channel: the real Pub/Sub emulator (started here, or an external
 * one from PUBSUB_EMULATOR_HOST) with the GCP publisher, or an embedded channel when no emulator can run.
 */
import type { PixelpipeConfig } from '../../shared/config';
import type { Logger } from '../../shared/ports';
import type { DevOptions } from './dev-options';
import { EmbeddedEventChannel, type EventChannel } from './event-channel';
import { pubsubEmulatorUnavailable, startEmulatorProcess, type EmulatorProcess } from './pubsub-emulator-process';
import { openPubSubChannel } from './pubsub-event-channel';

/** Which channel the stack uses: embedded (with why, when it was a fallback), an external emulator, or one it spawns. */
export type EventsPlan = { kind: 'embedded'; warning?: string } | { kind: 'external'; host: string } | { kind: 'spawn' };

/** Chooses the event channel from the options and what is installed. */
export function planEvents(options: DevOptions): EventsPlan {
  if (options.events === 'embedded') return { kind: 'embedded' };
  if (options.emulatorHost) return { kind: 'external', host: options.emulatorHost };
  const missing = pubsubEmulatorUnavailable(options.emulatorBinary, { path: options.path, javaHome: options.javaHome });
  if (!missing) return { kind: 'spawn' };
  if (options.events === 'pubsub') throw new Error(`PIXELPIPE_DEV_EVENTS=pubsub but ${missing} (or set PUBSUB_EMULATOR_HOST)`);
  return { kind: 'embedded', warning: `${missing}; using the embedded event channel instead` };
}

/** An emulator child that may still be starting. */
export interface EmulatorStart {
  /** Resolves once the emulator answers; undefined when the plan spawns none. */
  ready: Promise<EmulatorProcess | undefined>;
  /** The emulator once started (for its host and a forced kill). */
  current(): EmulatorProcess | undefined;
  /** Waits for a start in progress, then stops the child; never throws. */
  stop(): Promise<void>;
}

/**
 * Spawns the emulator when the plan says so. The JVM is the slowest part of the stack, so the caller
 * starts it first and builds everything else meanwhile; `onUnexpectedExit` reports a later crash.
 */
export function startEmulatorIfPlanned(
  plan: EventsPlan,
  options: DevOptions,
  env: Record<string, string | undefined>,
  onUnexpectedExit: (detail: string) => void,
): EmulatorStart {
  let emulator: EmulatorProcess | undefined;
  const ready =
    plan.kind === 'spawn'
      ? startEmulatorProcess({ binary: options.emulatorBinary, host: options.host, port: options.pubsubPort, env, onUnexpectedExit }).then((e) => {
          emulator = e;
          return e;
        })
      : Promise.resolve(undefined);
  return {
    ready,
    current: () => emulator,
    async stop() {
      await ready.catch(() => undefined);
      await emulator?.stop();
    },
  };
}

/** Opens the planned channel: embedded, or a fresh subscription on the emulator's topic. */
export async function openEventChannel(
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
