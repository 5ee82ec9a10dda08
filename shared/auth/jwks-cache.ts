/**
 * The identity provider's key set, fetched with `fetch` under one overall deadline and handed to jose
 * as a local key set. jose's own remote set bounds only the wait for the response headers, so a
 * provider that sends headers and then stalls the body would hold every request of a warm instance on
 * the one pending fetch; and it treats an HTTP 5xx or a non-JSON answer like a bad token, refetching on
 * every request. Here an outage is an outage (`TransientError('auth_unavailable')`, 503 for the caller)
 * and a failed fetch is not retried before a cooldown, so a provider in trouble sees one fetch per
 * cooldown per instance, not one per request.
 */
import { createLocalJWKSet, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import { TransientError } from '../errors';
import type { CallOptions, Logger } from '../ports';

export interface JwksCacheOptions {
  url: string;
  /** Bound on one fetch from the first byte sent to the last byte of the body (default 3 s). */
  timeoutMs?: number;
  /** After a fetch (successful or not), no new one starts for an unknown `kid` or a failure within this (default 30 s). */
  cooldownMs?: number;
  /** A key set older than this is refetched on the next request (default 10 min, as jose does). */
  maxAgeMs?: number;
  /** Larger answers are refused: a key set is a few KiB (default 256 KiB). */
  maxBytes?: number;
  logger?: Logger;
  fetch?: typeof fetch;
  now?: () => number;
}

interface Loaded {
  keys: JWTVerifyGetKey;
  at: number;
}

/** A warm instance's copy of one JWKS. */
export class JwksCache {
  private loaded: Loaded | undefined;
  private lastAttempt = Number.NEGATIVE_INFINITY;
  private lastFailure: TransientError | undefined;
  private pending: Promise<Loaded> | undefined;
  private readonly timeoutMs: number;
  private readonly cooldownMs: number;
  private readonly maxAgeMs: number;
  private readonly maxBytes: number;
  private readonly fetchFn: typeof fetch;
  private readonly now: () => number;

  constructor(private readonly options: JwksCacheOptions) {
    this.timeoutMs = options.timeoutMs ?? 3000;
    this.cooldownMs = options.cooldownMs ?? 30_000;
    this.maxAgeMs = options.maxAgeMs ?? 600_000;
    this.maxBytes = options.maxBytes ?? 256 * 1024;
    this.fetchFn = options.fetch ?? fetch;
    this.now = options.now ?? Date.now;
  }

  /**
   * The key resolver for `jwtVerify`: the cached set, fetched first if there is none or it is stale,
   * and refetched once for a `kid` it does not hold unless a fetch happened within the cooldown.
   * Throws `TransientError('auth_unavailable')` when the provider cannot be asked.
   */
  resolver(options: CallOptions = {}): JWTVerifyGetKey {
    return async (header, token) => {
      let set = await this.current(options);
      try {
        return await set.keys(header, token);
      } catch (err) {
        if (!isNoMatchingKey(err) || this.now() - this.lastAttempt < this.cooldownMs) throw err;
        set = await this.refresh(options);
        return set.keys(header, token);
      }
    };
  }

  private async current(options: CallOptions): Promise<Loaded> {
    if (this.loaded && this.now() - this.loaded.at < this.maxAgeMs) return this.loaded;
    // A stale set still verifies while the provider is down within the cooldown: keys rotate slowly.
    if (this.loaded && this.now() - this.lastAttempt < this.cooldownMs) return this.loaded;
    return this.refresh(options);
  }

  private async refresh(options: CallOptions): Promise<Loaded> {
    if (!this.pending) {
      if (this.lastFailure && this.now() - this.lastAttempt < this.cooldownMs) throw this.lastFailure;
      this.lastAttempt = this.now();
      this.pending = this.fetchOnce().then(
        (loaded) => {
          this.loaded = loaded;
          this.lastFailure = undefined;
          return loaded;
        },
        (err: unknown) => {
          const failure = err instanceof TransientError ? err : new TransientError('auth_unavailable', 'the identity provider is unreachable', err);
          this.lastFailure = failure;
          const cause = failure.cause instanceof Error ? failure.cause.message : undefined;
          this.options.logger?.error('identity provider unavailable: JWKS fetch failed', { err: failure, reason: 'auth_unavailable', cause });
          throw failure;
        },
      );
      void this.pending.then(
        () => (this.pending = undefined),
        () => (this.pending = undefined),
      );
    }
    return waitFor(this.pending, options, this.now);
  }

  /** One fetch of the key set; its timeout covers the headers and the whole body. */
  private async fetchOnce(): Promise<Loaded> {
    const signal = AbortSignal.timeout(this.timeoutMs);
    let res: Response;
    try {
      res = await this.fetchFn(this.options.url, { headers: { accept: 'application/json' }, redirect: 'error', signal });
    } catch (err) {
      throw new TransientError('auth_unavailable', 'the identity provider is unreachable', err);
    }
    if (!res.ok) {
      await res.body?.cancel().catch(() => undefined);
      throw new TransientError('auth_unavailable', `the JWKS endpoint answered HTTP ${res.status}`);
    }
    const text = await readText(res, this.maxBytes, signal);
    let jwks: unknown;
    try {
      jwks = JSON.parse(text);
    } catch (err) {
      throw new TransientError('auth_unavailable', 'the JWKS endpoint did not answer JSON', err);
    }
    try {
      return { keys: createLocalJWKSet(jwks as JSONWebKeySet), at: this.now() };
    } catch (err) {
      throw new TransientError('auth_unavailable', 'the JWKS endpoint did not answer a JSON Web Key Set', err);
    }
  }
}

/** Reads the body as text, refusing more than `maxBytes`; aborting `signal` ends a stalled body. */
async function readText(res: Response, maxBytes: number, signal: AbortSignal): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) throw new TransientError('auth_unavailable', `the JWKS answer is larger than ${maxBytes} bytes`);
      chunks.push(value);
    }
  } catch (err) {
    await reader.cancel().catch(() => undefined);
    if (err instanceof TransientError) throw err;
    throw new TransientError('auth_unavailable', signal.aborted ? 'the JWKS fetch timed out' : 'the JWKS answer broke off', err);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Waits for the shared fetch, but no longer than this caller's own deadline or signal. */
function waitFor<T>(pending: Promise<T>, options: CallOptions, now: () => number): Promise<T> {
  const { signal, deadline } = options;
  if (!signal && deadline === undefined) return pending;
  return new Promise<T>((resolve, reject) => {
    const give = (): void => {
      cleanup();
      reject(new TransientError('auth_unavailable', 'the identity provider did not answer within the invocation deadline'));
    };
    const timer = deadline === undefined ? undefined : setTimeout(give, Math.max(0, deadline - now()));
    const cleanup = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', give);
    };
    if (signal?.aborted) return give();
    signal?.addEventListener('abort', give, { once: true });
    pending.then(
      (v) => {
        cleanup();
        resolve(v);
      },
      (e: unknown) => {
        cleanup();
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

function isNoMatchingKey(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 'ERR_JWKS_NO_MATCHING_KEY';
}
