/**
 * Google credentials for the adapters that call Google's REST APIs directly (see `google-http.ts` for
 * why they do not use the storage and Pub/Sub client libraries), from `google-auth-library`:
 * Application Default Credentials as Google's own libraries find them — `GOOGLE_APPLICATION_CREDENTIALS`,
 * gcloud's ADC file (`CLOUDSDK_CONFIG`), the metadata server (`GCE_METADATA_HOST` / `GCE_METADATA_IP`,
 * `METADATA_SERVER_DETECTION`) — with every credential type the library knows: service-account keys,
 * gcloud user credentials, workload identity federation (`external_account`), impersonated service
 * accounts. The library also caches tokens and refreshes them before they expire.
 *
 * What stays here is the wiring: one `GoogleAuth` per process, the library's requests sent with
 * Node's own `fetch` under a per-request timeout, a broken key file refused at cold start, and the
 * library's errors mapped onto the pipeline's hierarchy (transient `auth_unavailable` or permanent).
 */
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { inspect } from 'node:util';
import {
  BaseExternalAccountClient,
  Compute,
  ExternalAccountAuthorizedUserClient,
  GoogleAuth,
  Impersonated,
  JWT,
  UserRefreshClient,
  type AuthClient,
} from 'google-auth-library';
import { ConfigError, PixelpipeError, TransientError } from '../../shared/errors';
import { httpStatusOf, isNetworkError } from './gcs-errors';

/** Adds authentication to requests for a Google API. */
export interface RequestAuthorizer {
  /** Headers to send with a request: `authorization`, and the quota project for user credentials. */
  headers(): Promise<Record<string, string>>;
}

/** For local emulators, which take no credentials. */
export const NO_AUTH: RequestAuthorizer = { headers: () => Promise.resolve({}) };

/** The kind of credentials Application Default Credentials resolved to (the ADC file's `type`, or the metadata server). */
export type CredentialSource =
  | 'service_account'
  | 'authorized_user'
  | 'external_account'
  | 'external_account_authorized_user'
  | 'impersonated_service_account'
  | 'metadata_server'
  | 'other';

/**
 * Credentials that can call Google APIs and sign as a service account (the V4 signed URL port needs
 * both). Failures are `PixelpipeError`s: `ConfigError` when no usable credentials were found,
 * `TransientError('auth_unavailable')` when a token or IAM endpoint is unreachable, slow or answers
 * 408/429/5xx, a permanent `internal` error for other refusals (revoked grant, permission denied).
 */
export interface GoogleCredentials extends RequestAuthorizer {
  /** What the credentials are, for logs and errors. */
  source(): Promise<CredentialSource>;
  /** The service account these credentials act as; `null` for a user's (or an unimpersonated federated) identity. */
  serviceAccountEmail(): Promise<string | null>;
  /**
   * RSA-SHA256 signature of `data` (UTF-8) as `email`: locally when the credentials hold that
   * account's key, otherwise through IAM Credentials `signBlob` (the caller needs
   * `iam.serviceAccounts.signBlob` on `email`).
   */
  signBlob(email: string, data: string, options?: { signal?: AbortSignal }): Promise<Buffer>;
}

/** Options of {@link applicationDefaultCredentials} and {@link credentialsFromJson}. */
export interface GoogleCredentialsOptions {
  /** Saves the library a project-id lookup (which may spawn `gcloud` or ask the metadata server). */
  projectId?: string;
  /** Per-request deadline of the library's token and IAM requests; a stalled endpoint must not eat the invocation. */
  timeoutMs?: number;
  /** Transport of the library's clients (default: Node's `fetch`); tests route it to local fakes. */
  fetch?: typeof fetch;
}

const SCOPES = ['https://www.googleapis.com/auth/cloud-platform'];
const DEFAULT_TIMEOUT_MS = 10_000;

/**
 * Application Default Credentials, looked up by the library on first use (so loading does no network
 * I/O). A key file named by `GOOGLE_APPLICATION_CREDENTIALS` is read and checked now, at cold start,
 * so a broken one fails the deployment instead of a request; a broken gcloud ADC file, or no
 * credentials at all, is a `ConfigError` on first use.
 */
