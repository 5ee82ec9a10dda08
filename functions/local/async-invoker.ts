/**
 * Asynchronous invocation of a handler, the way Lambda invokes functions for S3 notifications:
 * queued, at most `concurrency` at a time, and a failed invocation (the handler threw) retried twice
 * after a delay before it is given up (where Lambda would send it to the on-failure destination).
 * Delays are seconds rather than Lambda's minutes: a developer is watching.
 */
import type { Logger } from '../../shared/ports';

/** Concurrency and retry schedule of one {@link AsyncInvoker}. */
export interface AsyncInvokerOptions {
  concurrency: number;
  /** Delay before each retry; its length is the number of retries. */
  retryDelaysMs?: number[];
  logger: Logger;
}

interface Job {
  event: unknown;
  attempt: number;
}

/** A queue in front of one handler. */
export class AsyncInvoker {
  private readonly queue: Job[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private active = 0;
  private closed = false;
  private idleWaiters: Array<() => void> = [];
  private readonly retryDelaysMs: number[];

  constructor(
    readonly name: string,
    private readonly handler: (event: unknown) => Promise<unknown>,
    private readonly options: AsyncInvokerOptions,
  ) {
    this.retryDelaysMs = options.retryDelaysMs ?? [1000, 2000];
  }

  /** Queues one invocation; returns at once, like an `Event` invocation. */
  invoke(event: unknown): void {
    if (this.closed) return;
    this.queue.push({ event, attempt: 1 });
    this.pump();
  }

  /** Invocations queued or running (retries waiting on their timer are not counted). */
  get pending(): number {
    return this.queue.length + this.active;
  }

  /** Resolves once nothing is queued or running. */
  idle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Stops taking work and drops what is queued; waits up to `graceMs` for running invocations.
   * Dropped work is not lost: the originals stay in storage and a restart's backfill (or a re-upload) redoes them.
   */
  async close(graceMs: number): Promise<void> {
    this.closed = true;
    this.queue.length = 0;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    if (this.active === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.idle(), new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
    clearTimeout(timer);
  }

  private pump(): void {
    while (!this.closed && this.active < this.options.concurrency && this.queue.length > 0) {
      const job = this.queue.shift()!;
      this.active++;
      void this.run(job).finally(() => {
        this.active--;
        this.pump();
        if (this.pending === 0) {
          const waiters = this.idleWaiters;
          this.idleWaiters = [];
          for (const w of waiters) w();
        }
      });
    }
  }

  private async run(job: Job): Promise<void> {
    try {
      await this.handler(job.event);
    } catch (err) {
      if (this.closed) return;
      const delay = this.retryDelaysMs[job.attempt - 1];
      if (delay === undefined) {
        this.options.logger.error(`${this.name}: invocation failed ${job.attempt} times; giving up (on AWS it would go to the on-failure destination)`, {
          err,
        });
        return;
      }
      this.options.logger.warn(`${this.name}: invocation failed; retrying in ${delay} ms`, { err, attempt: job.attempt });
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        if (this.closed) return;
        this.queue.push({ event: job.event, attempt: job.attempt + 1 });
        this.pump();
      }, delay);
      this.timers.add(timer);
    }
  }
}
