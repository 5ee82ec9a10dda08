/**
 * `google-auth.ts` and `google-http.ts` against local fakes of Google's endpoints (OAuth token
 * endpoint, metadata server, IAM Credentials) on 127.0.0.1: the requests they send (checked the way
 * Google checks them, e.g. the JWT's RS256 signature), token caching, refresh and single flight, the
 * ADC file lookup, and the errors.
 */
import { createVerify, verify as rsaVerify } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentialsFromJson, googleCredentialsFromEnv, metadataServerCredentials, NO_AUTH } from '../../functions/gcp/google-auth';
import { GoogleApiError, googleFetch, googleJson } from '../../functions/gcp/google-http';
import { ConfigError } from '../../shared/errors';
import { fakeServiceAccount, startGoogleFake, type GoogleFake, type RecordedRequest } from '../support/google-fake';

const SA_EMAIL = 'pixelpipe-fn@pixelpipe-test.iam.gserviceaccount.com';
const SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
const METADATA = '/computeMetadata/v1/instance/service-accounts/default';
const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);

let google: GoogleFake;
beforeAll(async () => {
  google = await startGoogleFake();
});
afterAll(() => google.close());
beforeEach(() => google.requests.splice(0));

const form = (req: RecordedRequest) => Object.fromEntries(new URLSearchParams(req.body));
const b64json = (part: string) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>;

/** A settable clock for the token cache. */
function clock(start = T0) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe('service account key: JWT-bearer grant', () => {
  test('posts an RS256 JWT signed with the key, with iss, aud, scope, iat and exp as Google requires', async () => {
    const sa = fakeServiceAccount(SA_EMAIL, `${google.url}/token`);
    google.route('POST /token', () => ({ json: { access_token: 'ya29.sa', expires_in: 3599, token_type: 'Bearer' } }));
    const c = clock();
    const creds = credentialsFromJson(sa.keyJson, 'key', { now: c.now });
    expect(creds.source).toBe('service_account_key');
    expect(await creds.accessToken()).toBe('ya29.sa');
    expect(await creds.headers()).toEqual({ authorization: 'Bearer ya29.sa' });
    expect(await creds.serviceAccountEmail()).toBe(SA_EMAIL);

    expect(google.requests).toHaveLength(1);
    const [req] = google.requests;
    expect(req.headers['content-type']).toBe('application/x-www-form-urlencoded');
    const fields = form(req);
    expect(Object.keys(fields).sort()).toEqual(['assertion', 'grant_type']);
    expect(fields.grant_type).toBe('urn:ietf:params:oauth:grant-type:jwt-bearer');
    const [h, p, sig] = fields.assertion.split('.');
    expect(b64json(h)).toEqual({ alg: 'RS256', typ: 'JWT', kid: sa.keyJson.private_key_id });
    const iat = Math.floor(T0 / 1000);
    expect(b64json(p)).toEqual({ iss: SA_EMAIL, scope: SCOPE, aud: `${google.url}/token`, iat, exp: iat + 3600 });
    expect(createVerify('RSA-SHA256').update(`${h}.${p}`).verify(sa.publicKey, Buffer.from(sig, 'base64url'))).toBe(true);
    const stranger = fakeServiceAccount('x@y.iam.gserviceaccount.com');
    expect(createVerify('RSA-SHA256').update(`${h}.${p}`).verify(stranger.publicKey, Buffer.from(sig, 'base64url'))).toBe(false);
  });

  test("signs its own blobs locally (no request), another account's through IAM", async () => {
    const sa = fakeServiceAccount(SA_EMAIL, `${google.url}/token`);
    const creds = credentialsFromJson(sa.keyJson, 'key', { iamEndpoint: google.url });
    const data = Buffer.from('GOOG4-RSA-SHA256\n20260101T000000Z\n…');
    const sig = await creds.signBlob(SA_EMAIL, data);
    expect(rsaVerify('RSA-SHA256', data, sa.publicKey, sig)).toBe(true);
    expect(google.requests).toEqual([]);
  });
});

