/**
 * A local JWKS endpoint and a token factory, so authentication is tested with real signatures and a
 * real HTTP key fetch instead of a mocked verifier.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';

export interface LocalIdp {
  jwksUrl: string;
  issuer: string;
  audience: string;
  /** Signs a token; `over` changes claims, `key: 'other'` signs with a key the JWKS does not publish. */
  token(over?: { sub?: string; aud?: string; iss?: string; expiresIn?: string | number; key?: 'other'; kid?: string }): Promise<string>;
  fetches(): number;
  close(): Promise<void>;
}

export async function startLocalIdp(): Promise<LocalIdp> {
  const { publicKey, privateKey } = await generateKeyPair('RS256');
  const other = await generateKeyPair('RS256');
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid: 'test-key', alg: 'RS256', use: 'sig' };
  let fetches = 0;
  const server: Server = createServer((req, res) => {
    fetches++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const issuer = `http://127.0.0.1:${port}/`;
  const audience = 'pixelpipe-test';
  return {
    jwksUrl: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    issuer,
    audience,
    async token(over = {}) {
      return new SignJWT({})
        .setProtectedHeader({ alg: 'RS256', kid: over.kid ?? 'test-key' })
        .setSubject(over.sub ?? 'alice')
        .setIssuer(over.iss ?? issuer)
        .setAudience(over.aud ?? audience)
        .setIssuedAt()
        .setExpirationTime(over.expiresIn ?? '5m')
        .sign(over.key === 'other' ? other.privateKey : privateKey);
    },
    fetches: () => fetches,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
