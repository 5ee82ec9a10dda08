/**
 * Google's Pub/Sub emulator (the Java one shipped with the Cloud SDK) as a child of the dev stack:
 * bound to 127.0.0.1, started in its own process group so that stopping it kills the JVM and anything
 * it started, and killed synchronously if the dev process exits any other way.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { PortInUseError } from './ports';

/** Why the emulator cannot run here (missing binary or Java), or null when it can. */
export function pubsubEmulatorUnavailable(binary: string, env: { path: string; javaHome?: string }): string | null {
  if (!existsSync(binary)) return `the Pub/Sub emulator is not installed (${binary}); install the google-cloud-cli-pubsub-emulator package`;
  const onPath = env.path.split(':').some((dir) => dir && existsSync(`${dir}/java`));
  if (!onPath && !(env.javaHome && existsSync(`${env.javaHome}/bin/java`))) {
    return 'Java is not installed (the Pub/Sub emulator needs a JRE, e.g. openjdk-17-jre-headless)';
  }
  return null;
}

/** How to start the emulator: binary, address and the child's environment. */
export interface EmulatorProcessOptions {
  binary: string;
  host: string;
  port: number;
  /** The child's environment (PATH, JAVA_HOME…). */
  env: Record<string, string | undefined>;
  startTimeoutMs?: number;
  /** Called when the emulator exits on its own (not through `stop`). */
  onUnexpectedExit?: (detail: string) => void;
}

/** A running emulator. */
export interface EmulatorProcess {
  /** `host:port`, the value for `PUBSUB_EMULATOR_HOST`. */
  host: string;
  pid: number;
  /** SIGTERM to the group, SIGKILL after 3 s; resolves once it exited. Idempotent. */
  stop(): Promise<void>;
  /** The last lines it printed (for error messages). */
  output(): string;
}

/** Starts the emulator and waits until it accepts connections; throws (after killing it) when it does not. */
export async function startEmulatorProcess(options: EmulatorProcessOptions): Promise<EmulatorProcess> {
  const timeout = options.startTimeoutMs ?? 30_000;
  const child: ChildProcess = spawn(options.binary, [`--host=${options.host}`, `--port=${options.port}`], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...options.env,
      // A small heap: the emulator holds a handful of messages.
      JAVA_TOOL_OPTIONS: options.env.JAVA_TOOL_OPTIONS ?? '-Xmx256m -XX:TieredStopAtLevel=1',
    },
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${options.binary}`);
  let log = '';
  const onData = (b: Buffer) => {
    log += b.toString('utf8');
    if (log.length > 32 * 1024) log = log.slice(-16 * 1024);
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  let stopping = false;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const killGroup = (signal: NodeJS.Signals) => {
    try {
      // Negative pid: the whole group, in case the launcher ever forks instead of exec'ing Java.
      process.kill(-pid, signal);
    } catch {
      /* already gone */
    }
  };
  // Last resort if the dev process dies without running its shutdown (uncaught error, process.exit).
  const onExit = () => killGroup('SIGKILL');
  process.once('exit', onExit);
  child.once('exit', (code, signal) => {
    process.removeListener('exit', onExit);
    if (!stopping) options.onUnexpectedExit?.(`exited with ${code ?? signal}; last output:\n${tail(log)}`);
  });

  const stop = async () => {
    stopping = true;
    if (child.exitCode !== null || child.signalCode !== null) return;
    killGroup('SIGTERM');
    const hard = setTimeout(() => killGroup('SIGKILL'), 3000);
    await exited;
    clearTimeout(hard);
  };

  const deadline = Date.now() + timeout;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      stopping = true;
      if (/Address already in use|BindException/i.test(log)) throw new PortInUseError(options.port, 'PIXELPIPE_DEV_PUBSUB_PORT', 'Pub/Sub emulator');
      throw new Error(`the Pub/Sub emulator exited during start-up (${child.exitCode ?? child.signalCode}):\n${tail(log)}`);
    }
    if (/Server started/.test(log) && (await canConnect(options.host, options.port))) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`the Pub/Sub emulator did not start within ${timeout} ms:\n${tail(log)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { host: `${options.host}:${options.port}`, pid, stop, output: () => log };
}

function tail(text: string): string {
  return text.trim().split('\n').slice(-15).join('\n');
}

/** True when something accepts TCP connections on host:port (500 ms timeout). */
export function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
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
