/**
 * `google-http.ts`, the `fetch` path of the REST adapters (Storage JSON API reads, Pub/Sub publish),
 * against a local fake on 127.0.0.1: error bodies, redaction, deadlines and socket errors.
 */
import { googleFetch, googleJson } from '../../functions/gcp/google-http';
import { startGoogleFake, type GoogleFake } from '../support/google-fake';

/** `expect.stringContaining`, typed for object matchers. */
const containing = (text: string): string => expect.stringContaining(text) as string;

let google: GoogleFake;
beforeAll(async () => {
  google = await startGoogleFake();
});
afterAll(() => google.close());

test('non-2xx → GoogleApiError with the status; text bodies are quoted; query strings are not logged', async () => {
  google.route('GET /text', () => ({ status: 502, text: 'Bad Gateway from the front end' }));
  google.route('POST /empty', () => ({ status: 429, text: '' }));
  const e1 = await googleFetch(`${google.url}/text?access_token=secret`).catch((e: unknown) => e);
  expect(e1).toMatchObject({ code: 502, status: undefined, message: `GET ${google.url}/text → HTTP 502: Bad Gateway from the front end` });
  expect((e1 as Error).message).not.toContain('secret');
  await expect(googleJson(`${google.url}/empty`, { method: 'POST', body: '{}' })).rejects.toMatchObject({
    code: 429,
    message: containing('(empty body)'),
  });
});

test("Google's JSON error bodies give the message and the canonical status; OAuth errors their description", async () => {
  google.route('GET /denied', () => ({ status: 403, json: { error: { code: 403, message: 'caller lacks permission', status: 'PERMISSION_DENIED' } } }));
  google.route('POST /oauth', () => ({ status: 400, json: { error: 'invalid_grant', error_description: 'Token has been expired or revoked.' } }));
  await expect(googleFetch(`${google.url}/denied`)).rejects.toMatchObject({
    code: 403,
    status: 'PERMISSION_DENIED',
    message: containing('caller lacks permission'),
  });
  await expect(googleFetch(`${google.url}/oauth`, { method: 'POST' })).rejects.toMatchObject({
    code: 400,
    status: 'invalid_grant',
    message: containing('invalid_grant: Token has been expired or revoked.'),
  });
});

test('a request past its deadline is aborted with a TimeoutError', async () => {
  google.route('GET /slow', () => ({ delayMs: 2000, text: 'late' }));
  const started = Date.now();
  await expect(googleFetch(`${google.url}/slow`, { timeoutMs: 100 })).rejects.toMatchObject({ name: 'TimeoutError' });
  expect(Date.now() - started).toBeLessThan(1500);
});

test("a refused connection surfaces as fetch's TypeError with the socket code in cause", async () => {
  const gone = await startGoogleFake();
  const url = gone.url;
  await gone.close();
  await expect(googleFetch(`${url}/x`)).rejects.toMatchObject({ name: 'TypeError', cause: { code: 'ECONNREFUSED' } });
});
