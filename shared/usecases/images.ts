/**
 * Use cases of the images API: one owner's images, read, listed and deleted.
 *
 * Owner scoping and existence: every lookup is made of the same two storage calls whoever asks and
 * whatever the id — read `manifests/<id>.json`, then list the caller's own original key (a listing
 * with the key as prefix, so the role needs `ListBucket` on `originals/`, not read access to the
 * uploads). Someone else's image, an unknown id and an image still pending all end in the same
 * {@link ClientError} 404 after the same calls, so ids cannot be probed.
 *
 * Newest first without reading everything: ids made by the upload function sort newest first
 * (`newestFirstId` in keys.ts), so an owner's newer images are the keys under `originals/<owner>/z`
 * in key order. Keys from before that id scheme (UUIDs) sort before `z` and follow, in key order.
 * One page costs at most two list calls (one while the newer images last; a second on the page where
 * they run out and the older keys begin) and one manifest read per image listed.
 */
import { z } from 'zod';
import type { PixelpipeConfig } from '../config';
import { ClientError } from '../errors';
import { callOptions, type CallOptions, type Invocation } from '../invocation';
import { NEWEST_FIRST_MARK, isImageId, originalKey, ownerSegment, parseOriginalKey } from '../keys';
import { withoutDescriptors } from '../events';
import type { Manifest, VariantEntry } from '../manifest';
import type { ObjectInfo, ObjectStore, Principal, UrlSigner } from '../ports';
import { mapLimit, readManifest } from './process-image';

/** What the images API needs, built once per cold start. */
export interface ImagesDeps {
  /** Reads manifests; lists and deletes originals (never variants, manifests or state). */
  store: ObjectStore;
  /** Signs variant reads when no public (CDN) base URL is configured. */
  signer: UrlSigner;
  config: PixelpipeConfig;
  /** Lifetime of signed read URLs (default 900 s). */
  readUrlSeconds?: number;
}

/** One row of `GET /images`. */
export interface ImageListItem {
  id: string;
  /** `pending`: the original is stored, no manifest yet. */
  status: 'pending' | 'processed' | 'failed';
  /** When storage last wrote the original. */
  uploadedAt?: string;
  bytes: number;
  /** The manifest, with variant URLs only when a public base URL is configured (see {@link getImage} for signed ones). */
  manifest?: Manifest;
}

export interface ImageListPage {
  images: ImageListItem[];
  /** Pass as `cursor` for the next page; absent on the last one. */
  nextCursor?: string;
}

/** The query of `GET /images`, validated at the edge. */
export const listQuerySchema = z
  .object({
    limit: z.coerce.number().int().min(1).max(100).default(20),
    cursor: z.string().min(1).max(2048).optional(),
  })
  .strict();
export type ListQuery = z.input<typeof listQuerySchema>;

const NOT_FOUND = (): ClientError => new ClientError(404, 'not_found', 'no such image');
const READ_CONCURRENCY = 8;
const CURSOR_VERSION = 'v1:';

/**
 * The caller's image with usable URLs: under the public (CDN) base URL when one is configured,
 * otherwise signed read URLs valid for `readUrlSeconds`. Throws `ClientError(404)` for an unknown id,
 * someone else's image, an image not processed yet and a deleted one alike.
 */
export async function getImage(deps: ImagesDeps, inv: Invocation, principal: Principal, id: string): Promise<Manifest> {
  const call = callOptions(inv, deps.config.invocation.reserveMs);
  const found = await locate(deps, call, principal, id);
  if (!found.exists || !found.manifest) throw NOT_FOUND();
  return withUrls(deps, found.manifest, call, true);
}

/**
 * One page of the caller's images, newest first (see the module comment for the order and its cost).
 * Throws `ClientError(400, 'invalid_request')` for a bad limit, or a cursor that was altered or
 * belongs to another caller.
 */
export async function listImages(deps: ImagesDeps, inv: Invocation, principal: Principal, query: ListQuery): Promise<ImageListPage> {
  const parsed = listQuerySchema.safeParse(query);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw new ClientError(400, 'invalid_request', `${first.path.join('.') || 'query'}: ${first.message}`);
  }
  const { limit } = parsed.data;
  const { config, store } = deps;
  const call = callOptions(inv, config.invocation.reserveMs);
  const bucket = config.buckets.originals;
  const prefix = originalKey(config.layout, ownerSegment(principal.subject), '');
  const newest = prefix + NEWEST_FIRST_MARK;
  const after = parsed.data.cursor === undefined ? undefined : decodeCursor(parsed.data.cursor, prefix);

  const found: ObjectInfo[] = [];
  let more = false;
  if (after === undefined || after.startsWith(newest)) {
    const page = await store.list(bucket, newest, { pageSize: limit, ...(after !== undefined ? { startAfter: after } : {}), ...call });
    found.push(...page.items);
    // A full page may be followed by more newer images or by the older keys: either way, another page.
    more = page.nextPageToken !== undefined || page.items.length >= limit;
  }
  if (!more && found.length < limit) {
    // The older keys: everything under the prefix that sorts before `<prefix>z`.
    const olderAfter = after !== undefined && !after.startsWith(newest) ? after : undefined;
    const page = await store.list(bucket, prefix, { pageSize: limit - found.length, ...(olderAfter !== undefined ? { startAfter: olderAfter } : {}), ...call });
    const older = page.items.filter((o) => byteOrder(o.key, newest) < 0);
    found.push(...older);
    more = older.length === page.items.length && page.nextPageToken !== undefined;
  }

  const images = await mapLimit(found, READ_CONCURRENCY, async (o): Promise<ImageListItem | null> => {
    const ref = parseOriginalKey(config.layout, o.key);
    if (!ref) return null;
    const manifest = await readManifest(store, config, ref.id, call);
    const own = manifest && manifest.owner === ref.owner && manifest.source.key === o.key ? manifest : null;
    return {
      id: ref.id,
      status: own ? own.status : 'pending',
      ...(o.updated ? { uploadedAt: o.updated.toISOString() } : {}),
      bytes: o.size,
      ...(own ? { manifest: await withUrls(deps, own, call, false) } : {}),
    };
  });
  const last = found.at(-1);
  return {
    images: images.filter((i): i is ImageListItem => i !== null),
    ...(more && last ? { nextCursor: encodeCursor(last.key) } : {}),
  };
}

