/**
 * Load test of the whole local pipeline: N uploads, C at a time, through the upload endpoint, a
 * presigned POST to the local store, processing and notification, each awaited as a completion event.
 * Checks that every upload ends in exactly one completion event (after dedupe by event id), all
 * `processed`, and that peak RSS stays under the limit; prints throughput and p50/p95 latency.
 *
 * Run: node scripts/ts.mjs scripts/load-test.ts [--uploads 200] [--concurrency 16]
 *        [--process-concurrency 2] [--events embedded|pubsub|auto] [--timeout-seconds 600]
 *        [--rss-limit-mb 1024] [--size 640x480] [--json] [--json-out FILE]
 *
 * Binds 127.0.0.1 only (the dev stack's rule) and stops by itself: the run is bounded by
 * --timeout-seconds, and a watchdog forces the exit if shutdown hangs. Exit 0 when every check
 * passed, 1 when one failed, 2 on bad arguments or a broken setup.
 *
 * The RSS limit defaults to the smaller of the process function's configured memory sizes
 * (Cloud Run 1 GiB via scripts/deploy-gcp.sh; Lambda 1536 MB in serverless.yml).
 */
import { writeFileSync } from 'node:fs';
import { repoRoot } from './lib/root';
import { runLoad, type LoadOptions, type LoadReport } from './load/run';

const USAGE =
  'usage: node scripts/ts.mjs scripts/load-test.ts [--uploads N] [--concurrency N] [--process-concurrency N] ' +
  '[--events embedded|pubsub|auto] [--timeout-seconds N] [--rss-limit-mb N] [--size WxH] [--json] [--json-out FILE]';

interface Cli extends Omit<LoadOptions, 'root' | 'progress'> {
  json: boolean;
  jsonOut?: string;
}

/** Parses the command line; throws with a message naming the bad flag. */
export function parseArgs(argv: string[]): Cli {
  const cli: Cli = {
    uploads: 200,
    concurrency: 16,
    processConcurrency: 2,
    events: 'embedded',
    timeoutMs: 600_000,
    rssLimitMb: 1024,
    width: 640,
    height: 480,
    json: false,
  };
  const int = (flag: string, v: string | undefined, lo: number, hi: number): number => {
    const n = Number(v);
    if (v === undefined || !Number.isInteger(n) || n < lo || n > hi) throw new Error(`${flag} must be an integer in [${lo}, ${hi}]`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = (): string | undefined => argv[++i];
    switch (flag) {
      case '--uploads':
        cli.uploads = int(flag, value(), 1, 100_000);
        break;
      case '--concurrency':
        cli.concurrency = int(flag, value(), 1, 256);
        break;
      case '--process-concurrency':
        cli.processConcurrency = int(flag, value(), 1, 16);
        break;
      case '--events': {
        const v = value();
        if (v !== 'embedded' && v !== 'pubsub' && v !== 'auto') throw new Error('--events must be embedded, pubsub or auto');
        cli.events = v;
        break;
      }
      case '--timeout-seconds':
        cli.timeoutMs = int(flag, value(), 10, 24 * 3600) * 1000;
        break;
      case '--rss-limit-mb':
        cli.rssLimitMb = int(flag, value(), 64, 65_536);
        break;
      case '--size': {
        const m = /^(\d{2,4})x(\d{2,4})$/.exec(value() ?? '');
        if (!m) throw new Error('--size must look like 640x480');
        cli.width = Number(m[1]);
        cli.height = Number(m[2]);
        break;
      }
      case '--json':
        cli.json = true;
        break;
      case '--json-out': {
        const v = value();
        if (!v) throw new Error('--json-out needs a file name');
        cli.jsonOut = v;
        break;
      }
      case '-h':
      case '--help':
        throw new Error(USAGE);
      default:
        throw new Error(`unknown argument ${flag}\n${USAGE}`);
    }
  }
  return cli;
}

/** The human-readable summary. */
export function formatReport(r: LoadReport): string {
  const lines = [
    '',
    `pixelpipe load test: ${r.options.uploads} uploads, ${r.options.concurrency} at a time, processing ${r.options.processConcurrency} at a time`,
    `  harness        ${r.harness}`,
    `  events         ${r.eventChannel}`,
    `  images         ${r.images.distinct} distinct JPEGs ${r.options.width}×${r.options.height} (and portrait), ${r.images.minBytes}–${r.images.maxBytes} bytes, mean ${r.images.meanBytes}`,
    `  uploads        signed ${r.uploads.signed}, stored ${r.uploads.stored}, failed ${r.uploads.failed}`,
    `  events         received ${r.events.received}, unique ${r.events.unique} (duplicates dropped ${r.events.duplicatesDropped}), processed ${r.events.processed}, failed ${r.events.failed}, lost ${r.events.lost}, >1 id ${r.events.multiple}`,
    `  throughput     ${r.throughputPerSecond} images/s over ${(r.durationMs / 1000).toFixed(1)} s`,
    `  latency        upload → event: p50 ${r.latencyMs.p50} ms, p95 ${r.latencyMs.p95} ms (min ${r.latencyMs.min}, mean ${r.latencyMs.mean}, max ${r.latencyMs.max})`,
    `  processing     per image (manifest durationMs): p50 ${r.processingMs.p50} ms, p95 ${r.processingMs.p95} ms, max ${r.processingMs.max} ms; the rest of the latency is queueing behind ${r.options.processConcurrency} worker(s)`,
    `  RSS            peak ${Math.max(r.rss.peakSampledMb, r.rss.maxRssMb)} MB (sampled ${r.rss.peakSampledMb}, maxRSS ${r.rss.maxRssMb}, at start ${r.rss.baselineMb}); limit ${r.rss.limitMb} MB; ${r.rss.measured}`,
    `  function logs  ${r.logs.warnings} warning(s), ${r.logs.errors} error(s)`,
    `  start-up       ${r.startupMs} ms`,
    '',
    r.ok ? 'PASS: every upload ended in exactly one processed completion event' : `FAIL:\n${r.failures.map((f) => `  - ${f}`).join('\n')}`,
    '',
  ];
  return lines.join('\n');
}

async function main(): Promise<void> {
  let cli: Cli;
  try {
    cli = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(2);
  }
  // The Google client libraries would otherwise probe a metadata server that does not exist here.
  process.env.METADATA_SERVER_DETECTION ??= 'none';
  // Watchdog: the run has its own deadline; this only catches a shutdown that hangs.
  const watchdog = setTimeout(() => {
    process.stderr.write(`load test: still running ${cli.timeoutMs / 1000 + 30} s after start; forcing exit\n`);
    process.exit(2);
  }, cli.timeoutMs + 30_000);
  watchdog.unref();

  let report: LoadReport;
  try {
    report = await runLoad({ ...cli, root: repoRoot(), progress: (l) => process.stderr.write(`${l}\n`) });
  } catch (err) {
    process.stderr.write(`load test: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(2);
  }
  process.stdout.write(formatReport(report));
  if (cli.jsonOut) writeFileSync(cli.jsonOut, `${JSON.stringify(report, null, 2)}\n`);
  if (cli.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  process.exit(report.ok ? 0 : 1);
}

if (require.main === module) void main();
