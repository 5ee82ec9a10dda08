/**
 * s3rver (an S3-compatible server on the local file system) started in-process for tests: 127.0.0.1,
 * a random free port, a fresh temporary directory, the buckets the test asks for, and the S3 event
 * notifications it emits for every PUT, POST and COPY.
 *
 * What s3rver does NOT do, so tests must not rely on it: verify SigV4 signatures (it accepts any v4
 * signature from a known access key) and enforce POST policy conditions (content-length-range etc.).
 * The presigned POST is therefore verified independently in `test/aws/presigned-post.test.ts`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { shimSingleDes } from '../../functions/local/s3rver-server';

/** The access key pair s3rver accepts out of the box. */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

/** The S3 notification s3rver emits (same shape as AWS's, but with the key NOT URL-encoded). */
export interface S3rverEvent {
  Records: Array<
    { eventName: string; eventTime: string; s3: { bucket: { name: string }; object: { key: string; size?: number; eTag?: string } } } & Record<string, unknown>
  >;
}

interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
  on(event: 'event', listener: (e: S3rverEvent) => void): void;
}
type S3rverCtor = new (options: Record<string, unknown>) => S3rverInstance;

/** A running s3rver. */
export interface LocalS3 {
  endpoint: string;
  region: string;
  /** A client for this server: path-style addressing, dummy credentials, no SDK retries. */
  /** `endpoint` points the client elsewhere (e.g. a fault proxy in front of this server). */
  client(endpoint?: string): S3Client;
  /** Every notification emitted so far, in order. */
  readonly events: S3rverEvent[];
  close(): Promise<void>;
}

/** Starts s3rver with `buckets` created. */
export async function startLocalS3(buckets: string[]): Promise<LocalS3> {
  // s3rver's declaration (functions/local/s3rver.d.ts) is minimal; the surface used here is typed above.
  const S3rver = (await import('s3rver')).default as unknown as S3rverCtor;
  shimSingleDes();
  const directory = await mkdtemp(join(tmpdir(), 'pixelpipe-s3rver-'));
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    resetOnClose: true,
    configureBuckets: buckets.map((name) => ({ name })),
  });
  const events: S3rverEvent[] = [];
  server.on('event', (e) => events.push(e));
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  const region = 'us-east-1';
  const clients: S3Client[] = [];
  return {
    endpoint,
    region,
    events,
    client(via = endpoint) {
      const c = new S3Client({ endpoint: via, region, forcePathStyle: true, credentials: S3RVER_CREDENTIALS, maxAttempts: 1 });
      clients.push(c);
      return c;
    },
    async close() {
      for (const c of clients) c.destroy();
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}