/** What `DELETE /images/{id}` answers (202): the original is gone, the cascade removes the rest. */
export interface DeletionAccepted {
  id: string;
  status: 'deleting';
}

/**
 * Deletes the caller's original; the storage deletion event starts the cascade, which removes the
 * variants, manifest and state and publishes `pixelpipe.image.deleted.v1`. Throws `ClientError(404)`
 * exactly as {@link getImage} does, so a repeated delete (the original already gone) answers 404: the
 * effect is the same, the image is gone.
 */
export async function requestImageDeletion(deps: ImagesDeps, inv: Invocation, principal: Principal, id: string): Promise<DeletionAccepted> {
  const call = callOptions(inv, deps.config.invocation.reserveMs);
  const found = await locate(deps, call, principal, id);
  if (!found.exists) throw NOT_FOUND();
  await deps.store.delete(deps.config.buckets.originals, found.key, call);
  inv.logger.info('original deleted on request', { imageId: id, key: found.key });
  return { id, status: 'deleting' };
}

interface Located {
  /** The original's key under the caller's prefix. */
  key: string;
  exists: boolean;
  /** The manifest, when it belongs to the caller. */
  manifest: Manifest | null;
}

/**
 * Reads the manifest, then lists the caller's own original key: the same two calls for every id, so
 * a stranger's image and a missing one cannot be told apart, not even by what storage is asked.
 */
async function locate(deps: ImagesDeps, call: CallOptions, principal: Principal, id: string): Promise<Located> {
  const { config, store } = deps;
  const owner = ownerSegment(principal.subject);
  const ownPrefix = originalKey(config.layout, owner, '');
  if (!isImageId(id)) throw NOT_FOUND();
  const manifest = await readManifest(store, config, id, call);
  // Imported originals (hashed ids) keep their own key, recorded in the manifest; it must still lie under the caller's prefix.
  const own = manifest && manifest.owner === owner && manifest.source.bucket === config.buckets.originals && manifest.source.key.startsWith(ownPrefix);
  const key = own ? manifest.source.key : originalKey(config.layout, owner, id);
  const page = await store.list(config.buckets.originals, key, { pageSize: 1, ...call });
  const exists = page.items[0]?.key === key;
  return { key, exists, manifest: own && exists ? manifest : null };
}

/** Variant URLs: the public base when configured; signed reads only when `sign` (one signature per variant). */
async function withUrls(deps: ImagesDeps, manifest: Manifest, call: CallOptions, sign: boolean): Promise<Manifest> {
  const base = deps.config.output.publicBaseUrl?.replace(/\/$/, '');
  const seconds = deps.readUrlSeconds ?? 900;
  const variants = await Promise.all(
    manifest.variants.map(async (v): Promise<VariantEntry> => {
      if (base) return { ...v, url: `${base}/${v.key}` };
      if (!sign) return withoutUrl(v);
      return { ...v, url: await deps.signer.signRead(manifest.bucket, v.key, seconds, call) };
    }),
  );
  // Face descriptors are biometric data: the HTTP API never hands them out (they stay in the private manifest).
  return { ...withoutDescriptors(manifest), variants };
}

function withoutUrl(v: VariantEntry): VariantEntry {
  const { url: _url, ...rest } = v;
  return rest;
}

/** The cursor is the last key listed; it is checked against the caller's prefix, so it can only move within their own images. */
function encodeCursor(key: string): string {
  return Buffer.from(CURSOR_VERSION + key, 'utf8').toString('base64url');
}

function decodeCursor(cursor: string, prefix: string): string {
  const text = /^[A-Za-z0-9_-]+$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString('utf8') : '';
  const key = text.startsWith(CURSOR_VERSION) ? text.slice(CURSOR_VERSION.length) : '';
  if (!key.startsWith(prefix) || key.length === prefix.length || key.length > 1024)
    throw new ClientError(400, 'invalid_request', 'cursor: not a cursor of this listing');
  return key;
}

/** Storage lists in UTF-8 byte order, which differs from JavaScript's UTF-16 order for astral characters. */
function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
