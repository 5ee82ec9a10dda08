/**
 * The dev stack's object storage: s3rver under the data directory, with the pipeline's buckets and
 * CORS on the originals bucket for the page's origins (the browser POSTs the upload form to it).
 */
import { mkdir } from 'node:fs/promises';
import type { PixelpipeConfig } from '../../shared/config';
import type { DevOptions } from './dev-options';
import { startLocalS3, type LocalS3 } from './s3rver-server';

/** Starts s3rver for `config`'s buckets; `pageOrigins` may upload to the originals bucket. */
export async function startDevStorage(options: DevOptions, config: PixelpipeConfig, pageOrigins: string[]): Promise<LocalS3> {
  const directory = `${options.dataDir}/s3`;
  await mkdir(directory, { recursive: true });
  return startLocalS3({
    host: options.host,
    port: options.s3Port,
    directory,
    buckets: [...new Set([config.buckets.originals, config.buckets.variants])],
    cors: { buckets: [config.buckets.originals], origins: [...new Set([...pageOrigins, ...config.upload.corsOrigins])] },
  });
}
