/**
 * The GCP upload function over real HTTP, for the requests functions-framework answers itself before
 * the handler runs: a body declared `application/json` that is not JSON is refused by the framework's
 * body parser, and Express's default error page then shows the stack trace (with file paths) unless
 * `NODE_ENV=production`. The deployed image sets it (Dockerfile); this pins both halves.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { applyEnv, functionEnv, loadFunction, makeServiceAccount, serve, type ServedFunction } from '../gcp/gcp-test-kit';

const ROOT = join(__dirname, '..', '..');
let fn: ServedFunction;
let restore: () => void = () => undefined;

beforeAll(async () => {
  const sa = makeServiceAccount();
  // Express reads NODE_ENV when the framework builds its app, i.e. in getTestServer.
  restore = applyEnv(
    functionEnv({
      storageUrl: 'http://127.0.0.1:9',
      keyFile: sa.keyFile,
      extra: { NODE_ENV: 'production', PIXELPIPE_CORS_ORIGINS: 'https://app.example.com' },
    }),
  );
  fn = await serve(loadFunction(join(ROOT, 'functions', 'gcp', 'upload'), 'upload', true));
});
afterAll(async () => {
  await fn?.close();
  restore();
});

test('the image runs the functions with NODE_ENV=production', () => {
  expect(readFileSync(join(ROOT, 'Dockerfile'), 'utf8')).toMatch(/^ENV NODE_ENV=production\b/m);
});

test('with NODE_ENV=production, bodies the framework refuses get no stack, path or parser name', async () => {
  // Express logs the parse error server-side (stderr); that is fine, and kept out of the test output.
  const logged = jest.spyOn(console, 'error').mockImplementation(() => undefined);
  for (const [contentType, body] of [
    ['application/json', '{nope'],
    ['application/json; charset=utf-8', '{"contentType":'],
    ['application/cloudevents+json', '{'],
    ['application/x-www-form-urlencoded', '%E0%A4%A'],
  ]) {
    const res = await fetch(fn.url, {
      method: 'POST',
      headers: { 'content-type': contentType, origin: 'https://app.example.com' },
      body,
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    expect({ contentType, status: res.status }).toEqual({ contentType, status: 400 });
    expect({ contentType, text }).toEqual({
      contentType,
      text: expect.not.stringMatching(/at \S+ \(|node_modules|\/work\/|\.js:\d+|SyntaxError|body-parser|JSON\.parse/),
    });
    expect(res.headers.get('x-powered-by')).toBeNull();
  }
  expect(logged).toHaveBeenCalled();
  logged.mockRestore();
});

test("a request the framework passes through still gets the handler's JSON answer", async () => {
  const res = await fetch(fn.url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{nope', signal: AbortSignal.timeout(10_000) });
  expect(res.status).toBe(400);
  expect(await res.json()).toEqual({ error: { code: 'invalid_json', message: 'the body is not valid JSON' } });
});
