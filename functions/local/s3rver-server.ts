/**
 * The local object store: s3rver (an S3-compatible server on the local file system) in-process,
 * bound to 127.0.0.1, with the pipeline's buckets, a CORS rule for the page's origins on the
 * originals bucket (the browser POSTs the presigned form straight to it), and its object-created
 * notifications exposed to the caller.
 *
 * Limits worth knowing: s3rver accepts any SigV4 signature from its known key pair and does not
 * enforce POST policy conditions (content-length-range, exact-match fields), so the dev stack shows
 * the flow, not the security properties; those are tested against the signer itself.
 */
import crypto from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { S3Client } from '@aws-sdk/client-s3';
import { isAddressInUse, PortInUseError } from './ports';

/** The key pair s3rver accepts out of the box. */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
/** s3rver ignores the region; the SDK and the signer need one. */
export const S3RVER_REGION = 'us-east-1';

/** One notification record as s3rver emits it: AWS's shape, except the key is NOT URL-encoded. */
export interface S3rverRecord {
  eventName: string;
  eventTime: string;
  eventSource?: string;
  s3: { bucket: { name: string }; object: { key: string; size?: number; eTag?: string; sequencer?: string } };
  [field: string]: unknown;
}

interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
  on(event: 'event', listener: (e: { Records: S3rverRecord[] }) => void): void;
  httpServer?: Server;
}
type S3rverCtor = new (options: Record<string, unknown>) => S3rverInstance;

/** Where s3rver listens, where it keeps objects, and which buckets the browser may write to. */
export interface LocalS3Options {
  host: string;
  port: number;
  directory: string;
  /** Buckets to create (kept when they already exist in `directory`). */
  buckets: string[];
  /** Buckets the browser writes to, and the origins allowed to do so. */
  cors: { buckets: string[]; origins: string[] };
}

/** A running s3rver. */
export interface LocalS3 {
  endpoint: string;
  port: number;
  /** A client for this server (path style, s3rver's key pair, no SDK retries); destroyed on close. */
  client(): S3Client;
  /** Subscribes to object notifications (every PUT, POST, COPY and DELETE). */
  onRecord(listener: (record: S3rverRecord) => void): void;
  close(): Promise<void>;
}

/** The CORS configuration the page needs: its origins may POST forms and read objects. */
export function corsXml(origins: string[]): string {
  const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  return [
    '<CORSConfiguration><CORSRule>',
    ...origins.map((o) => `<AllowedOrigin>${escape(o)}</AllowedOrigin>`),
    '<AllowedMethod>POST</AllowedMethod><AllowedMethod>PUT</AllowedMethod><AllowedMethod>GET</AllowedMethod><AllowedMethod>HEAD</AllowedMethod>',
    '<AllowedHeader>*</AllowedHeader><ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>600</MaxAgeSeconds>',
    '</CORSRule></CORSConfiguration>',
  ].join('');
}

/** Starts s3rver; throws {@link PortInUseError} when its port is taken. */
let desShimmed = false;

/**
 * s3rver encrypts ListObjectsV2 continuation tokens with single DES, which OpenSSL 3 (Node >= 17) only
 * offers through the legacy provider, so every truncated listing fails with a 500. Triple DES with three
 * equal keys is single DES by construction (E(K) D(K) E(K) = E(K)) and is still in the default provider,
 * so `des` is mapped onto it. Only the algorithm name `des` is touched, in the process that runs s3rver (the dev stack, tests): the
 * images API lists with bounded pages, so truncated listings are routine.
 */
export function shimSingleDes(): void {
  if (desShimmed) return;
  desShimmed = true;
  const mutable = crypto as unknown as Record<'createCipheriv' | 'createDecipheriv', (...a: unknown[]) => unknown>;
  for (const fn of ['createCipheriv', 'createDecipheriv'] as const) {
    const original = mutable[fn].bind(crypto);
    mutable[fn] = (algorithm: unknown, key: unknown, ...rest: unknown[]) =>
      algorithm === 'des' && Buffer.isBuffer(key) && key.length === 8
        ? original('des-ede3-cbc', Buffer.concat([key, key, key]), ...rest)
        : original(algorithm, key, ...rest);
  }
}

export async function startLocalS3(options: LocalS3Options): Promise<LocalS3> {
  shimSingleDes();
  // Loaded on use (the dev stack only); s3rver ships no types, so the surface used here is typed above.
  const S3rver = (await import('s3rver')).default as unknown as S3rverCtor;
  const server = new S3rver({
    address: options.host,
    port: options.port,
    silent: true,
    directory: options.directory,
    // No virtual-host addressing: every URL the stack hands out is path style.
    vhostBuckets: false,
    configureBuckets: options.buckets.map((name) => ({
      name,
      configs: options.cors.buckets.includes(name) ? [corsXml(options.cors.origins)] : [],
    })),
  });
  const listeners: Array<(r: S3rverRecord) => void> = [];
  server.on('event', (e) => {
    for (const record of e.Records ?? []) for (const l of listeners) l(record);
  });
  let address: AddressInfo;
  try {
    address = await server.run();
  } catch (err) {
    if (isAddressInUse(err)) throw new PortInUseError(options.port, 'PIXELPIPE_DEV_S3_PORT', 'local S3 (s3rver)');
    throw err;
  }
  const endpoint = `http://${options.host}:${address.port}`;
  const clients: S3Client[] = [];
  return {
    endpoint,
    port: address.port,
    client() {
      const c = new S3Client({ endpoint, region: S3RVER_REGION, forcePathStyle: true, credentials: S3RVER_CREDENTIALS, maxAttempts: 1 });
      clients.push(c);
      return c;
    },
    onRecord(listener) {
      listeners.push(listener);
    },
    async close() {
      listeners.length = 0;
      for (const c of clients) c.destroy();
      const http = server.httpServer;
      const closed = server.close();
      // An upload still streaming from a browser would hold close() open indefinitely.
      http?.closeAllConnections();
      await closed;
    },
  };
}
