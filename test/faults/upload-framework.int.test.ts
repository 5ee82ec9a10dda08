/**
 * The GCP upload function as deployed: bundled with esbuild and served by the real functions-framework
 * in a child process (so its memory can be measured and nothing it installs leaks into other tests),
 * with JWT auth against a local JWKS, on 127.0.0.1. The framework's Express body parsers run before the
 * function and would inflate compressed bodies (up to 1 GiB) and answer unparsable ones with their own
 * HTML error page; the function's body guard (functions/gcp/body-guard.ts) keeps them off the body.
 * Checked with `NODE_ENV=production` (the deployment's) and with `NODE_ENV` unset (a container run by
 * hand): the function's answers must not depend on it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Transform } from 'node:stream';
import { constants, createBrotliCompress, createDeflate, createGzip } from 'node:zlib';
import { build } from 'esbuild';
import { functionEnv, makeServiceAccount } from '../gcp/gcp-test-kit';
import { startLocalIdp, type LocalIdp } from '../support/jwks';

const ROOT = join(__dirname, '..', '..');
const MiB = 1024 * 1024;
/** What the bombs may cost the server at most (unguarded, the brotli one alone costs ~500 MiB). */
const RSS_BUDGET = 48 * MiB;

interface Child {
  url: string;
  /** A plain server in the same process, echoing the request headers it got. */
  echoUrl: string;
  proc: ChildProcess;
  output: () => string;
  rss(): Promise<{ rss: number; maxRss: number }>;
  stop(): Promise<void>;
}

let dir: string;
let bundle: string;
let idp: LocalIdp;
let keyFile: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pixelpipe-upload-ff-'));
  bundle = join(dir, 'upload.js');
  // As scripts/build.mjs bundles it: one file, the framework's own copy inside.
  await build({
    entryPoints: [join(ROOT, 'functions', 'gcp', 'upload.ts')],
    outfile: bundle,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    external: ['heic-decode'],
    logLevel: 'warning',
  });
  idp = await startLocalIdp();
  keyFile = makeServiceAccount().keyFile;
}, 60_000);
afterAll(async () => {
  await idp?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A port free on 127.0.0.1 just now (the function listens on `PORT`, as deployed; the guard keys on it). */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const { port } = probe.address() as AddressInfo;
  await new Promise((r) => probe.close(r));
  return port;
}

async function startChild(nodeEnv: 'production' | undefined): Promise<Child> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    PORT: String(await freePort()),
    ...functionEnv({
      storageUrl: 'http://127.0.0.1:9',
      keyFile,
      extra: {
        PIXELPIPE_AUTH_MODE: 'jwt',
        PIXELPIPE_JWKS_URL: idp.jwksUrl,
        PIXELPIPE_JWT_ISSUER: idp.issuer,
        PIXELPIPE_JWT_AUDIENCE: idp.audience,
        PIXELPIPE_CORS_ORIGINS: 'https://app.example.com',
        PIXELPIPE_FUNCTION_TIMEOUT_SECONDS: '10',
      },
    }),
    ...(nodeEnv ? { NODE_ENV: nodeEnv } : {}),
  };
  const proc = spawn(process.execPath, [join(ROOT, 'test', 'support', 'functions-framework-child.cjs'), bundle, 'upload'], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const [port, echoPort] = await new Promise<[number, number]>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the function did not start:\n${out}`)), 20_000);
    proc.stdout!.on('data', () => {
      const m = /READY (\d+) (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve([Number(m[1]), Number(m[2])]);
      }
    });
    proc.once('exit', (code) => reject(new Error(`the function exited (${code}):\n${out}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    echoUrl: `http://127.0.0.1:${echoPort}`,
    proc,
    output: () => out,
    rss: () =>
      new Promise((resolve) => {
        proc.once('message', (m) => resolve(m as { rss: number; maxRss: number }));
        proc.send('rss');
      }),
    stop: () =>
      new Promise<void>((resolve) => {
        if (proc.exitCode !== null) return resolve();
        const kill = setTimeout(() => proc.kill('SIGKILL'), 5000);
        proc.once('exit', () => {
          clearTimeout(kill);
          resolve();
        });
        proc.disconnect();
      }),
  };
}

/** `mib` MiB of zeros through a compressor, streamed so the test itself never holds the expanded bytes. */
async function bomb(compressor: Transform, mib: number): Promise<Buffer> {
  const out: Buffer[] = [];
  compressor.on('data', (d: Buffer) => out.push(d));
  const ended = new Promise((r) => compressor.once('end', r));
  const chunk = Buffer.alloc(MiB);
  for (let i = 0; i < mib; i++) if (!compressor.write(chunk)) await new Promise((r) => compressor.once('drain', r));
  compressor.end();
  await ended;
  return Buffer.concat(out);
}

const send = (url: string, init: RequestInit) => fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
const good = JSON.stringify({ contentType: 'image/jpeg', size: 1000, filename: 'a.jpg' });

