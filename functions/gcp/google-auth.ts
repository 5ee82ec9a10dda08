/**
 * Google credentials for the adapters that call Google's REST APIs directly (see `google-http.ts` for
 * why they do not use the client libraries).
 *
 * Three sources, found the way Application Default Credentials finds them:
 * 1. `GOOGLE_APPLICATION_CREDENTIALS` naming a key file (`service_account` or `authorized_user`);
 * 2. gcloud's ADC file (`gcloud auth application-default login`);
 * 3. the metadata server (Cloud Functions, Cloud Run, GCE) — what runs in production.
 * Other ADC types (workload identity federation, impersonation files) are refused with an error that
 * says so, rather than half supported.
 */
import { createPrivateKey, createSign, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../shared/errors';
import { googleJson, googleFetch } from './google-http';

/** Adds authentication to requests for a Google API. */
export interface RequestAuthorizer {
  /** Headers to send with a request: `authorization`, and the quota project for user credentials. */
  headers(): Promise<Record<string, string>>;
}

/** For local emulators, which take no credentials. */
export const NO_AUTH: RequestAuthorizer = { headers: async () => ({}) };

/**
 * Credentials that can call Google APIs and sign as a service account (the V4 signed URL port needs
 * both). Tokens are cached and refreshed a few minutes before they expire; concurrent callers share
 * one refresh.
 */
export interface GoogleCredentials extends RequestAuthorizer {
  /** Where they came from, for logs and errors. */
  readonly source: 'service_account_key' | 'authorized_user' | 'metadata_server';
  /** A bearer token with the `cloud-platform` scope. */
  accessToken(): Promise<string>;
  /** The service account these credentials are; `null` for a user's credentials. */
  serviceAccountEmail(): Promise<string | null>;
  /**
   * RSA-SHA256 signature of `data` as `email`: locally when the credentials hold that account's key,
   * otherwise through IAM `signBlob` (the caller needs `iam.serviceAccounts.signBlob` on `email`).
   */
  signBlob(email: string, data: Buffer): Promise<Buffer>;
}

/** Where the sources send their requests; tests point them at local servers. */
export interface GoogleAuthOptions {
  /** `host[:port]` of the metadata server (Google's libraries read `GCE_METADATA_HOST` likewise). */
  metadataHost?: string;
  /** Base URL of the IAM Credentials API. */
  iamEndpoint?: string;
  /** OAuth token endpoint for user credentials (service-account keys carry their own `token_uri`). */
  tokenEndpoint?: string;
  /** Milliseconds since the epoch; tokens expire by it. */
  now?: () => number;
  timeoutMs?: number;
}

const SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
const GOOGLE_TOKEN_URI = 'https://oauth2.googleapis.com/token';
const IAM_ENDPOINT = 'https://iamcredentials.googleapis.com';
// Refresh this long before expiry, so a token is never sent in its last seconds (clock skew, slow requests).
const REFRESH_MARGIN_MS = 5 * 60_000;
// A token this close to expiry is not worth sending when a refresh has failed.
const MIN_USABLE_MS = 30_000;

interface TokenResponse {
  access_token?: unknown;
  expires_in?: unknown;
}

/** A service-account key file's fields used here. */
interface ServiceAccountKey {
  type: 'service_account';
  client_email: string;
  private_key: string;
  private_key_id?: string;
  token_uri?: string;
}

/** A user's ADC file (`gcloud auth application-default login`). */
interface AuthorizedUser {
  type: 'authorized_user';
  client_id: string;
  client_secret: string;
  refresh_token: string;
  quota_project_id?: string;
}

abstract class BaseCredentials implements GoogleCredentials {
  abstract readonly source: GoogleCredentials['source'];
  private cached?: { token: string; expiresAt: number; refreshAt: number };
  private inFlight?: Promise<string>;
  protected readonly now: () => number;
  protected readonly timeoutMs: number | undefined;
  private readonly iamEndpoint: string;

  constructor(options: GoogleAuthOptions) {
    this.now = options.now ?? Date.now;
    this.timeoutMs = options.timeoutMs;
    this.iamEndpoint = (options.iamEndpoint ?? IAM_ENDPOINT).replace(/\/$/, '');
  }

  /** Fetches a fresh token and its lifetime in seconds. */
  protected abstract fetchToken(): Promise<TokenResponse>;
  abstract serviceAccountEmail(): Promise<string | null>;

  async accessToken(): Promise<string> {
    const cached = this.cached;
    if (cached && cached.refreshAt > this.now()) return cached.token;
    this.inFlight ??= this.refresh().finally(() => (this.inFlight = undefined));
    try {
      return await this.inFlight;
    } catch (err) {
      // Refreshing early is a precaution: while the old token is still good, a failed refresh must not fail the call.
      if (cached && cached.expiresAt - MIN_USABLE_MS > this.now()) return cached.token;
      throw err;
    }
  }

  async headers(): Promise<Record<string, string>> {
    return { authorization: `Bearer ${await this.accessToken()}` };
  }

  async signBlob(email: string, data: Buffer): Promise<Buffer> {
    const url = `${this.iamEndpoint}/v1/projects/-/serviceAccounts/${encodeURIComponent(email)}:signBlob`;
    const body = await googleJson<{ signedBlob?: unknown }>(url, {
      method: 'POST',
      headers: { ...(await this.headers()), 'content-type': 'application/json' },
      body: JSON.stringify({ payload: data.toString('base64') }),
      timeoutMs: this.timeoutMs,
    });
    if (typeof body.signedBlob !== 'string' || !body.signedBlob) throw new Error(`IAM signBlob for ${email} returned no signature`);
    return Buffer.from(body.signedBlob, 'base64');
  }

  private async refresh(): Promise<string> {
    const started = this.now();
    const r = await this.fetchToken();
    if (typeof r.access_token !== 'string' || !r.access_token) throw new Error(`${this.source}: the token response has no access_token`);
    const lifetimeMs = (typeof r.expires_in === 'number' && r.expires_in > 0 ? r.expires_in : 3600) * 1000;
    // The metadata server hands out its cached token with the time it has left, which can be under the
    // margin: then refresh halfway instead of on every call.
    const margin = Math.min(REFRESH_MARGIN_MS, lifetimeMs / 2);
    this.cached = { token: r.access_token, expiresAt: started + lifetimeMs, refreshAt: started + lifetimeMs - margin };
    return r.access_token;
  }
}

/** A service-account key: tokens through the JWT-bearer grant, signatures computed locally. */
class ServiceAccountKeyCredentials extends BaseCredentials {
  readonly source = 'service_account_key' as const;
  private readonly key: KeyObject;

  constructor(
    private readonly sa: ServiceAccountKey,
    options: GoogleAuthOptions,
  ) {
    super(options);
    this.key = createPrivateKey(sa.private_key);
  }

  async serviceAccountEmail(): Promise<string> {
    return this.sa.client_email;
  }

  override async signBlob(email: string, data: Buffer): Promise<Buffer> {
    // Signing as another account (PIXELPIPE_SIGNER_SERVICE_ACCOUNT) goes through IAM even with a key.
    if (email !== this.sa.client_email) return super.signBlob(email, data);
    return createSign('RSA-SHA256').update(data).sign(this.key);
  }

  protected async fetchToken(): Promise<TokenResponse> {
    const tokenUri = this.sa.token_uri ?? GOOGLE_TOKEN_URI;
    const iat = Math.floor(this.now() / 1000);
    const header = { alg: 'RS256', typ: 'JWT', ...(this.sa.private_key_id ? { kid: this.sa.private_key_id } : {}) };
    const claims = { iss: this.sa.client_email, scope: SCOPE, aud: tokenUri, iat, exp: iat + 3600 };
    const unsigned = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const assertion = `${unsigned}.${createSign('RSA-SHA256').update(unsigned).sign(this.key).toString('base64url')}`;
    return postForm(tokenUri, { grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }, this.timeoutMs);
  }
}

/** A user's refresh token. It can call APIs (and IAM signBlob on an account it may impersonate) but has no key. */
class AuthorizedUserCredentials extends BaseCredentials {
  readonly source = 'authorized_user' as const;
  private readonly tokenEndpoint: string;

  constructor(
    private readonly user: AuthorizedUser,
    options: GoogleAuthOptions,
  ) {
    super(options);
    this.tokenEndpoint = options.tokenEndpoint ?? GOOGLE_TOKEN_URI;
  }

  async serviceAccountEmail(): Promise<null> {
    return null;
  }

  override async headers(): Promise<Record<string, string>> {
    // User credentials bill API usage to a quota project; gcloud writes it into the ADC file.
    const h = await super.headers();
    if (this.user.quota_project_id) h['x-goog-user-project'] = this.user.quota_project_id;
    return h;
  }

  protected fetchToken(): Promise<TokenResponse> {
    return postForm(
      this.tokenEndpoint,
      { grant_type: 'refresh_token', client_id: this.user.client_id, client_secret: this.user.client_secret, refresh_token: this.user.refresh_token },
      this.timeoutMs,
    );
  }
}

/** The runtime's service account, through the metadata server. */
class MetadataServerCredentials extends BaseCredentials {
  readonly source = 'metadata_server' as const;
  private readonly base: string;
  private email?: Promise<string>;

  constructor(options: GoogleAuthOptions) {
    super(options);
    this.base = `http://${options.metadataHost ?? 'metadata.google.internal'}/computeMetadata/v1/instance/service-accounts/default`;
  }

  serviceAccountEmail(): Promise<string> {
    // Asked once per process: the runtime identity does not change. A failure (also one while reading
    // the body) is not cached, so the next call asks again.
    this.email ??= this.metadata('email')
      .then(async (r) => (await r.text()).trim())
      .catch((err: unknown) => {
        this.email = undefined;
        throw err;
      });
    return this.email;
  }

  protected async fetchToken(): Promise<TokenResponse> {
    return (await this.metadata('token')).json() as Promise<TokenResponse>;
  }

  private metadata(path: string): Promise<Response> {
    return googleFetch(`${this.base}/${path}`, { headers: { 'metadata-flavor': 'Google' }, timeoutMs: this.timeoutMs ?? 3000 });
  }
}

/** Credentials from a parsed ADC/key file; `origin` names where it came from for errors. */
export function credentialsFromJson(json: unknown, origin: string, options: GoogleAuthOptions = {}): GoogleCredentials {
  const j = (json ?? {}) as Record<string, unknown>;
  const str = (k: string) => typeof j[k] === 'string' && (j[k] as string).length > 0;
  if (j.type === 'service_account') {
    if (!str('client_email') || !str('private_key')) throw new ConfigError(origin, 'the service account key lacks client_email or private_key');
    try {
      return new ServiceAccountKeyCredentials(j as unknown as ServiceAccountKey, options);
    } catch (err) {
      throw new ConfigError(origin, `the service account's private_key does not parse: ${(err as Error).message}`);
    }
  }
  if (j.type === 'authorized_user') {
    if (!str('client_id') || !str('client_secret') || !str('refresh_token'))
      throw new ConfigError(origin, 'the user credentials lack client_id, client_secret or refresh_token');
    return new AuthorizedUserCredentials(j as unknown as AuthorizedUser, options);
  }
  throw new ConfigError(
    origin,
    `credential type "${String(j.type)}" is not supported; use a service account key, gcloud user credentials, or the metadata server`,
  );
}

/** The runtime service account through the metadata server. */
export function metadataServerCredentials(options: GoogleAuthOptions = {}): GoogleCredentials {
  return new MetadataServerCredentials(options);
}

/**
 * Application Default Credentials from the environment (see the module comment for the order). The
 * key file is read now, at cold start, so a broken one fails the deployment instead of a request.
 */
export function googleCredentialsFromEnv(env: Record<string, string | undefined>, options: GoogleAuthOptions = {}): GoogleCredentials {
  const opts: GoogleAuthOptions = { ...options, metadataHost: options.metadataHost ?? (env.GCE_METADATA_HOST || undefined) };
  const explicit = env.GOOGLE_APPLICATION_CREDENTIALS;
  if (explicit) return credentialsFromJson(readJson(explicit, 'GOOGLE_APPLICATION_CREDENTIALS'), 'GOOGLE_APPLICATION_CREDENTIALS', opts);
  const home = env.HOME || homedir();
  const wellKnown = join(env.CLOUDSDK_CONFIG || join(home, '.config', 'gcloud'), 'application_default_credentials.json');
  if (existsSync(wellKnown)) return credentialsFromJson(readJson(wellKnown, wellKnown), wellKnown, opts);
  return metadataServerCredentials(opts);
}

function readJson(path: string, origin: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError(origin, `cannot read credentials from ${path}: ${(err as Error).message}`);
  }
}

function postForm(url: string, fields: Record<string, string>, timeoutMs: number | undefined): Promise<TokenResponse> {
  return googleJson<TokenResponse>(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
    timeoutMs,
  });
}

function b64url(s: string): string {
  return Buffer.from(s, 'utf8').toString('base64url');
}