describe('token cache', () => {
  test('a token is reused until 5 minutes before it expires, then refreshed', async () => {
    let n = 0;
    google.route(`GET ${METADATA}/token`, () => ({ json: { access_token: `t${++n}`, expires_in: 3600 } }));
    const c = clock();
    const creds = metadataServerCredentials({ metadataHost: google.host, now: c.now });
    expect(await creds.accessToken()).toBe('t1');
    c.advance(55 * 60_000 - 1000);
    expect(await creds.accessToken()).toBe('t1');
    c.advance(2000);
    expect(await creds.accessToken()).toBe('t2');
    expect(await creds.accessToken()).toBe('t2');
    expect(google.requests).toHaveLength(2);
  });

  test("a short-lived token (the metadata server's cached one) is refreshed halfway, not on every call", async () => {
    let n = 0;
    google.route(`GET ${METADATA}/token`, () => ({ json: { access_token: `t${++n}`, expires_in: 200 } }));
    const c = clock();
    const creds = metadataServerCredentials({ metadataHost: google.host, now: c.now });
    expect(await creds.accessToken()).toBe('t1');
    c.advance(99_000);
    expect(await creds.accessToken()).toBe('t1');
    c.advance(2000);
    expect(await creds.accessToken()).toBe('t2');
    expect(google.requests).toHaveLength(2);
  });

  test('a failed early refresh falls back to the still valid token; once it has expired, the error surfaces', async () => {
    let fail = false;
    google.route(`GET ${METADATA}/token`, () => (fail ? { status: 503, text: 'unavailable' } : { json: { access_token: 'old', expires_in: 3600 } }));
    const c = clock();
    const creds = metadataServerCredentials({ metadataHost: google.host, now: c.now });
    expect(await creds.accessToken()).toBe('old');
    fail = true;
    c.advance(57 * 60_000);
    expect(await creds.accessToken()).toBe('old');
    c.advance(3 * 60_000);
    await expect(creds.accessToken()).rejects.toMatchObject({ name: 'GoogleApiError', code: 503 });
    expect(google.requests).toHaveLength(3);
  });

  test('concurrent callers share one refresh (single flight), and a failure is not cached', async () => {
    let n = 0;
    google.route(`GET ${METADATA}/token`, () =>
      ++n === 1 ? { status: 500, delayMs: 50, text: 'boom' } : { delayMs: 50, json: { access_token: `t${n}`, expires_in: 3600 } },
    );
    const creds = metadataServerCredentials({ metadataHost: google.host });
    const failed = await Promise.allSettled(Array.from({ length: 10 }, () => creds.accessToken()));
    expect(failed.every((r) => r.status === 'rejected' && (r.reason as GoogleApiError).code === 500)).toBe(true);
    expect(google.requests).toHaveLength(1);
    const tokens = await Promise.all(Array.from({ length: 10 }, () => creds.accessToken()));
    expect(new Set(tokens)).toEqual(new Set(['t2']));
    expect(google.requests).toHaveLength(2);
  });

  test('a token response without access_token is an error, not an empty bearer', async () => {
    google.route(`GET ${METADATA}/token`, () => ({ json: { expires_in: 3600 } }));
    await expect(metadataServerCredentials({ metadataHost: google.host }).headers()).rejects.toThrow(/no access_token/);
  });
});

