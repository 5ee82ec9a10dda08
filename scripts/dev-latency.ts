/**
 * Upload-to-event latency through a running dev stack (`npm run dev`), over the same HTTP API and
 * event stream the page uses, without a browser: ask for a signed target, POST the bytes to local S3,
 * and time until the completion event for that image arrives on `/api/events`.
 *
 * Usage: node scripts/ts.mjs scripts/dev-latency.ts [--url http://127.0.0.1:8787] [--mp 12] [--runs 5]
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot } from './lib/root';

interface Ticket {
  id: string;
  upload: { method: 'POST' | 'PUT'; url: string; fields?: Record<string, string>; headers?: Record<string, string> };
}
interface Completion {
  id: string;
  subject: string;
  type: string;
  data: { status: string; durationMs: number; variants: unknown[]; reason?: { code: string } };
}

/** Reads `text/event-stream` frames from a fetch body and hands each `completion` event to `onEvent`. */
async function readEvents(body: ReadableStream<Uint8Array>, onEvent: (e: Completion) => void): Promise<void> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = 'message';
      const data: string[] = [];
      for (const line of frame.split('\n')) {
        if (line.startsWith('event:')) name = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (name === 'completion' && data.length) onEvent(JSON.parse(data.join('\n')) as Completion);
    }
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { url: { type: 'string', default: 'http://127.0.0.1:8787' }, mp: { type: 'string', default: '12' }, runs: { type: 'string', default: '5' } },
  });
  const base = values.url.replace(/\/$/, '');
  const megapixels = Number(values.mp);
  const runs = Math.max(1, Number(values.runs) || 1);
  // fixtures.ts finds samples/ relative to its own file, which moves when bundled.
  process.env.PIXELPIPE_SAMPLES_DIR ??= join(repoRoot(), 'samples');
  const { photoJpeg, photoDimensions } = await import('./fixtures');

  const health = await fetch(`${base}/healthz`).catch(() => null);
  if (!health?.ok) {
    console.error(`no dev stack at ${base}: start it with \`npm run dev\` (or pass --url)`);
    process.exit(1);
  }
  const dims = photoDimensions(megapixels);
  // A plain Uint8Array view: what fetch and Blob accept under every lib typing.
  const photo = new Uint8Array(await photoJpeg(megapixels));
  console.log(`photo: ${dims.width}×${dims.height} (${megapixels} MP), ${(photo.length / 1e6).toFixed(2)} MB JPEG`);

  const waiters = new Map<string, (e: Completion) => void>();
  const early = new Map<string, Completion>();
  const controller = new AbortController();
  const stream = await fetch(`${base}/api/events`, { signal: controller.signal, headers: { accept: 'text/event-stream' } });
  if (!stream.ok || !stream.body) throw new Error(`event stream: HTTP ${stream.status}`);
  const reading = readEvents(stream.body, (e) => {
    const w = waiters.get(e.subject);
    if (w) w(e);
    else early.set(e.subject, e);
  }).catch(() => undefined);

  const rows: Array<{ request: number; upload: number; toEvent: number; total: number; processing: number; status: string }> = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const res = await fetch(`${base}/api/uploads`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: new URL(base).origin },
      body: JSON.stringify({ contentType: 'image/jpeg', size: photo.length, filename: `latency-${megapixels}mp-${i + 1}.jpg` }),
    });
    if (res.status !== 201) throw new Error(`upload request: HTTP ${res.status} ${await res.text()}`);
    const ticket = (await res.json()) as Ticket;
    const t1 = performance.now();
    const event = new Promise<Completion>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no completion event for ${ticket.id} within 120 s`)), 120_000);
      const done = (e: Completion) => {
        clearTimeout(timer);
        waiters.delete(ticket.id);
        resolve(e);
      };
      const already = early.get(ticket.id);
      if (already) done(already);
      else waiters.set(ticket.id, done);
    });
    const form = new FormData();
    for (const [k, v] of Object.entries(ticket.upload.fields ?? {})) form.append(k, v);
    form.append('file', new Blob([photo], { type: 'image/jpeg' }), 'photo.jpg');
    const put = await fetch(ticket.upload.url, {
      method: ticket.upload.method,
      body: ticket.upload.method === 'POST' ? form : photo,
      headers: ticket.upload.headers,
    });
    if (put.status >= 300) throw new Error(`storage upload: HTTP ${put.status} ${await put.text()}`);
    const t2 = performance.now();
    const e = await event;
    const t3 = performance.now();
    rows.push({ request: t1 - t0, upload: t2 - t1, toEvent: t3 - t2, total: t3 - t0, processing: e.data.durationMs, status: e.data.status });
    console.log(
      `run ${i + 1}: ${e.data.status}, signed ${ms(t1 - t0)}, uploaded ${ms(t2 - t1)}, upload→event ${ms(t3 - t2)} (processing ${ms(e.data.durationMs)}), total ${ms(t3 - t0)}`,
    );
  }
  controller.abort();
  await reading;
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log(
    `median of ${rows.length}: upload→event ${ms(median(rows.map((r) => r.toEvent)))}, processing ${ms(median(rows.map((r) => r.processing)))}, request→event ${ms(median(rows.map((r) => r.total)))}`,
  );
}

const ms = (n: number) => (n < 1000 ? `${Math.round(n)} ms` : `${(n / 1000).toFixed(2)} s`);

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