export function applicationDefaultCredentials(options: GoogleCredentialsOptions = {}): GoogleCredentials {
  const file = process.env.GOOGLE_APPLICATION_CREDENTIALS;
  if (file) checkCredentialsJson(readJson(file, 'GOOGLE_APPLICATION_CREDENTIALS'), 'GOOGLE_APPLICATION_CREDENTIALS');
  return new LibraryCredentials(null, 'GOOGLE_APPLICATION_CREDENTIALS', options);
}

/** Credentials from a parsed key or ADC file (any type the library accepts); `origin` names where it came from in errors. */
export function credentialsFromJson(json: unknown, origin: string, options: GoogleCredentialsOptions = {}): GoogleCredentials {
  return new LibraryCredentials(checkCredentialsJson(json, origin), origin, options);
}

class LibraryCredentials implements GoogleCredentials {
  private readonly auth: GoogleAuth;
  private email?: Promise<string | null>;

  constructor(
    json: Record<string, unknown> | null,
    private readonly origin: string,
    options: GoogleCredentialsOptions,
  ) {
    this.auth = new GoogleAuth({
      scopes: SCOPES,
      ...(json ? { credentials: json } : {}),
      ...(options.projectId ? { projectId: options.projectId } : {}),
      clientOptions: {
        transporterOptions: {
          // Node's fetch, not node-fetch (gaxios' default on Node): one HTTP stack, and AbortSignals that close the socket.
          fetchImplementation: options.fetch ?? fetch,
          timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
          // No retries inside the library (its token requests ask for up to 3, plus 2 after no answer):
          // resilient() retries around every call here, within the invocation's deadline.
          retryConfig: { retry: 0, noResponseRetries: 0 },
        },
      },
    });
  }

  async source(): Promise<CredentialSource> {
    return sourceOf(await this.client());
  }

  async headers(): Promise<Record<string, string>> {
    const client = await this.client();
    try {
      return Object.fromEntries((await client.getRequestHeaders()).entries());
    } catch (err) {
      throw mapAuthError(err, 'getting a Google access token');
    }
  }

  serviceAccountEmail(): Promise<string | null> {
    // Asked once per process (on the metadata server it is a request): the identity does not change.
    // A failure is not cached, so the next call asks again.
    this.email ??= this.client()
      .then(async () => (await this.auth.getCredentials()).client_email || null)
      .catch((err: unknown) => {
        this.email = undefined;
        throw mapAuthError(err, 'finding the service account of the Google credentials');
      });
    return this.email;
  }

  async signBlob(email: string, data: string, options: { signal?: AbortSignal } = {}): Promise<Buffer> {
    const client = await this.client();
    try {
      // The library's sign(): local RSA-SHA256 with a key file's key, or the impersonated account's
      // signBlob through its source credentials (which hold the token creator role, not the target).
      if ((client instanceof JWT && client.key && client.email === email) || (client instanceof Impersonated && client.getTargetPrincipal() === email)) {
        return Buffer.from(await this.auth.sign(data), 'base64');
      }
      // Keyless (metadata server, federation, a user) or another account (PIXELPIPE_SIGNER_SERVICE_ACCOUNT):
      // IAM signBlob through the client's authorized request(). Not GoogleAuth.sign(), which takes no
      // AbortSignal: an attempt that resilient() timed out must be cancelled, not left running.
      const res = await client.request<{ signedBlob?: unknown }>({
        url: `https://iamcredentials.${client.universeDomain}/v1/projects/-/serviceAccounts/${encodeURIComponent(email)}:signBlob`,
        method: 'POST',
        data: { payload: Buffer.from(data, 'utf8').toString('base64') },
        signal: options.signal,
        retry: false,
      });
      const signed = res.data.signedBlob;
      if (typeof signed !== 'string' || !signed) throw new PixelpipeError('internal', `IAM signBlob for ${email} returned no signature`, { retryable: false });
      return Buffer.from(signed, 'base64');
    } catch (err) {
      throw mapAuthError(err, `signing as ${email}`);
    }
  }

