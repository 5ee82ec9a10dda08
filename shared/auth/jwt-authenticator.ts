/**
 * Authenticators. JWTs are verified with `jose` against a JWKS URL (Firebase Auth, Identity Platform,
 * Cognito, Auth0 all publish one), checking signature, issuer, audience, expiry and token age. The key
 * set itself is fetched by {@link JwksCache}, under a deadline and with a cooldown on failures.
 */
import { errors as joseErrors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import type { PixelpipeConfig } from '../config';
import { ClientError, TransientError } from '../errors';
import type { Authenticator, CallOptions, Logger, Principal } from '../ports';
import { JwksCache } from './jwks-cache';

export interface JwtAuthenticatorOptions {
  jwksUrl: string;
  issuer: string;
  audience: string;
  clockToleranceSeconds?: number;
  /** Refuse tokens issued (`iat`) longer ago, or expiring (`exp`) further ahead, than this (default 24 h). */
  maxTokenAgeSeconds?: number;
  /** Where a JWKS outage is reported. */
  logger?: Logger;
  /** Bound on one key-set fetch, headers and body (default 3 s), and the pause after one (default 30 s). */
  jwksTimeoutMs?: number;
  jwksCooldownMs?: number;
  /** Injected for tests: the key fetch and the clock the token age is measured with. */
  fetch?: typeof fetch;
  now?: () => number;
}

// RFC 7235: the scheme is case-insensitive. The token is compact JWS: three base64url parts.
const BEARER = /^bearer[ \t]+([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)[ \t]*$/i;

/** Verifies `Authorization: Bearer <jwt>`; the token's `sub` becomes the principal. */
export class JwtAuthenticator implements Authenticator {
  private readonly jwks: JwksCache | undefined;
  private readonly maxAge: number;
  private readonly now: () => number;

  /** `keys` replaces the remote key set (tests, or a set bundled with the function). */
  constructor(
    private readonly options: JwtAuthenticatorOptions,
    private readonly keys?: JWTVerifyGetKey,
  ) {
    this.maxAge = options.maxTokenAgeSeconds ?? 24 * 3600;
    this.now = options.now ?? Date.now;
    // The key set is cached across invocations of a warm instance and refetched on an unknown `kid`.
    this.jwks = keys
      ? undefined
      : new JwksCache({
          url: options.jwksUrl,
          timeoutMs: options.jwksTimeoutMs,
          cooldownMs: options.jwksCooldownMs,
          logger: options.logger,
          fetch: options.fetch,
          now: this.now,
        });
  }

  /** Throws `ClientError(401)` for any token problem, `TransientError('auth_unavailable')` when the provider cannot be asked. */
  async authenticate(header: string | undefined, options: CallOptions = {}): Promise<Principal> {
    const m = BEARER.exec(header ?? '');
    if (!m) throw new ClientError(401, 'unauthenticated', 'a Bearer token is required');
    try {
      const tolerance = this.options.clockToleranceSeconds ?? 30;
      const { payload } = await jwtVerify(m[1], this.keys ?? this.jwks!.resolver(options), {
        issuer: this.options.issuer,
        audience: this.options.audience,
        clockTolerance: tolerance,
        currentDate: new Date(this.now()),
        algorithms: ['RS256', 'RS384', 'RS512', 'PS256', 'ES256', 'ES384', 'EdDSA'],
        requiredClaims: ['sub', 'exp'],
        // jose checks `iat` against this only when the token has one; `exp` is bounded below.
        maxTokenAge: this.maxAge,
      });
      const nowSeconds = this.now() / 1000;
      if (typeof payload.exp === 'number' && payload.exp - nowSeconds > this.maxAge + tolerance) {
        throw new ClientError(401, 'unauthenticated', 'the token is valid for longer than this service accepts');
      }
      const sub = payload.sub;
      if (typeof sub !== 'string' || sub.length === 0) throw new ClientError(401, 'unauthenticated', 'the token has no subject');
      // A lone surrogate would become U+FFFD wherever the subject is encoded (the owner hash included),
      // so `a\ud800`, `a\udc00` and `a\ufffd` would share one owner.
      if (!sub.isWellFormed()) throw new ClientError(401, 'unauthenticated', 'the token subject is not well-formed Unicode');
      return { subject: sub, anonymous: false };
    } catch (err) {
      if (err instanceof ClientError || err instanceof TransientError) throw err;
      // The identity provider being unreachable is our problem, not the caller's: 503, retry later.
      if (err instanceof joseErrors.JWKSTimeout || isNetworkError(err)) {
        throw new TransientError('auth_unavailable', 'the identity provider is unreachable', err);
      }
      throw new ClientError(401, 'unauthenticated', 'the token is not valid');
    }
  }
}

/** Connection-level failures (duck-typed: errors from Node's http module may come from another realm). */
function isNetworkError(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  if (!e) return false;
  return (
    (typeof e.code === 'string' && /^(ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH)$/.test(e.code)) ||
    (typeof e.message === 'string' && /fetch failed|ECONNREFUSED|ENOTFOUND/.test(e.message))
  );
}

/** Local development only: everyone is the same anonymous owner. */
export class AnonymousAuthenticator implements Authenticator {
  authenticate(): Promise<Principal> {
    return Promise.resolve({ subject: 'anonymous', anonymous: true });
  }
}

/** Picks the authenticator the config asks for, and says loudly when uploads are open to anyone. */
export function createAuthenticator(config: PixelpipeConfig, logger: Logger): Authenticator {
  if (config.auth.mode === 'anonymous') {
    logger.warn('AUTH DISABLED: PIXELPIPE_AUTH_MODE=anonymous lets anyone upload. Use it for local development only.');
    return new AnonymousAuthenticator();
  }
  return new JwtAuthenticator({ ...config.auth, logger });
}
