/**
 * The ObjectStore contract against s3rver, plus S3-specific behaviour: error mapping and the streaming
 * size cap.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { ImageRejectedError, PixelpipeError, TransientError } from '../../shared/errors';
import { CircuitBreaker, type ResiliencePolicy } from '../../shared/resilience';
import { S3ObjectStore, s3Generation } from '../../functions/aws/s3-object-store';
import { objectStoreContract } from '../contracts/object-store.contract';
import { startLocalS3, type LocalS3 } from '../servers/s3';

const fastPolicy = (): ResiliencePolicy => ({
  retry: { attempts: 2, baseDelayMs: 5, maxDelayMs: 10 },
  breaker: new CircuitBreaker('s3-test', { failureThreshold: 100, openMs: 1000 }),
  timeoutMs: 5000,
});

objectStoreContract('s3 (s3rver)', async () => {
  const s3 = await startLocalS3(['contract-bucket']);
  return { store: new S3ObjectStore(s3.client(), { policy: fastPolicy() }), bucket: 'contract-bucket', close: () => s3.close() };
});

describe('S3ObjectStore specifics (s3rver)', () => {
  let s3: LocalS3;
  let store: S3ObjectStore;
  beforeAll(async () => {
    s3 = await startLocalS3(['specific-bucket']);
    store = new S3ObjectStore(s3.client(), { policy: fastPolicy() });
  });
  afterAll(async () => {
    await s3?.close();
  });

  test('writes Content-Type, Cache-Control and lower-case metadata as S3 headers', async () => {
    await store.put('specific-bucket', 'h/a.webp', Buffer.from('abc'), {
      contentType: 'image/webp',
      cacheControl: 'public, max-age=31536000, immutable',
      metadata: { 'Pixelpipe-Image': 'id-1' },
    });
    const raw = await s3.client().send(new GetObjectCommand({ Bucket: 'specific-bucket', Key: 'h/a.webp' }));
    expect(raw.ContentType).toBe('image/webp');
    expect(raw.CacheControl).toBe('public, max-age=31536000, immutable');
    expect(raw.Metadata).toEqual({ 'pixelpipe-image': 'id-1' });
    await raw.Body?.transformToByteArray();
  });

  test('the generation is the ETag without quotes, as in S3 event records', async () => {
    const info = await store.put('specific-bucket', 'h/etag', Buffer.from('hello'), { contentType: 'text/plain' });
    // s3rver and S3 use the MD5 of a single-part upload.
    expect(info.generation).toBe('5d41402abc4b2a76b9719d911017c592');
    expect(s3Generation(undefined, '"5d41402abc4b2a76b9719d911017c592"')).toBe(info.generation);
    expect(s3Generation('3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY', '"x"')).toBe('3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY');
    expect(s3Generation('null', '"x"')).toBe('x');
  });

  test('without a Content-Length the body is streamed and the download aborted once the cap is passed', async () => {
    // A stand-in S3 endpoint answering GetObject with a chunked 16 MiB body: only the streaming cap can stop it.
    let written = 0;
    let closedAfter = -1;
    const server = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', etag: '"abc"', 'transfer-encoding': 'chunked' });
      const chunk = Buffer.alloc(64 * 1024, 1);
      res.on('close', () => {
        closedAfter = written;
      });
      const pump = (): void => {
        while (written < 16 * 1024 * 1024 && !res.destroyed) {
          written += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const c = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'a', secretAccessKey: 'b' }, maxAttempts: 1 });
    try {
      const err = await new S3ObjectStore(c, { policy: fastPolicy() }).get('b', 'k', { maxBytes: 1024 * 1024 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ImageRejectedError);
      expect((err as ImageRejectedError).code).toBe('too_many_bytes');
      await new Promise((r) => setTimeout(r, 100));
      expect(closedAfter).toBeGreaterThan(0);
      expect(closedAfter).toBeLessThan(8 * 1024 * 1024);
    } finally {
      c.destroy();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  test('an honest Content-Length over the cap is refused before reading the body', async () => {
    await s3
      .client()
      .send(new PutObjectCommand({ Bucket: 'specific-bucket', Key: 'h/big', Body: Buffer.alloc(3 * 1024 * 1024, 1), ContentType: 'application/octet-stream' }));
    const err = await store.get('specific-bucket', 'h/big', { maxBytes: 3 * 1024 * 1024 - 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageRejectedError);
    expect((err as ImageRejectedError).code).toBe('too_many_bytes');
  });

  test('a missing bucket is a permanent configuration error, not a missing object', async () => {
    const err = await store.get('no-such-bucket', 'k').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PixelpipeError);
    expect(err).not.toBeInstanceOf(TransientError);
    expect((err as PixelpipeError).retryable).toBe(false);
  });

  test('an unreachable endpoint is transient (retried, then TransientError)', async () => {
    const dead = new S3Client({
      endpoint: 'http://127.0.0.1:1',
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
      maxAttempts: 1,
    });
    const s = new S3ObjectStore(dead, { policy: fastPolicy() });
    const err = await s.get('b', 'k').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    dead.destroy();
  });
});
