/**
 * Child-process probe for the memory tests: renders one file with the default variants through the
 * real SharpImageProcessor and prints one JSON line with the process's peak RSS. Run in a fresh
 * process so the figure is what a function instance would see, not a test runner's accumulated heap.
 *
 * Usage: node scripts/ts.mjs test/hostile/support/measure-render.ts <file>
 */
import { readFileSync } from 'node:fs';
import { loadConfig } from '../../../shared/config';
import { SharpImageProcessor } from '../../../shared/image/sharp-image-processor';

async function main(): Promise<void> {
  const config = loadConfig({ PIXELPIPE_AUTH_MODE: 'anonymous' });
  const input = readFileSync(process.argv[2]);
  const processor = new SharpImageProcessor();
  const rssBefore = process.memoryUsage().rss;
  const t0 = performance.now();
  const r = await processor.render(input, config.variants, config.limits, {
    webpEffort: config.output.webpEffort,
    avifEffort: config.output.avifEffort,
    placeholder: config.output.placeholder,
  });
  process.stdout.write(
    `${JSON.stringify({
      bytes: input.length,
      probe: { mimeType: r.probe.mimeType, width: r.probe.width, height: r.probe.height },
      ms: Math.round(performance.now() - t0),
      decodeMs: r.metrics.decodeMs,
      rssBefore,
      peakRss: process.resourceUsage().maxRSS * 1024,
      outputs: r.outputs.map((o) => ({ variant: o.variant, format: o.format, width: o.width, height: o.height })),
    })}\n`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
