/**
 * Our wiring of `google-auth-library` (`functions/gcp/google-auth.ts`) against local fakes of Google's
 * endpoints on 127.0.0.1: that every Application Default Credentials type reaches the endpoint it
 * should with what Google checks (the JWT grant's RS256 signature, the metadata header, the bearer
 * token), that a key signs locally and keyless credentials through IAM `signBlob`, where ADC looks
 * for credentials, and how failures map onto the pipeline's errors. Token caching and refresh timing
 * are the library's; only that tokens are reused is checked here.
 *
 * How the fakes are reached: the library sends service-account and user grants to
 * https://oauth2.googleapis.com/token whatever the key file's `token_uri` says, and IAM requests to
 * https://iamcredentials.googleapis.com, so the credentials get the fake's `fetch`, which routes
 * `*.googleapis.com` to it; the metadata server is found through `GCE_METADATA_HOST` (or `_IP`), and
 * federation files name their STS and impersonation URLs themselves.
 */
import { createVerify, sign as rsaSign, verify as rsaVerify } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  applicationDefaultCredentials,
  credentialsFromJson,
  NO_AUTH,
  type GoogleCredentials,
  type GoogleCredentialsOptions,
} from '../../functions/gcp/google-auth';
import { ConfigError, PixelpipeError, TransientError } from '../../shared/errors';
import { applyEnv } from './gcp-test-kit';
import { fakeServiceAccount, startGoogleFake, type GoogleFake, type RecordedRequest } from '../support/google-fake';

/** `expect.stringContaining`, typed for object matchers. */
const containing = (text: string): string => expect.stringContaining(text) as string;

const SA_EMAIL = 'pixelpipe-fn@pixelpipe-test.iam.gserviceaccount.com';
const SIGNER = 'signer@pixelpipe-test.iam.gserviceaccount.com';
const SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
const TOKEN = 'POST /oauth2.googleapis.com/token';
const METADATA = '/computeMetadata/v1/instance/service-accounts/default';
const signBlobPath = (email: string) => `/iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/${encodeURIComponent(email)}:signBlob`;

// Every variable the library's credential lookup reads: cleared for each test, restored after it.
const ADC_VARIABLES = [
  'GOOGLE_APPLICATION_CREDENTIALS',
  'CLOUDSDK_CONFIG',
  'HOME',
  'GCE_METADATA_HOST',
  'GCE_METADATA_IP',
  'METADATA_SERVER_DETECTION',
  'GOOGLE_CLOUD_PROJECT',
  'GCLOUD_PROJECT',
  'GOOGLE_CLOUD_QUOTA_PROJECT',
  'K_SERVICE',
  'FUNCTION_NAME',
  'CLOUD_RUN_JOB',
];

let google: GoogleFake;
let dir: string;
let restoreEnv: () => void;
beforeAll(async () => {
  google = await startGoogleFake();
});
afterAll(() => google.close());
beforeEach(() => {
  google.requests.splice(0);
  dir = mkdtempSync(join(tmpdir(), 'pixelpipe-adc-'));
  // No ADC file, no metadata server (a closed loopback port, never probed), unless a test says otherwise.
  restoreEnv = applyEnv({ HOME: dir, CLOUDSDK_CONFIG: dir, GCE_METADATA_HOST: '127.0.0.1:9', METADATA_SERVER_DETECTION: 'none' });
  for (const k of ADC_VARIABLES) if (!['HOME', 'CLOUDSDK_CONFIG', 'GCE_METADATA_HOST', 'METADATA_SERVER_DETECTION'].includes(k)) delete process.env[k];
});
afterEach(() => {
  restoreEnv();
  rmSync(dir, { recursive: true, force: true });
});

const options = (extra: GoogleCredentialsOptions = {}): GoogleCredentialsOptions => ({ fetch: google.fetch, projectId: 'pixelpipe-test', ...extra });
const form = (req: RecordedRequest) => Object.fromEntries(new URLSearchParams(req.body));
const b64json = (part: string) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>;
const write = (name: string, content: unknown) => {
  const file = join(dir, name);
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content), { mode: 0o600 });
  return file;
};
const failure = (p: Promise<unknown>) =>
  p.then(
    () => new Error('expected a rejection'),
    (e: unknown) => e,
  );