  /** The library's client for the credentials found; failing to find or load them is a deployment problem. */
  private async client(): Promise<AuthClient> {
    try {
      return await this.auth.getClient();
    } catch (err) {
      throw new ConfigError(this.origin, `no usable Google credentials: ${errorText(err)}`);
    }
  }
}

function sourceOf(client: AuthClient): CredentialSource {
  if (client instanceof JWT) return 'service_account';
  if (client instanceof UserRefreshClient) return 'authorized_user';
  if (client instanceof Compute) return 'metadata_server';
  if (client instanceof Impersonated) return 'impersonated_service_account';
  if (client instanceof BaseExternalAccountClient) return 'external_account';
  if (client instanceof ExternalAccountAuthorizedUserClient) return 'external_account_authorized_user';
  return 'other';
}

function readJson(path: string, origin: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError(origin, `cannot read credentials from ${path}: ${(err as Error).message}`);
  }
}

/**
 * Lets the library build a client from the JSON (which checks the fields its type needs) without
 * using it, and parses a service account's private key, which the library only does when signing.
 */
function checkCredentialsJson(json: unknown, origin: string): Record<string, unknown> {
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new ConfigError(origin, 'the credentials are not a JSON object');
  const j = json as Record<string, unknown>;
  try {
    new GoogleAuth({ scopes: SCOPES }).fromJSON(j);
  } catch (err) {
    throw new ConfigError(origin, `the ${typeof j.type === 'string' ? `"${j.type}" ` : ''}credentials are not usable: ${(err as Error).message}`);
  }
  if (j.type === 'service_account') {
    try {
      createPrivateKey(String(j.private_key));
    } catch (err) {
      throw new ConfigError(origin, `the service account's private_key does not parse: ${(err as Error).message}`);
    }
  }
  return j;
}

/**
 * Failures of token requests (OAuth, STS, metadata server) and IAM: unreachable, timing out, cancelled,
 * 408, 429 or 5xx → `TransientError('auth_unavailable')`; any other HTTP refusal (revoked grant,
 * permission denied, unknown account) or an unrecognised failure → permanent, a deployment problem
 * that retries cannot fix.
 */
export function mapAuthError(err: unknown, what: string): PixelpipeError {
  if (err instanceof PixelpipeError) return err;
  const detail = errorText(err);
  const status = httpStatusOf(err);
  if (status !== undefined) {
    if (status === 408 || status === 429 || status >= 500) return new TransientError('auth_unavailable', `${what} failed with HTTP ${status}: ${detail}`, err);
    return new PixelpipeError('internal', `${what} failed with HTTP ${status}: ${detail}`, { retryable: false, cause: err });
  }
  if (isNetworkError(err) || isTimeoutOrAbort(err)) return new TransientError('auth_unavailable', `${what} failed: ${detail}`, err);
  return new PixelpipeError('internal', `${what} failed: ${detail}`, { retryable: false, cause: err });
}

function isTimeoutOrAbort(err: unknown): boolean {
  const names = ['TimeoutError', 'AbortError'];
  for (
    let e = err as { name?: unknown; code?: unknown; cause?: unknown } | null, depth = 0;
    e && typeof e === 'object' && depth < 4;
    e = e.cause as typeof e, depth++
  ) {
    if (names.includes(typeof e.name === 'string' ? e.name : '') || names.includes(typeof e.code === 'string' ? e.code : '')) return true;
  }
  return false;
}

/** `fetch` reports "fetch failed" and hides the socket error in `cause`: keep the chain for the logs. */
function errorText(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err, depth = 0; e && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    // Duck-typed: fetch's errors may come from another realm (instanceof Error fails there).
    const message = (e as { message?: unknown }).message;
    const m = typeof message === 'string' ? message : typeof e === 'string' ? e : inspect(e, { depth: 0 });
    if (!parts.includes(m)) parts.push(m);
  }
  return parts.join(': ').slice(0, 500);
}
