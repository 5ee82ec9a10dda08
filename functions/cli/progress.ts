/**
 * A one-line progress bar with rate and ETA for long CLI runs (backfill). Redraws in place on a TTY
 * and prints a line every few seconds otherwise, so CI logs stay readable.
 */
import type { BackfillProgress } from '../../shared/usecases/backfill';

export interface ProgressBar {
  update(p: BackfillProgress): void;
  done(p: BackfillProgress): void;
}

/** Formats one progress line; exported for tests. */
export function formatProgress(p: BackfillProgress, elapsedMs: number, width = 24): string {
  const finished = p.processed + p.failed + p.errors;
  const total = finished + p.queued;
  const ratio = total ? finished / total : 1;
  const filled = Math.round(ratio * width);
  const rate = elapsedMs > 0 ? (finished / elapsedMs) * 1000 : 0;
  const eta = rate > 0 ? Math.ceil(p.queued / rate) : undefined;
  return (
    `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${finished}/${total} ` +
    `${rate.toFixed(1)} img/s ETA ${eta === undefined ? '?' : `${eta}s`} ` +
    `(listed ${p.listed}, skipped ${p.skipped}, failed ${p.failed}, errors ${p.errors})`
  );
}

export function createProgressBar(stream: NodeJS.WriteStream = process.stderr, now: () => number = Date.now): ProgressBar {
  const start = now();
  let lastPrint = 0;
  const tty = Boolean(stream.isTTY);
  return {
    update(p) {
      const t = now();
      if (tty) stream.write(`\r${formatProgress(p, t - start)}\u001b[K`);
      else if (t - lastPrint >= 5000) {
        lastPrint = t;
        stream.write(`${formatProgress(p, t - start)}\n`);
      }
    },
    done(p) {
      stream.write(`${tty ? '\r' : ''}${formatProgress(p, now() - start)}${tty ? '\u001b[K' : ''}\n`);
    },
  };
}
