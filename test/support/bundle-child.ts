/**
 * A bundled function in a child process of its own, as a platform runs it: a fresh Node with only the
 * environment the test gives (module-level configuration and wiring run at its cold start), the bundle's
 * own copies of every SDK, sharp resolved next to it. The test's servers (fakes) stay in the test
 * process, so the child reaches them over loopback exactly as the function would reach the real services.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Fails with what to do when a bundle has not been built (`dist/` is not checked in). */
export function assertBuilt(...files: string[]): void {
  const missing = files.filter((f) => !existsSync(f));
  if (missing.length) throw new Error(`not built: ${missing.join(', ')} — run \`npm run build\` first`);
}

export interface BundleChild {
  proc: ChildProcess;
  /** Everything the child wrote to stdout and stderr so far (its logs, for failure messages). */
  output(): string;
  /** Ends the child: a disconnect (IPC) or SIGTERM, SIGKILL after 5 s. */
  stop(): Promise<void>;
}

/**
 * Starts `node <args>` with `env` (nothing inherited but PATH) and resolves once stdout matches
 * `ready`, with the match; rejects (with the child's output) if it exits first or after `timeoutMs`.
 */
export async function startBundleChild(
  args: string[],
  env: Record<string, string>,
  ready: RegExp,
  { cwd, timeoutMs = 30_000, ipc = false }: { cwd: string; timeoutMs?: number; ipc?: boolean },
): Promise<{ child: BundleChild; match: RegExpExecArray }> {
  const proc = spawn(process.execPath, args, {
    cwd,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe', ...(ipc ? (['ipc'] as const) : [])],
  });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const child: BundleChild = {
    proc,
    output: () => out,
    stop: () =>
      new Promise<void>((resolve) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
        const kill = setTimeout(() => proc.kill('SIGKILL'), 5000);
        proc.once('exit', () => {
          clearTimeout(kill);
          resolve();
        });
        if (proc.connected) proc.disconnect();
        else proc.kill('SIGTERM');
      }),
  };
  try {
    const match = await new Promise<RegExpExecArray>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the child was not ready after ${timeoutMs} ms:\n${out}`)), timeoutMs);
      const check = () => {
        const m = ready.exec(out);
        if (!m) return;
        clearTimeout(timer);
        proc.stdout!.off('data', check);
        resolve(m);
      };
      proc.stdout!.on('data', check);
      proc.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`the child exited (${code ?? signal}) before it was ready:\n${out}`));
      });
    });
    return { child, match };
  } catch (err) {
    await child.stop();
    throw err;
  }
}
