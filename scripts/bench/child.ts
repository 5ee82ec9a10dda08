/**
 * Starting measurement children: pinned to CPUs with `taskset` (a 1- or 2-vCPU function), with the
 * libuv thread pool and glibc arena count the function would run with.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { WorkerResult, WorkerTask } from './worker';

/** How the simulated function instance is shaped. */
export interface Instance {
  /** `taskset -c` list: "0" is one vCPU, "0,1" two. */
  cpus: string;
  /** UV_THREADPOOL_SIZE: how many sharp operations can run at once. */
  threadpool: number;
  /** MALLOC_ARENA_MAX; null leaves glibc's default (8 × cores). */
  mallocArenaMax?: number | null;
}

let tasksetOk: boolean | undefined;

/** Whether `taskset` exists here (util-linux); without it children run unpinned and the report says so. */
export function hasTaskset(): boolean {
  tasksetOk ??= spawnSync('taskset', ['-c', '0', 'true'], { stdio: 'ignore' }).status === 0;
  return tasksetOk;
}

/** The command line that runs `args` (after `node`) inside `instance`. */
export function instanceCommand(instance: Instance, nodeArgs: string[]): { command: string; args: string[]; env: NodeJS.ProcessEnv } {
  const env: NodeJS.ProcessEnv = { ...process.env, UV_THREADPOOL_SIZE: String(instance.threadpool) };
  if (instance.mallocArenaMax === null) delete env.MALLOC_ARENA_MAX;
  else env.MALLOC_ARENA_MAX = String(instance.mallocArenaMax ?? 2);
  return hasTaskset()
    ? { command: 'taskset', args: ['-c', instance.cpus, process.execPath, ...nodeArgs], env }
    : { command: process.execPath, args: nodeArgs, env };
}

/**
 * Runs one worker task in a fresh process (this same script with `--worker`) and returns its result.
 * Fails with the child's stderr if it exits badly or prints no result.
 */
export function runWorker<T extends WorkerResult>(task: WorkerTask, instance: Instance, timeoutMs = 15 * 60_000): Promise<T> {
  const payload = Buffer.from(JSON.stringify(task)).toString('base64url');
  const { command, args, env } = instanceCommand(instance, ['--expose-gc', '--enable-source-maps', process.argv[1], '--worker', payload]);
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').pop() ?? '';
      if (code === 0 && line.startsWith('{')) {
        resolve(JSON.parse(line) as T);
        return;
      }
      reject(new Error(`worker ${task.kind} failed (exit ${code ?? signal}): ${err.trim().split('\n').slice(-5).join('\n') || line}`));
    });
  });
}

/** Busy and total time (in clock ticks) of the listed CPUs, from /proc/stat; null where unavailable. */
export function cpuTicks(cpus: string): { busy: number; total: number } | null {
  try {
    const wanted = new Set(cpus.split(',').map((c) => `cpu${c.trim()}`));
    let busy = 0;
    let total = 0;
    for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
      const [name, ...fields] = line.trim().split(/\s+/);
      if (!wanted.has(name)) continue;
      // user nice system idle iowait irq softirq steal ...: idle and iowait are the idle ones.
      const v = fields.map(Number);
      const sum = v.slice(0, 8).reduce((a, b) => a + b, 0);
      total += sum;
      busy += sum - v[3] - v[4];
    }
    return total > 0 ? { busy, total } : null;
  } catch {
    return null;
  }
}

/** Clock ticks per second for /proc/stat (USER_HZ; 100 on every mainstream Linux). */
export const TICKS_PER_SECOND = 100;