describe('authorized_user (gcloud auth application-default login)', () => {
  const user = {
    type: 'authorized_user',
    client_id: 'cid.apps.googleusercontent.com',
    client_secret: 'secret',
    refresh_token: '1//refresh',
    quota_project_id: 'pixelpipe-quota',
  };

  test('refresh-token grant; the quota project goes with every API request, IAM signBlob included', async () => {
    google.route('POST /oauth/token', () => ({ json: { access_token: 'ya29.user', expires_in: 3599, scope: SCOPE, token_type: 'Bearer' } }));
    const SIGNER = 'signer@pixelpipe-test.iam.gserviceaccount.com';
    const iamPath = `/v1/projects/-/serviceAccounts/${encodeURIComponent(SIGNER)}:signBlob`;
    google.route(`POST ${iamPath}`, () => ({ json: { keyId: 'k', signedBlob: Buffer.from('sig').toString('base64') } }));
    const creds = credentialsFromJson(user, 'adc', { tokenEndpoint: `${google.url}/oauth/token`, iamEndpoint: google.url });
    expect(creds.source).toBe('authorized_user');
    expect(await creds.serviceAccountEmail()).toBeNull();
    expect(await creds.headers()).toEqual({ authorization: 'Bearer ya29.user', 'x-goog-user-project': 'pixelpipe-quota' });
    expect((await creds.signBlob(SIGNER, Buffer.from('x'))).toString()).toBe('sig');
    const [token, iam] = google.requests;
    expect(form(token)).toEqual({ grant_type: 'refresh_token', client_id: user.client_id, client_secret: 'secret', refresh_token: '1//refresh' });
    expect(iam.headers['x-goog-user-project']).toBe('pixelpipe-quota');
    expect(iam.headers.authorization).toBe('Bearer ya29.user');
    expect(google.requests).toHaveLength(2);
  });

  test('without a quota project, only the bearer token', async () => {
    google.route('POST /oauth/token', () => ({ json: { access_token: 'u', expires_in: 3600 } }));
    const { quota_project_id: _q, ...noQuota } = user;
    expect(await credentialsFromJson(noQuota, 'adc', { tokenEndpoint: `${google.url}/oauth/token` }).headers()).toEqual({ authorization: 'Bearer u' });
  });

  test('a revoked refresh token: GoogleApiError 400 with the OAuth error', async () => {
    google.route('POST /oauth/token', () => ({ status: 400, json: { error: 'invalid_grant', error_description: 'Token has been expired or revoked.' } }));
    const err = await credentialsFromJson(user, 'adc', { tokenEndpoint: `${google.url}/oauth/token` })
      .accessToken()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GoogleApiError);
    expect(err).toMatchObject({ code: 400, status: 'invalid_grant', message: expect.stringContaining('invalid_grant: Token has been expired or revoked.') });
  });
});