test('the image runs the functions with NODE_ENV=production (and the function does not depend on it)', () => {
  expect(readFileSync(join(ROOT, 'Dockerfile'), 'utf8')).toMatch(/^ENV NODE_ENV=production\b/m);
});

describe.each([['production'], [undefined]] as const)('functions-framework with NODE_ENV=%s', (nodeEnv) => {
  let fn: Child;
  beforeAll(async () => {
    fn = await startChild(nodeEnv);
  }, 30_000);
  afterAll(async () => {
    await fn?.stop();
  });

  test("compressed bodies (211 bytes of brotli → 128 MiB, gzip → 256 MiB, deflate) get 415 unread: the server's peak RSS stays within 48 MiB", async () => {
    const br = await bomb(createBrotliCompress({ params: { [constants.BROTLI_PARAM_QUALITY]: 4 } }), 128);
    const gz = await bomb(createGzip({ level: 9 }), 256);
    const df = await bomb(createDeflate({ level: 9 }), 64);
    expect(br.length).toBeLessThan(1024);
    // Warm: a real signing first, so the baseline includes what every request costs.
    expect(
      (await send(fn.url, { method: 'POST', headers: { authorization: `Bearer ${await idp.token()}`, 'content-type': 'application/json' }, body: good }))
        .status,
    ).toBe(201);
    const before = await fn.rss();
    for (const [encoding, body] of [
      ['br', br],
      ['gzip', gz],
      ['deflate', df],
    ] as const) {
      for (const contentType of ['application/json', 'application/octet-stream', 'text/plain']) {
        const res = await send(fn.url, { method: 'POST', headers: { 'content-type': contentType, 'content-encoding': encoding }, body: new Uint8Array(body) });
        expect({ encoding, contentType, status: res.status, body: (await res.json()) as unknown }).toEqual({
          encoding,
          contentType,
          status: 415,
          body: { error: { code: 'content_encoding_not_allowed', message: 'send the body without Content-Encoding' } },
        });
      }
    }
    const after = await fn.rss();
    expect(after.maxRss - before.maxRss).toBeLessThan(RSS_BUDGET);
  }, 60_000);

  test("bodies the framework would have refused get the function's own JSON answer: no HTML page, no stack", async () => {
    for (const [contentType, body] of [
      ['application/json', '{nope'],
      ['application/json; charset=utf-8', '{"contentType":'],
      ['application/json; charset=klingon', good.slice(0, 5)],
      ['application/cloudevents+json', '{'],
      ['application/x-www-form-urlencoded', '%E0%A4%A'],
      ['text/plain', '{nope'],
    ]) {
      const res = await send(fn.url, { method: 'POST', headers: { 'content-type': contentType, origin: 'https://app.example.com' }, body });
      const text = await res.text();
      expect({ contentType, status: res.status, type: res.headers.get('content-type'), text }).toEqual({
        contentType,
        status: 400,
        type: 'application/json; charset=utf-8',
        text: JSON.stringify({ error: { code: 'invalid_json', message: 'the body is not valid JSON' } }),
      });
      expect(res.headers.get('x-powered-by')).toBeNull();
    }
  });

  test('a JSON body over 16 KiB is a 413; a chunked one too', async () => {
    const big = JSON.stringify({ contentType: 'image/jpeg', size: 1000, filename: 'x'.repeat(20_000) });
    const res = await send(fn.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: big });
    expect(res.status).toBe(413);
    const chunked = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < 20; i++) c.enqueue(new Uint8Array(1024).fill(0x20));
        c.close();
      },
    });
    const res2 = await send(fn.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: chunked, duplex: 'half' } as RequestInit);
    expect(res2.status).toBe(413);
    expect(((await res2.json()) as { error: { code: string } }).error.code).toBe('payload_too_large');
  });

  test('only / and /uploads answer: POST /admin is a JSON 404; a lower-case bearer scheme signs', async () => {
    const auth = { authorization: `bearer ${await idp.token()}`, 'content-type': 'application/json' };
    const admin = await send(`${fn.url}/admin`, { method: 'POST', headers: auth, body: good });
    expect({ status: admin.status, body: (await admin.json()) as unknown }).toEqual({
      status: 404,
      body: { error: { code: 'not_found', message: 'no such endpoint' } },
    });
    for (const path of ['/', '/uploads', '/uploads?x=1']) {
      const res = await send(`${fn.url}${path}`, { method: 'POST', headers: auth, body: good });
      expect({ path, status: res.status }).toEqual({ path, status: 201 });
      expect(((await res.json()) as { key: string }).key).toMatch(/^originals\/alice\//);
    }
    expect(fn.output()).not.toMatch(/at \S+ \(|node_modules/);
  });

  test("the guard keys on the function's port: another server in the process keeps Content-Type and Content-Encoding", async () => {
    const res = await send(fn.echoUrl, { method: 'POST', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: '{}' });
    expect(await res.json()).toMatchObject({ 'content-type': 'application/json', 'content-encoding': 'gzip' });
  });
});
