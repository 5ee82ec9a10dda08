/**
 * Authenticators. JWTs are verified with `jose` against a JWKS URL (Firebase Auth, Identity Platform,
 * Cognito, Auth0 all publish one), checking signature, issuer, audience and expiry.
 */
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import type { PixelpipeConfig } from '../config';
import { ClientError, TransientError } from '../errors';
import type { Authenticator, Logger, Principal } from '../ports';

/** Verifies `Authorization: Bearer <jwt>`; the token's `sub` becomes the principal. */
export class JwtAuthenticator implements Authenticator {
  private readonly keys: JWTVerifyGetKey;
  constructor(
    private readonly options: { jwksUrl: string; issuer: string; audience: string; clockToleranceSeconds?: number },
    keys?: JWTVerifyGetKey,
  ) {
    // The key set is cached across invocations of a warm instance and refetched on an unknown `kid`.
    this.keys = keys ?? createRemoteJWKSet(new URL(options.jwksUrl), { timeoutDuration: 3000, cooldownDuration: 30_000 });
  }

  async authenticate(header: string | undefined): Promise<Principal> {
    const m = /^Bearer\s+([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)\s*$/.exec(header ?? '');
    if (!m) throw new ClientError(401, 'unauthenticated', 'a Bearer token is required');
    try {
      const { payload } = await jwtVerify(m[1], this.keys, {
        issuer: this.options.issuer,
        audience: this.options.audience,
        clockTolerance: this.options.clockToleranceSeconds ?? 30,
        algorithms: ['RS256', 'RS384', 'RS512', 'PS256', 'ES256', 'ES384', 'EdDSA'],
        requiredClaims: ['sub', 'exp'],
      });
      if (typeof payload.sub !== 'string' || payload.sub.length === 0) throw new ClientError(401, 'unauthenticated', 'the token has no subject');
      return { subject: payload.sub, anonymous: false };
    } catch (err) {
      if (err instanceof ClientError) throw err;
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
  async authenticate(): Promise<Principal> {
    return { subject: 'anonymous', anonymous: true };
  }
}

/** Picks the authenticator the config asks for, and says loudly when uploads are open to anyone. */
export function createAuthenticator(config: PixelpipeConfig, logger: Logger): Authenticator {
  if (config.auth.mode === 'anonymous') {
    logger.warn('AUTH DISABLED: PIXELPIPE_AUTH_MODE=anonymous lets anyone upload. Use it for local development only.');
    return new AnonymousAuthenticator();
  }
  return new JwtAuthenticator(config.auth);
}
