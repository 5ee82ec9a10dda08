/**
 * Starts Google's Pub/Sub emulator (the Java one shipped with the Cloud SDK) for integration tests,
 * on 127.0.0.1 and a free port, in its own process group so `stop()` kills the JVM and its children.
 *
 * When the emulator or Java is missing, `startPubsubEmulator()` returns `null` after a loud warning
 * (a developer machine without the SDK can still run the other tests), except with `CI=true`, where a
 * missing emulator is an error: CI must not silently skip the integration tier.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, connect } from 'node:net';

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

/** A free TCP port on 127.0.0.1 (bound and released, so a small race with other processes remains). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Why the emulator cannot run here, or null when it can. */
export function pubsubEmulatorMissing(binary = PUBSUB_EMULATOR_BIN): string | null {
  if (!existsSync(binary)) return `the Pub/Sub emulator is not installed (${binary}); install google-cloud-cli-pubsub-emulator`;
  const javaHome = process.env.JAVA_HOME;
  const onPath = (process.env.PATH ?? '').split(':').some((d) => d && existsSync(`${d}/java`));
  if (!onPath && !(javaHome && existsSync(`${javaHome}/bin/java`))) return 'Java is not installed (the Pub/Sub emulator needs a JRE, e.g. openjdk-17-jre-headless)';
  return null;
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
  const timeout = options.startTimeoutMs ?? 60_000;
  let child: ChildProcess | null = null;
  let log = '';

  const start = async (): Promise<void> => {
    log = '';
    const proc = spawn(binary, [`--host=127.0.0.1`, `--port=${port}`], {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      // No metadata-server probing from the JVM; keep the emulator small.
      env: { ...process.env, METADATA_SERVER_DETECTION: 'none', JAVA_TOOL_OPTIONS: process.env.JAVA_TOOL_OPTIONS ?? '-Xmx256m' },
    });
    child = proc;
    const onData = (b: Buffer) => {
      log += b.toString('utf8');
      if (log.length > 64 * 1024) log = log.slice(-32 * 1024);
    };
    proc.stdout?.on('data', onData);
    proc.stderr?.on('data', onData);
    const deadline = Date.now() + timeout;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`Pub/Sub emulator exited (${proc.exitCode ?? proc.signalCode}):\n${log}`);
      if (/Server started/.test(log) && (await canConnect(port))) return;
      await sleep(100);
    }
    await kill(proc);
    throw new Error(`Pub/Sub emulator did not start within ${timeout} ms:\n${log}`);
  };

  const kill = async (proc: ChildProcess): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    try {
      // Negative pid: the whole group (the shell wrapper and the JVM).
      process.kill(-proc.pid!, 'SIGTERM');
    } catch {
      return;
    }
    const t = setTimeout(() => {
      try {
        process.kill(-proc.pid!, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }, 3000);
    await exited;
    clearTimeout(t);
    // The port must be free again before a restart binds it.
    for (let i = 0; i < 50 && (await canConnect(port)); i++) await sleep(100);
  };

  await start();
  return {
    host: `127.0.0.1:${port}`,
    port,
    projectId,
    async stop() {
      if (child) await kill(child);
    },
    async restart() {
      if (child) await kill(child);
      await start();
    },
    output: () => log,
  };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.setTimeout(500);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('timeout', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(false));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
