/**
 * Test helper: runs `npm run dev`'s command (`node scripts/ts.mjs scripts/dev.ts`) as a child in its
 * own process group, on free ports and a temporary data directory, and gives tests what they need to
 * check it: the printed URLs, its whole process tree, an SSE reader and the exit.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ROOT = join(__dirname, '..', '..');
import { freePort } from '../../functions/local/ports';

export { freePort };

/** True when nothing listens on the port and it can be bound again. */
export function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen({ port, host: '127.0.0.1', exclusive: true }, () => s.close(() => resolve(true)));
  });
}

export interface DevUrls {
  page: string;
  uploads: string;
  images: string;
  events: string;
  storage: string;
  emulatorHost?: string;
}

export interface DevProcess {
  proc: ChildProcess;
  ports: { page: number; s3: number; pubsub: number };
  dataDir: string;
  /** Everything it printed so far (stdout and stderr interleaved). */
  output(): string;
  /** Resolves with the URLs from the banner; rejects if it exits first or takes longer than `timeoutMs`. */
  ready(timeoutMs?: number): Promise<DevUrls>;
  /** Resolves when the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Pids of the whole tree under it right now (children of children included), with their commands. */
  tree(): Array<{ pid: number; command: string }>;
  /** Kills whatever is left (the test failed midway) and removes the data directory. */
  cleanup(): Promise<void>;
}

/** Starts the dev command with free ports; `env` is added to (and can unset, with undefined) the inherited environment. */
export async function spawnDev(env: Record<string, string | undefined> = {}): Promise<DevProcess> {
  const ports = { page: await freePort(), s3: await freePort(), pubsub: await freePort() };
  const dataDir = mkdtempSync(join(tmpdir(), 'pixelpipe-dev-test-'));
  const childEnv: Record<string, string | undefined> = {
    ...process.env,
    // Another test file in this worker may have pointed the Google libraries at its own emulator.
    PUBSUB_EMULATOR_HOST: undefined,
    PIXELPIPE_DEV_PORT: String(ports.page),
    PIXELPIPE_DEV_S3_PORT: String(ports.s3),
    PIXELPIPE_DEV_PUBSUB_PORT: String(ports.pubsub),
    PIXELPIPE_DEV_DATA: dataDir,
    ...env,
  };
  for (const [k, v] of Object.entries(childEnv)) if (v === undefined) delete childEnv[k];
  const proc = spawn(process.execPath, ['scripts/ts.mjs', 'scripts/dev.ts'], { cwd: ROOT, env: childEnv, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (b: Buffer) => (out += b.toString('utf8')));
  proc.stderr.on('data', (b: Buffer) => (out += b.toString('utf8')));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const seen = new Set<number>();

  const tree = () => {
    const rows = execFileSync('ps', ['-A', '-o', 'pid=,ppid=,args='], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map((l) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ pid: Number(m[1]), ppid: Number(m[2]), command: m[3] }));
    const out: Array<{ pid: number; command: string }> = [];
    const walk = (pid: number) => {
      for (const r of rows.filter((x) => x.ppid === pid)) {
        out.push({ pid: r.pid, command: r.command });
        seen.add(r.pid);
        walk(r.pid);
      }
    };
    walk(proc.pid!);
    return out;
  };

  return {
    proc,
    ports,
    dataDir,
    output: () => out,
    exited,
    tree,
    async ready(timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        if (/Press Ctrl-C to stop/.test(out)) {
          const url = (label: string) => new RegExp(`${label}\\s+(?:POST )?(http://\\S+)`).exec(out)?.[1] ?? '';
          const emulator = /PUBSUB_EMULATOR_HOST=(\S+)/.exec(out)?.[1];
          return {
            page: url('Page'),
            uploads: url('Upload API'),
            images: url('Images API'),
            events: url('Events \\(SSE\\)'),
            storage: url('Storage \\(S3\\)'),
            ...(emulator ? { emulatorHost: emulator } : {}),
          };
        }
        if (proc.exitCode !== null || proc.signalCode !== null)
          throw new Error(`dev stack exited (${proc.exitCode ?? proc.signalCode}) before it was ready:\n${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`dev stack not ready within ${timeoutMs} ms:\n${out}`);
    },
    cleanup() {
      const pids = [proc.pid!, ...seen];
      try {
        pids.push(...tree().map((t) => t.pid));
      } catch {
        /* ps failed: use what was seen */
      }
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      rmSync(dataDir, { recursive: true, force: true });
      return Promise.resolve();
    },
  };
}

/** True while a process with this pid exists (zombies excluded). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const state = execFileSync('ps', ['-o', 'stat=', '-p', String(pid)], { encoding: 'utf8' }).trim();
    return state !== '' && !state.startsWith('Z');
  } catch {
    return false;
  }
}

/** A completion event as the page receives it (JSON of a CloudEvent); fields checked by the tests. */
export type SseCompletion = Record<string, unknown> & { subject?: string; data: Record<string, unknown> };

/** A Server-Sent Events reader over fetch: collects `completion` events as parsed JSON. */
export async function openEvents(url: string): Promise<{
  events: SseCompletion[];
  first: string;
  waitFor(pred: (e: SseCompletion) => boolean, timeoutMs: number): Promise<SseCompletion>;
  close(): void;
}> {
  const controller = new AbortController();
  const res = await fetch(url, { signal: controller.signal, headers: { accept: 'text/event-stream' } });
  if (!res.ok || !res.body) throw new Error(`SSE ${url}: HTTP ${res.status}`);
  if (!/^text\/event-stream/.test(res.headers.get('content-type') ?? '')) throw new Error(`SSE ${url}: content-type ${res.headers.get('content-type')}`);
  const events: SseCompletion[] = [];
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const firstChunk = await reader.read();
  const first = decoder.decode(firstChunk.value ?? new Uint8Array(), { stream: true });
  buffer += first;
  const pump = async () => {
    for (;;) {
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const name = /^event: (.*)$/m.exec(frame)?.[1];
        const data = [...frame.matchAll(/^data: (.*)$/gm)].map((m) => m[1]).join('\n');
        if (name === 'completion' && data) events.push(JSON.parse(data) as SseCompletion);
      }
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
    }
  };
  void pump().catch(() => undefined);
  return {
    events,
    first,
    async waitFor(pred, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const hit = events.find(pred);
        if (hit) return hit;
        if (Date.now() > deadline) throw new Error(`no matching completion event within ${timeoutMs} ms (got ${events.length})`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    close: () => controller.abort(),
  };
}

/** Uploads a file the way the browser helper does: signed target from the API, then the form POST to storage. */
export async function uploadViaApi(urls: DevUrls, filename: string, body: Buffer, contentType = 'image/jpeg'): Promise<{ id: string; statusUrl: string }> {
  const origin = new URL(urls.page).origin;
  const res = await fetch(urls.uploads, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin },
    body: JSON.stringify({ contentType, size: body.length, filename }),
  });
  if (res.status !== 201) throw new Error(`upload request: HTTP ${res.status} ${await res.text()}`);
  const ticket = (await res.json()) as { id: string; statusUrl: string; upload: { url: string; fields: Record<string, string> } };
  const form = new FormData();
  for (const [k, v] of Object.entries(ticket.upload.fields)) form.append(k, v);
  form.append('file', new Blob([new Uint8Array(body)], { type: contentType }), filename);
  const stored = await fetch(ticket.upload.url, { method: 'POST', body: form, headers: { origin } });
  if (stored.status >= 300) throw new Error(`storage upload: HTTP ${stored.status} ${await stored.text()}`);
  return { id: ticket.id, statusUrl: ticket.statusUrl };
}