describe('metadata server', () => {
  test('token and email with Metadata-Flavor: Google; the email is asked once, a failed ask is retried', async () => {
    let emailCalls = 0;
    google.route(`GET ${METADATA}/token`, () => ({ json: { access_token: 'ya29.md', expires_in: 3599, token_type: 'Bearer' } }));
    google.route(`GET ${METADATA}/email`, () => (++emailCalls === 1 ? { status: 503, text: 'not yet' } : { text: `${SA_EMAIL}\n` }));
    const creds = metadataServerCredentials({ metadataHost: google.host });
    expect(creds.source).toBe('metadata_server');
    await expect(creds.serviceAccountEmail()).rejects.toMatchObject({ code: 503 });
    const emails = await Promise.all([creds.serviceAccountEmail(), creds.serviceAccountEmail()]);
    expect(emails).toEqual([SA_EMAIL, SA_EMAIL]);
    expect(await creds.serviceAccountEmail()).toBe(SA_EMAIL);
    expect(await creds.accessToken()).toBe('ya29.md');
    expect(emailCalls).toBe(2);
    for (const r of google.requests) {
      expect(r.method).toBe('GET');
      expect(r.headers['metadata-flavor']).toBe('Google');
      expect(r.headers.authorization).toBeUndefined();
    }
  });

  test('IAM signBlob: path, bearer token, base64 payload; the signature is decoded', async () => {
    const TARGET = 'runtime@pixelpipe-test.iam.gserviceaccount.com';
    const path = `/v1/projects/-/serviceAccounts/${encodeURIComponent(TARGET)}:signBlob`;
    google.route(`GET ${METADATA}/token`, () => ({ json: { access_token: 'ya29.md', expires_in: 3599 } }));
    google.route(`POST ${path}`, () => ({ json: { keyId: 'abc', signedBlob: Buffer.from([1, 2, 3]).toString('base64') } }));
    const creds = metadataServerCredentials({ metadataHost: google.host, iamEndpoint: `${google.url}/` });
    expect([...(await creds.signBlob(TARGET, Buffer.from('to sign')))]).toEqual([1, 2, 3]);
    const iam = google.requests.find((r) => r.path === path)!;
    expect(iam.method).toBe('POST');
    expect(iam.headers.authorization).toBe('Bearer ya29.md');
    expect(JSON.parse(iam.body)).toEqual({ payload: Buffer.from('to sign').toString('base64') });
  });

  test("IAM errors carry the HTTP status and Google's status; an empty signature is refused", async () => {
    const TARGET = 'runtime@pixelpipe-test.iam.gserviceaccount.com';
    const path = `/v1/projects/-/serviceAccounts/${encodeURIComponent(TARGET)}:signBlob`;
    google.route(`GET ${METADATA}/token`, () => ({ json: { access_token: 't', expires_in: 3599 } }));
    google.route(`POST ${path}`, () => ({
      status: 403,
      json: {
        error: { code: 403, message: "Permission 'iam.serviceAccounts.signBlob' denied on resource (or it may not exist).", status: 'PERMISSION_DENIED' },
      },
    }));
    const creds = metadataServerCredentials({ metadataHost: google.host, iamEndpoint: google.url });
    const err = await creds.signBlob(TARGET, Buffer.from('x')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GoogleApiError);
    expect(err).toMatchObject({ name: 'GoogleApiError', code: 403, status: 'PERMISSION_DENIED' });
    expect((err as Error).message).toContain("Permission 'iam.serviceAccounts.signBlob' denied");
    google.route(`POST ${path}`, () => ({ json: { keyId: 'abc' } }));
    await expect(creds.signBlob(TARGET, Buffer.from('x'))).rejects.toThrow(/no signature/);
  });
});