/** An IAM route that signs what it is given with `key`, as IAM signs with the account's Google-held key. */
const iamSigner = (key: Parameters<typeof rsaSign>[2]) => (req: RecordedRequest) => ({
  json: {
    keyId: 'k1',
    signedBlob: rsaSign('RSA-SHA256', Buffer.from((JSON.parse(req.body) as { payload: string }).payload, 'base64'), key).toString('base64'),
  },
});

describe('service account key', () => {
  test('JWT-bearer grant signed RS256 with the key (iss, scope, aud, iat, exp); the token is reused', async () => {
    const sa = fakeServiceAccount(SA_EMAIL);
    google.route(TOKEN, () => ({ json: { access_token: 'ya29.sa', expires_in: 3599, token_type: 'Bearer' } }));
    const creds = credentialsFromJson(sa.keyJson, 'key', options());
    expect(await creds.source()).toBe('service_account');
    expect(await creds.headers()).toMatchObject({ authorization: 'Bearer ya29.sa' });
    expect(await creds.headers()).toMatchObject({ authorization: 'Bearer ya29.sa' });
    expect(await creds.serviceAccountEmail()).toBe(SA_EMAIL);

    expect(google.requests).toHaveLength(1);
    const [req] = google.requests;
    expect(`${req.method} ${req.path}`).toBe(TOKEN);
    const fields = form(req);
    expect(fields.grant_type).toBe('urn:ietf:params:oauth:grant-type:jwt-bearer');
    const [h, p, sig] = fields.assertion.split('.');
    expect(b64json(h)).toMatchObject({ alg: 'RS256' });
    const claims = b64json(p);
    expect(claims).toMatchObject({ iss: SA_EMAIL, scope: SCOPE, aud: 'https://oauth2.googleapis.com/token' });
    expect(claims.exp).toBe((claims.iat as number) + 3600);
    expect(Math.abs((claims.iat as number) - Date.now() / 1000)).toBeLessThan(60);
    expect(createVerify('RSA-SHA256').update(`${h}.${p}`).verify(sa.publicKey, Buffer.from(sig, 'base64url'))).toBe(true);
    const stranger = fakeServiceAccount('x@y.iam.gserviceaccount.com');
    expect(createVerify('RSA-SHA256').update(`${h}.${p}`).verify(stranger.publicKey, Buffer.from(sig, 'base64url'))).toBe(false);
  });

  test("signs as itself locally (no request); another account's signature comes from IAM signBlob with the key's token", async () => {
    const sa = fakeServiceAccount(SA_EMAIL);
    const signer = fakeServiceAccount(SIGNER);
    google.route(TOKEN, () => ({ json: { access_token: 'ya29.sa', expires_in: 3599 } }));
    google.route(`POST ${signBlobPath(SIGNER)}`, iamSigner(signer.privateKey));
    const creds = credentialsFromJson(sa.keyJson, 'key', options());
    const data = 'GOOG4-RSA-SHA256\n20260101T000000Z\n20260101/auto/storage/goog4_request\nabc';
    expect(rsaVerify('RSA-SHA256', Buffer.from(data), sa.publicKey, await creds.signBlob(SA_EMAIL, data))).toBe(true);
    expect(google.requests).toEqual([]);

    expect(rsaVerify('RSA-SHA256', Buffer.from(data), signer.publicKey, await creds.signBlob(SIGNER, data))).toBe(true);
    expect(google.requests.map((r) => `${r.method} ${r.path}`)).toEqual([TOKEN, `POST ${signBlobPath(SIGNER)}`]);
    const iam = google.requests[1];
    expect(iam.headers.authorization).toBe('Bearer ya29.sa');
    expect(JSON.parse(iam.body)).toEqual({ payload: Buffer.from(data).toString('base64') });
  });

  test('a refused grant is permanent; a token endpoint answering 503 or refusing connections is transient auth_unavailable', async () => {
    const sa = fakeServiceAccount(SA_EMAIL);
    google.route(TOKEN, () => ({ status: 400, json: { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' } }));
    const refused = await failure(credentialsFromJson(sa.keyJson, 'key', options()).headers());
    expect(refused).toBeInstanceOf(PixelpipeError);
    expect(refused).not.toBeInstanceOf(TransientError);
    expect(refused).toMatchObject({ code: 'internal', retryable: false, message: containing('Invalid JWT Signature') });

    google.route(TOKEN, () => ({ status: 503, text: 'unavailable' }));
    expect(await failure(credentialsFromJson(sa.keyJson, 'key', options()).headers())).toMatchObject({ code: 'auth_unavailable', retryable: true });
    // No retries inside the library: resilient() around the caller owns them (and the deadline).
    expect(google.requests.filter((r) => r.path === '/oauth2.googleapis.com/token')).toHaveLength(2);

    const gone = await startGoogleFake();
    await gone.close();
    const unreachable = await failure(credentialsFromJson(sa.keyJson, 'key', options({ fetch: gone.fetch })).headers());
    expect(unreachable).toMatchObject({ code: 'auth_unavailable', retryable: true, message: containing('ECONNREFUSED') });
  });

  test('a token endpoint slower than timeoutMs is aborted (the connection closed): transient auth_unavailable', async () => {
    const key = fakeServiceAccount(SA_EMAIL).keyJson;
    google.route(TOKEN, () => ({ delayMs: 5000, json: { access_token: 'late', expires_in: 3600 } }));
    const err = await failure(credentialsFromJson(key, 'key', options({ timeoutMs: 100 })).headers());
    expect(err).toMatchObject({ code: 'auth_unavailable', retryable: true });
    await google.closedUnanswered(google.requests[0], 3000);
    expect(google.requests).toHaveLength(1);
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

  test('refresh-token grant; the quota project goes with every request, IAM signBlob included; no service account of its own', async () => {
    google.route(TOKEN, () => ({ json: { access_token: 'ya29.user', expires_in: 3599, scope: SCOPE, token_type: 'Bearer' } }));
    const signer = fakeServiceAccount(SIGNER);
    google.route(`POST ${signBlobPath(SIGNER)}`, iamSigner(signer.privateKey));
    const creds = credentialsFromJson(user, 'adc', options());
    expect(await creds.source()).toBe('authorized_user');
    expect(await creds.serviceAccountEmail()).toBeNull();
    expect(await creds.headers()).toMatchObject({ authorization: 'Bearer ya29.user', 'x-goog-user-project': 'pixelpipe-quota' });
    expect(rsaVerify('RSA-SHA256', Buffer.from('x'), signer.publicKey, await creds.signBlob(SIGNER, 'x'))).toBe(true);
    const [token, iam] = google.requests;
    expect(form(token)).toMatchObject({ grant_type: 'refresh_token', client_id: user.client_id, client_secret: 'secret', refresh_token: '1//refresh' });
    expect(iam.path).toBe(signBlobPath(SIGNER));
    expect(iam.headers.authorization).toBe('Bearer ya29.user');
    expect(iam.headers['x-goog-user-project']).toBe('pixelpipe-quota');
    expect(google.requests).toHaveLength(2);
  });

  test('concurrent callers share one token request', async () => {
    let n = 0;
    google.route(TOKEN, () => ({ delayMs: 50, json: { access_token: `t${++n}`, expires_in: 3600 } }));
    const creds = credentialsFromJson(user, 'adc', options());
    const all = await Promise.all(Array.from({ length: 10 }, () => creds.headers()));
    expect(new Set(all.map((h) => h.authorization))).toEqual(new Set(['Bearer t1']));
    expect(google.requests).toHaveLength(1);
  });

  test('a revoked refresh token (400 invalid_grant) is permanent', async () => {
    google.route(TOKEN, () => ({ status: 400, json: { error: 'invalid_grant', error_description: 'Token has been expired or revoked.' } }));
    const err = await failure(credentialsFromJson(user, 'adc', options()).headers());
    expect(err).not.toBeInstanceOf(TransientError);
    expect(err).toMatchObject({ code: 'internal', retryable: false, message: containing('HTTP 400') });
  });
});

describe('metadata server (Cloud Functions, Cloud Run, GCE)', () => {
  beforeEach(() => {
    process.env.GCE_METADATA_HOST = google.host;
    // The library would otherwise ping the server to detect Google Cloud; the fake is always there.
    process.env.METADATA_SERVER_DETECTION = 'assume-present';
  });

  test('found by ADC when there is no key or ADC file; asked lazily, with Metadata-Flavor; token and email cached', async () => {
    google.route(`GET ${METADATA}/token`, () => ({ json: { access_token: 'ya29.md', expires_in: 3599, token_type: 'Bearer' } }));
    google.route(`GET ${METADATA}/email`, () => ({ text: SA_EMAIL }));
    const creds = applicationDefaultCredentials(options());
    await new Promise((r) => setTimeout(r, 20));
    expect(google.requests).toEqual([]);
    expect(await creds.source()).toBe('metadata_server');
    expect(await creds.headers()).toMatchObject({ authorization: 'Bearer ya29.md' });
    expect(await creds.headers()).toMatchObject({ authorization: 'Bearer ya29.md' });
    expect(await Promise.all([creds.serviceAccountEmail(), creds.serviceAccountEmail()])).toEqual([SA_EMAIL, SA_EMAIL]);
    expect(await creds.serviceAccountEmail()).toBe(SA_EMAIL);
    expect(google.requests.map((r) => r.path).sort()).toEqual([`${METADATA}/email`, `${METADATA}/token`]);
    for (const r of google.requests) {
      expect(r.method).toBe('GET');
      expect(r.headers['metadata-flavor']).toBe('Google');
      expect(r.headers.authorization).toBeUndefined();
    }
  });

  test('GCE_METADATA_IP is honoured too', async () => {
    process.env.GCE_METADATA_HOST = '127.0.0.1:9';
    process.env.GCE_METADATA_IP = google.host;
    google.route(`GET ${METADATA}/token`, () => ({ json: { access_token: 'ya29.ip', expires_in: 3599 } }));
    expect(await applicationDefaultCredentials(options()).headers()).toMatchObject({ authorization: 'Bearer ya29.ip' });
  });

  test('a failed email lookup is not cached', async () => {
    let calls = 0;
    google.route(`GET ${METADATA}/email`, () => (++calls === 1 ? { status: 404, text: 'not yet' } : { text: SA_EMAIL }));
    const creds = applicationDefaultCredentials(options());
    expect(await failure(creds.serviceAccountEmail())).toMatchObject({ retryable: false, message: containing('404') });
    expect(await creds.serviceAccountEmail()).toBe(SA_EMAIL);
    expect(calls).toBe(2);
  });

  test('keyless signing: IAM signBlob for the runtime account with the metadata token, payload base64, signature decoded', async () => {
    const runtime = fakeServiceAccount(SA_EMAIL);
    google.route(`GET ${METADATA}/token`, () => ({ json: { access_token: 'ya29.md', expires_in: 3599 } }));
    google.route(`POST ${signBlobPath(SA_EMAIL)}`, iamSigner(runtime.privateKey));
    const creds = applicationDefaultCredentials(options());
    const sig = await creds.signBlob(SA_EMAIL, 'to sign');
    expect(rsaVerify('RSA-SHA256', Buffer.from('to sign'), runtime.publicKey, sig)).toBe(true);
    const iam = google.requests.find((r) => r.path === signBlobPath(SA_EMAIL))!;
    expect(iam.method).toBe('POST');
    expect(iam.headers.authorization).toBe('Bearer ya29.md');
    expect(iam.headers['content-type']).toMatch(/^application\/json/);
    expect(JSON.parse(iam.body)).toEqual({ payload: Buffer.from('to sign').toString('base64') });
  });

  test("IAM refusals are permanent with Google's message, 5xx transient, an empty signature refused", async () => {
    google.route(`GET ${METADATA}/token`, () => ({ json: { access_token: 't', expires_in: 3599 } }));
    const path = signBlobPath(SIGNER);
    google.route(`POST ${path}`, () => ({
      status: 403,
      json: {
        error: { code: 403, message: "Permission 'iam.serviceAccounts.signBlob' denied on resource (or it may not exist).", status: 'PERMISSION_DENIED' },
      },
    }));
    const creds = applicationDefaultCredentials(options());
    const denied = await failure(creds.signBlob(SIGNER, 'x'));
    expect(denied).not.toBeInstanceOf(TransientError);
    expect(denied).toMatchObject({ code: 'internal', retryable: false, message: containing("Permission 'iam.serviceAccounts.signBlob' denied") });
    google.route(`POST ${path}`, () => ({ status: 503, json: { error: { code: 503, message: 'try later', status: 'UNAVAILABLE' } } }));
    expect(await failure(creds.signBlob(SIGNER, 'x'))).toMatchObject({ code: 'auth_unavailable', retryable: true });
    google.route(`POST ${path}`, () => ({ json: { keyId: 'abc' } }));
    expect(await failure(creds.signBlob(SIGNER, 'x'))).toMatchObject({ retryable: false, message: containing('no signature') });
  });

  test('an aborted signal cancels the IAM request (the connection is closed)', async () => {
    google.route(`GET ${METADATA}/token`, () => ({ json: { access_token: 't', expires_in: 3599 } }));
    google.route(`POST ${signBlobPath(SIGNER)}`, () => ({ delayMs: 5000, json: { signedBlob: 'AA==' } }));
    const err = await failure(applicationDefaultCredentials(options()).signBlob(SIGNER, 'x', { signal: AbortSignal.timeout(100) }));
    expect(err).toMatchObject({ code: 'auth_unavailable', retryable: true });
    await google.closedUnanswered(
      google.requests.find((r) => r.path === signBlobPath(SIGNER))!,
      3000,
    );
  });
});

describe('workload identity federation (external_account)', () => {
  const POOL_SA = 'wif-runner@pixelpipe-test.iam.gserviceaccount.com';

  /** An identity-pool ADC file with a file-sourced subject token, exchanged at the fake STS, optionally impersonating. */
  function externalAccount(impersonate: boolean) {
    const subjectToken = write('oidc-token.txt', 'eyJ.subject.token');
    return {
      type: 'external_account',
      audience: '//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/pool/providers/github',
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      token_url: `${google.url}/v1/token`,
      credential_source: { file: subjectToken },
      ...(impersonate ? { service_account_impersonation_url: `${google.url}/v1/projects/-/serviceAccounts/${POOL_SA}:generateAccessToken` } : {}),
    };
  }

  beforeEach(() => {
    google.route('POST /v1/token', () => ({
      json: { access_token: 'sts-token', issued_token_type: 'urn:ietf:params:oauth:token-type:access_token', token_type: 'Bearer', expires_in: 3600 },
    }));
    google.route(`POST /v1/projects/-/serviceAccounts/${POOL_SA}:generateAccessToken`, () => ({
      json: { accessToken: 'impersonated-token', expireTime: new Date(Date.now() + 3600_000).toISOString() },
    }));
  });

  test('the subject token is exchanged at STS, then impersonates the service account, which signs through IAM', async () => {
    const pool = fakeServiceAccount(POOL_SA);
    google.route(`POST ${signBlobPath(POOL_SA)}`, iamSigner(pool.privateKey));
    process.env.GOOGLE_APPLICATION_CREDENTIALS = write('wif.json', externalAccount(true));
    const creds = applicationDefaultCredentials(options());
    expect(await creds.source()).toBe('external_account');
    expect(await creds.serviceAccountEmail()).toBe(POOL_SA);
    expect(await creds.headers()).toMatchObject({ authorization: 'Bearer impersonated-token' });
    expect(rsaVerify('RSA-SHA256', Buffer.from('blob'), pool.publicKey, await creds.signBlob(POOL_SA, 'blob'))).toBe(true);

    const [sts, impersonation, iam] = google.requests;
    expect(sts.path).toBe('/v1/token');
    expect(form(sts)).toMatchObject({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      audience: externalAccount(true).audience,
      subject_token: 'eyJ.subject.token',
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
    });
    expect(impersonation.headers.authorization).toBe('Bearer sts-token');
    expect(JSON.parse(impersonation.body)).toMatchObject({ scope: [SCOPE] });
    expect(iam.path).toBe(signBlobPath(POOL_SA));
    expect(iam.headers.authorization).toBe('Bearer impersonated-token');
  });

  test('without impersonation it is a federated identity, not a service account: no email to sign as', async () => {
    const creds = credentialsFromJson(externalAccount(false), 'wif', options());
    expect(await creds.headers()).toMatchObject({ authorization: 'Bearer sts-token' });
    expect(await creds.serviceAccountEmail()).toBeNull();
  });
});

describe('impersonated_service_account ADC file', () => {
  const TARGET = 'target@pixelpipe-test.iam.gserviceaccount.com';

  test('the source credentials impersonate the target, which is who signs (through IAM, as the source)', async () => {
    // The library builds the source client itself, without our transport, and would send an
    // authorized_user or service-account source's grant to oauth2.googleapis.com: so the source here
    // is a federated identity whose STS URL is the fake. Impersonated's `endpoint` option (default
    // https://iamcredentials.<universe_domain>) is taken from the file's fields like its other options.
    const target = fakeServiceAccount(TARGET);
    google.route('POST /v1/token', () => ({ json: { access_token: 'source-token', token_type: 'Bearer', expires_in: 3600 } }));
    google.route(`POST /v1/projects/-/serviceAccounts/${TARGET}:generateAccessToken`, () => ({
      json: { accessToken: 'target-token', expireTime: new Date(Date.now() + 3600_000).toISOString() },
    }));
    google.route(`POST /v1/projects/-/serviceAccounts/${TARGET}:signBlob`, iamSigner(target.privateKey));
    const file = write('application_default_credentials.json', {
      type: 'impersonated_service_account',
      service_account_impersonation_url: `https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/${TARGET}:generateAccessToken`,
      delegates: [],
      endpoint: google.url,
      source_credentials: {
        type: 'external_account',
        audience: '//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/pool/providers/p',
        subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
        token_url: `${google.url}/v1/token`,
        credential_source: { file: write('subject.txt', 'subject') },
      },
    });
    expect(file).toBe(join(process.env.CLOUDSDK_CONFIG!, 'application_default_credentials.json'));
    const creds = applicationDefaultCredentials(options());
    expect(await creds.source()).toBe('impersonated_service_account');
    expect(await creds.serviceAccountEmail()).toBe(TARGET);
    expect(await creds.headers()).toMatchObject({ authorization: 'Bearer target-token' });
    expect(rsaVerify('RSA-SHA256', Buffer.from('blob'), target.publicKey, await creds.signBlob(TARGET, 'blob'))).toBe(true);
    const byPath = (suffix: string) => google.requests.filter((r) => r.path.endsWith(suffix));
    expect(byPath(':generateAccessToken')[0].headers.authorization).toBe('Bearer source-token');
    expect(JSON.parse(byPath(':generateAccessToken')[0].body)).toMatchObject({ scope: [SCOPE], delegates: [] });
    const [sign] = byPath(':signBlob');
    expect(sign.headers.authorization).toBe('Bearer source-token');
    expect(JSON.parse(sign.body)).toMatchObject({ payload: Buffer.from('blob').toString('base64') });
  });
});

describe('Application Default Credentials: where they are found, and broken files', () => {
  const user = { type: 'authorized_user', client_id: 'c', client_secret: 's', refresh_token: 'r' };
  const configError = (fn: () => unknown): ConfigError => {
    try {
      fn();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return err as ConfigError;
    }
    throw new Error('expected a ConfigError');
  };
  const sourceOf = (c: GoogleCredentials) => c.source();

  test('GOOGLE_APPLICATION_CREDENTIALS wins over the gcloud ADC file (found through CLOUDSDK_CONFIG)', async () => {
    write('application_default_credentials.json', user);
    expect(await sourceOf(applicationDefaultCredentials(options()))).toBe('authorized_user');
    process.env.GOOGLE_APPLICATION_CREDENTIALS = write('key.json', fakeServiceAccount(SA_EMAIL).keyJson);
    const creds = applicationDefaultCredentials(options());
    expect(await sourceOf(creds)).toBe('service_account');
    expect(await creds.serviceAccountEmail()).toBe(SA_EMAIL);
  });

  test('without CLOUDSDK_CONFIG, the ADC file under HOME/.config/gcloud', async () => {
    delete process.env.CLOUDSDK_CONFIG;
    mkdirSync(join(dir, '.config', 'gcloud'), { recursive: true });
    write(join('.config', 'gcloud', 'application_default_credentials.json'), user);
    expect(await sourceOf(applicationDefaultCredentials(options()))).toBe('authorized_user');
  });

  test('a missing, unparsable or incomplete GOOGLE_APPLICATION_CREDENTIALS file fails at construction (cold start), naming the variable', () => {
    process.env.GOOGLE_APPLICATION_CREDENTIALS = join(dir, 'nope.json');
    expect(configError(() => applicationDefaultCredentials(options()))).toMatchObject({
      variable: 'GOOGLE_APPLICATION_CREDENTIALS',
      message: containing('nope.json'),
    });
    process.env.GOOGLE_APPLICATION_CREDENTIALS = write('bad.json', '{not json');
    expect(configError(() => applicationDefaultCredentials(options())).variable).toBe('GOOGLE_APPLICATION_CREDENTIALS');
    process.env.GOOGLE_APPLICATION_CREDENTIALS = write('half.json', { type: 'service_account', client_email: SA_EMAIL });
    expect(configError(() => applicationDefaultCredentials(options())).message).toContain('private_key');
    process.env.GOOGLE_APPLICATION_CREDENTIALS = write('badkey.json', { type: 'service_account', client_email: SA_EMAIL, private_key: 'not a PEM' });
    expect(configError(() => applicationDefaultCredentials(options())).message).toContain('private_key does not parse');
    process.env.GOOGLE_APPLICATION_CREDENTIALS = write('user.json', { type: 'authorized_user', client_id: 'c' });
    expect(configError(() => applicationDefaultCredentials(options())).message).toMatch(/authorized_user.*client_secret/);
    process.env.GOOGLE_APPLICATION_CREDENTIALS = write('wif.json', { type: 'external_account' });
    expect(configError(() => applicationDefaultCredentials(options())).message).toContain('"external_account" credentials are not usable');
    expect(configError(() => credentialsFromJson(null, 'X')).variable).toBe('X');
    expect(configError(() => credentialsFromJson([], 'X')).message).toContain('not a JSON object');
  });

  test('a broken gcloud ADC file, or no credentials anywhere, is a ConfigError on first use (no request is made)', async () => {
    write('application_default_credentials.json', '{"type": "authorized_user"');
    const broken = await failure(applicationDefaultCredentials(options()).headers());
    expect(broken).toBeInstanceOf(ConfigError);
    expect(broken).toMatchObject({ retryable: false, message: containing('no usable Google credentials') });
    rmSync(join(dir, 'application_default_credentials.json'));
    const none = applicationDefaultCredentials(options());
    for (const attempt of [none.headers(), none.serviceAccountEmail(), none.signBlob(SA_EMAIL, 'x')]) {
      expect(await failure(attempt)).toMatchObject({
        code: 'invalid_config',
        retryable: false,
        message: containing('Could not load the default credentials'),
      });
    }
    expect(google.requests).toEqual([]);
  });

  test('NO_AUTH (emulators) adds nothing', async () => {
    expect(await NO_AUTH.headers()).toEqual({});
  });
});
