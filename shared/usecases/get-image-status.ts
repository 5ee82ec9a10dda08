/**
 * Use case: the status of one image for its owner (status endpoints, backfill, reprocess).
 */
import type { PixelpipeConfig } from '../config';
import { ObjectNotFoundError } from '../errors';
import { callOptions, type Invocation } from '../invocation';
import { manifestKey } from '../keys';
import { withoutDescriptors } from '../events';
import { parseManifest, type Manifest } from '../manifest';
import type { ObjectStore, UrlSigner } from '../ports';

export interface StatusDeps {
  store: ObjectStore;
  config: PixelpipeConfig;
  /** When given, variants without a public URL get a short-lived signed read URL. */
  signer?: UrlSigner;
  readUrlSeconds?: number;
}

/**
 * Returns the manifest, or `null` while the image is still pending (or belongs to someone else: the
 * caller cannot tell the two apart, so ids cannot be probed). Every call runs within `inv`.
 */
export async function getImageStatus(deps: StatusDeps, inv: Invocation, id: string, owner?: string): Promise<Manifest | null> {
  const call = callOptions(inv, deps.config.invocation.reserveMs);
  let manifest: Manifest;
  try {
    const obj = await deps.store.get(deps.config.buckets.variants, manifestKey(deps.config.layout, id), { maxBytes: 1024 * 1024, ...call });
    manifest = parseManifest(JSON.parse(obj.body.toString('utf8')));
  } catch (err) {
    if (err instanceof ObjectNotFoundError) return null;
    throw err;
  }
  if (owner !== undefined && manifest.owner !== owner) return null;
  // Face descriptors are biometric data: the status API never hands them out (they stay in the private manifest).
  manifest = withoutDescriptors(manifest);
  const signer = deps.signer;
  if (signer) {
    const seconds = deps.readUrlSeconds ?? 900;
    manifest.variants = await Promise.all(
      manifest.variants.map(async (v) => (v.url ? v : { ...v, url: await signer.signRead(manifest.bucket, v.key, seconds, call) })),
    );
  }
  return manifest;
}