describe('googleFetch', () => {
  test('non-2xx → GoogleApiError with the status; text bodies are quoted; query strings are not logged', async () => {
    google.route('GET /text', () => ({ status: 502, text: 'Bad Gateway from the front end' }));
    google.route('POST /empty', () => ({ status: 429, text: '' }));
    const e1 = await googleFetch(`${google.url}/text?access_token=secret`).catch((e: unknown) => e);
    expect(e1).toMatchObject({ code: 502, status: undefined, message: `GET ${google.url}/text → HTTP 502: Bad Gateway from the front end` });
    expect((e1 as Error).message).not.toContain('secret');
    await expect(googleJson(`${google.url}/empty`, { method: 'POST', body: '{}' })).rejects.toMatchObject({
      code: 429,
      message: expect.stringContaining('(empty body)'),
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

  test('NO_AUTH adds nothing', async () => {
    expect(await NO_AUTH.headers()).toEqual({});
  });
});

describe('credentials from the environment (Application Default Credentials order)', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'pixelpipe-adc-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, content: unknown) => {
    const file = join(dir, name);
    writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content), { mode: 0o600 });
    return file;
  };
  const configError = (fn: () => unknown): ConfigError => {
    try {
      fn();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return err as ConfigError;
    }
    throw new Error('expected a ConfigError');
  };

  test('GOOGLE_APPLICATION_CREDENTIALS names a service account key', async () => {
    const sa = fakeServiceAccount(SA_EMAIL);
    const creds = googleCredentialsFromEnv({ GOOGLE_APPLICATION_CREDENTIALS: write('key.json', sa.keyJson), HOME: dir, CLOUDSDK_CONFIG: dir });
    expect(creds.source).toBe('service_account_key');
    expect(await creds.serviceAccountEmail()).toBe(SA_EMAIL);
  });

  test('a missing, unreadable, unsupported or incomplete file → ConfigError naming GOOGLE_APPLICATION_CREDENTIALS', () => {
    const missing = configError(() => googleCredentialsFromEnv({ GOOGLE_APPLICATION_CREDENTIALS: join(dir, 'nope.json') }));
    expect(missing.variable).toBe('GOOGLE_APPLICATION_CREDENTIALS');
    expect(missing.message).toContain('nope.json');
    expect(configError(() => googleCredentialsFromEnv({ GOOGLE_APPLICATION_CREDENTIALS: write('bad.json', '{not json') })).variable).toBe(
      'GOOGLE_APPLICATION_CREDENTIALS',
    );
    const external = configError(() =>
      googleCredentialsFromEnv({ GOOGLE_APPLICATION_CREDENTIALS: write('wif.json', { type: 'external_account', audience: '//iam.googleapis.com/x' }) }),
    );
    expect(external).toMatchObject({ variable: 'GOOGLE_APPLICATION_CREDENTIALS', message: expect.stringContaining('"external_account" is not supported') });
    expect(
      configError(() => googleCredentialsFromEnv({ GOOGLE_APPLICATION_CREDENTIALS: write('half.json', { type: 'service_account', client_email: SA_EMAIL }) }))
        .message,
    ).toContain('lacks client_email or private_key');
    expect(
      configError(() => googleCredentialsFromEnv({ GOOGLE_APPLICATION_CREDENTIALS: write('user.json', { type: 'authorized_user', client_id: 'c' }) })).message,
    ).toContain('lack client_id, client_secret or refresh_token');
    expect(configError(() => credentialsFromJson(null, 'X')).variable).toBe('X');
  });

  test("gcloud's ADC file is found through CLOUDSDK_CONFIG (and under HOME otherwise)", async () => {
    const user = { type: 'authorized_user', client_id: 'c', client_secret: 's', refresh_token: 'r', quota_project_id: 'q' };
    write('application_default_credentials.json', user);
    expect(googleCredentialsFromEnv({ CLOUDSDK_CONFIG: dir, HOME: '/nonexistent' }).source).toBe('authorized_user');
    const home = mkdtempSync(join(tmpdir(), 'pixelpipe-home-'));
    try {
      const gcloud = join(home, '.config', 'gcloud');
      mkdirSync(gcloud, { recursive: true });
      writeFileSync(join(gcloud, 'application_default_credentials.json'), JSON.stringify(user));
      expect(googleCredentialsFromEnv({ HOME: home }).source).toBe('authorized_user');
      // An explicit key file wins over the ADC file.
      const sa = fakeServiceAccount(SA_EMAIL);
      expect(googleCredentialsFromEnv({ HOME: home, GOOGLE_APPLICATION_CREDENTIALS: write('key.json', sa.keyJson) }).source).toBe('service_account_key');
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
    const wif = write('application_default_credentials.json', { type: 'impersonated_service_account' });
    expect(configError(() => googleCredentialsFromEnv({ CLOUDSDK_CONFIG: dir })).variable).toBe(wif);
  });

  test('with neither, the metadata server (GCE_METADATA_HOST honoured), asked lazily: construction does no I/O', async () => {
    google.route(`GET ${METADATA}/email`, () => ({ text: SA_EMAIL }));
    const creds = googleCredentialsFromEnv({ CLOUDSDK_CONFIG: dir, HOME: dir, GCE_METADATA_HOST: google.host });
    expect(creds.source).toBe('metadata_server');
    await new Promise((r) => setTimeout(r, 20));
    expect(google.requests).toEqual([]);
    expect(await creds.serviceAccountEmail()).toBe(SA_EMAIL);
    expect(google.requests.map((r) => r.path)).toEqual([`${METADATA}/email`]);
  });
});
