/**
 * Starts Google's Pub/Sub emulator (the Java one shipped with the Cloud SDK) for integration tests,
 * on 127.0.0.1 and a free port, in its own process group so `stop()` kills the JVM and its children.
 * The process handling is the dev stack's (`functions/local/pubsub-emulator-process.ts`); this adds
 * the test policy and `restart()` on the same port for fault tests.
 *
 * When the emulator or Java is missing, `startPubsubEmulator()` returns `null` after a loud warning
 * (a developer machine without the SDK can still run the other tests), except with `CI=true`, where a
 * missing emulator is an error: CI must not silently skip the integration tier.
 */
import { canConnect, pubsubEmulatorUnavailable, startEmulatorProcess, type EmulatorProcess } from '../../functions/local/pubsub-emulator-process';
import { freePort } from '../../functions/local/ports';

export { freePort };

export const PUBSUB_EMULATOR_BIN = '/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator';

export interface PubsubEmulator {
  /** `127.0.0.1:<port>`: the value for `PUBSUB_EMULATOR_HOST`. */
  host: string;
  port: number;
  projectId: string;
  /** Kills the emulator (and everything it started); idempotent. */
  stop(): Promise<void>;
  /** Starts it again on the same port (fault tests: stop mid-publish, then recover). State is lost. */
  restart(): Promise<void>;
  /** The emulator's output so far (for failure messages). */
  output(): string;
}

export interface StartOptions {
  projectId?: string;
  port?: number;
  /** How long to wait for "Server started", ms. */
  startTimeoutMs?: number;
  binary?: string;
}

/** Why the emulator cannot run here, or null when it can. */
export function pubsubEmulatorMissing(binary = PUBSUB_EMULATOR_BIN): string | null {
  return pubsubEmulatorUnavailable(binary, { path: process.env.PATH ?? '', javaHome: process.env.JAVA_HOME });
}

/**
 * Starts the emulator, or returns null (with a warning) when it cannot run here and `CI` is not `true`.
 * Throws when it is missing under CI or does not come up in time.
 */
export async function startPubsubEmulator(options: StartOptions = {}): Promise<PubsubEmulator | null> {
  const binary = options.binary ?? PUBSUB_EMULATOR_BIN;
  const missing = pubsubEmulatorMissing(binary);
  if (missing) {
    if (process.env.CI === 'true') throw new Error(`Pub/Sub emulator required under CI: ${missing}`);
    console.warn(`\n*** SKIPPING Pub/Sub emulator tests: ${missing} ***\n`);
    return null;
  }
  const projectId = options.projectId ?? 'pixelpipe-test';
  const port = options.port ?? (await freePort());
  let proc: EmulatorProcess | null = null;
  const start = async (): Promise<void> => {
    proc = await startEmulatorProcess({
      binary,
      host: '127.0.0.1',
      port,
      // No metadata-server probing from the JVM.
      env: { ...process.env, METADATA_SERVER_DETECTION: 'none' },
      startTimeoutMs: options.startTimeoutMs ?? 60_000,
    });
  };
  const stop = async (): Promise<void> => {
    await proc?.stop();
    // The port must be free again before a restart binds it.
    for (let i = 0; i < 50 && (await canConnect('127.0.0.1', port)); i++) await new Promise((r) => setTimeout(r, 100));
  };
  await start();
  return {
    host: `127.0.0.1:${port}`,
    port,
    projectId,
    stop,
    async restart() {
      await stop();
      await start();
    },
    output: () => proc?.output() ?? '',
  };
}
