/**
 * The load test, small enough for CI: `scripts/load-test.ts` run as a user runs it (its own process,
 * through scripts/ts.mjs), 24 uploads at concurrency 8 through the local dev stack (embedded event
 * channel). The script must stop by itself and report every upload ending in exactly one processed
 * completion event, with peak RSS under the limit. Running it as a child also gives a clean
 * `maxRSS`: the figure belongs to the processing process alone, not to this jest worker.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from '../../scripts/load-test';
import type { LoadReport } from '../../scripts/load/run';

jest.setTimeout(150_000);

const ROOT = join(__dirname, '..', '..');

test('the command line is validated', () => {
  expect(parseArgs([])).toMatchObject({ uploads: 200, concurrency: 16, processConcurrency: 2, events: 'embedded', rssLimitMb: 1024, width: 640, height: 480 });
  expect(parseArgs(['--uploads', '24', '--concurrency', '8', '--size', '320x240'])).toMatchObject({ uploads: 24, concurrency: 8, width: 320, height: 240 });
  expect(() => parseArgs(['--uploads', '0'])).toThrow('--uploads');
  expect(() => parseArgs(['--events', 'kafka'])).toThrow('--events');
  expect(() => parseArgs(['--bogus'])).toThrow('unknown argument --bogus');
});

test('24 uploads at concurrency 8: each ends in exactly one processed completion event; RSS under the limit', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pixelpipe-load-test-'));
  const out = join(dir, 'report.json');
  const env: Record<string, string | undefined> = { ...process.env, PUBSUB_EMULATOR_HOST: undefined, PIXELPIPE_LOG_LEVEL: 'warn' };
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  const child = spawn(
    process.execPath,
    ['scripts/ts.mjs', 'scripts/load-test.ts', '--uploads', '24', '--concurrency', '8', '--timeout-seconds', '100', '--json-out', out],
    {
      cwd: ROOT,
      env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout.on('data', (b: Buffer) => (output += b.toString('utf8')));
  child.stderr.on('data', (b: Buffer) => (output += b.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  // The script bounds itself at 100 s (+30 s watchdog); this only guards against a hang of the harness.
  const guard = setTimeout(() => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      /* gone */
    }
  }, 140_000);
  try {
    const code = await exited;
    if (code !== 0) console.log(output);
    expect(code).toBe(0);
    const report = JSON.parse(readFileSync(out, 'utf8')) as LoadReport;
    console.log(
      `load (24 × 8): ${report.throughputPerSecond} images/s; upload→event p50 ${report.latencyMs.p50} ms, p95 ${report.latencyMs.p95} ms; ` +
        `processing p50 ${report.processingMs.p50} ms; peak RSS ${Math.max(report.rss.peakSampledMb, report.rss.maxRssMb)} MB (limit ${report.rss.limitMb} MB)`,
    );
    expect(report.ok).toBe(true);
    expect(report.failures).toEqual([]);
    expect(report.uploads).toEqual({ requested: 24, signed: 24, stored: 24, failed: 0 });
    expect(report.events).toMatchObject({ unique: 24, processed: 24, failed: 0, lost: 0, multiple: 0 });
    expect(Math.max(report.rss.peakSampledMb, report.rss.maxRssMb)).toBeLessThan(report.rss.limitMb);
    expect(report.throughputPerSecond).toBeGreaterThan(0);
    expect(report.latencyMs.p95).toBeGreaterThanOrEqual(report.latencyMs.p50);
    expect(report.logs.errors).toBe(0);
    expect(output).toMatch(/PASS: every upload ended in exactly one processed completion event/);
  } finally {
    clearTimeout(guard);
    rmSync(dir, { recursive: true, force: true });
  }
});
