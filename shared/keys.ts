/**
 * Key layout. Every key the pipeline reads or writes is built here, so the recursion guard and the
 * notification prefixes (`originals/` triggers processing, `manifests/` triggers notification) cannot
 * drift apart from the writers.
 *
 *   originals/<owner>/<id>            uploads (server-chosen key, never the client's filename)
 *   variants/<id>/<variant>.<ext>     outputs
 *   manifests/<id>.json               one per image; written last, so it doubles as the commit marker
 *   state/<id>/<generation>.attempts  processing attempt counter (poison-object guard)
 *   state/<id>/<generation>.lease     a processing attempt in progress (the cascade waits for it)
 *
 * Ids made by the upload function are newest-first (see {@link newestFirstId}): listing
 * `originals/<owner>/` in key order yields an owner's images newest first without reading them all.
 *
 * Manifests have their own prefix because GCS Pub/Sub notifications can filter on a prefix only, not
 * a suffix: a `variants/<id>/manifest.json` would make the notifier fire once per variant write.
 */
import { createHash } from 'node:crypto';
import type { PixelpipeConfig } from './config';

export type Layout = PixelpipeConfig['layout'];

const OWNER = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;
const ID = /^[a-z0-9][a-z0-9-]{7,63}$/;

/**
 * The key segment for a token subject. Subjects that are already safe are kept (readable keys);
 * anything else (`auth0|123`, unicode, `..`, slashes) becomes a stable hash, so two subjects can never
 * map into each other's prefix.
 */
export function ownerSegment(subject: string): string {
  if (OWNER.test(subject) && subject !== '.' && subject !== '..' && !subject.startsWith('u_')) return subject;
  return `u_${createHash('sha256')
    .update(subject, 'utf8')
    .digest('base64url')
    .slice(0, 32)
    .replace(/[^A-Za-z0-9]/g, 'x')}`;
}

export function originalKey(layout: Layout, owner: string, id: string): string {
  return `${layout.originals}${owner}/${id}`;
}

/**
 * Identifies an original. Keys made by the upload function parse to their owner and id; other keys
 * under the prefix (imported or backfilled objects) get a stable id derived from the key, so re-uploads
 * to the same key overwrite the same variants. Returns `null` for anything outside the prefix.
 */
export function parseOriginalKey(layout: Layout, key: string): { owner: string; id: string } | null {
  if (!key.startsWith(layout.originals) || key.length === layout.originals.length || key.endsWith('/')) return null;
  const rest = key.slice(layout.originals.length);
  const parts = rest.split('/');
  if (parts.length === 2 && OWNER.test(parts[0]) && ID.test(parts[1])) return { owner: parts[0], id: parts[1] };
  const owner = parts.length >= 2 && OWNER.test(parts[0]) ? parts[0] : '_';
  return { owner, id: `k${createHash('sha256').update(key, 'utf8').digest('hex').slice(0, 31)}` };
}

export function variantKey(layout: Layout, id: string, variant: string, extension: string): string {
  return `${layout.variants}${id}/${variant}.${extension}`;
}

export function manifestKey(layout: Layout, id: string): string {
  return `${layout.manifests}${id}.json`;
}

/** The image id of a manifest key, or `null` when the key is not a manifest. */
export function parseManifestKey(layout: Layout, key: string): string | null {
  if (!key.startsWith(layout.manifests) || !key.endsWith('.json')) return null;
  const id = key.slice(layout.manifests.length, -'.json'.length);
  return ID.test(id) ? id : null;
}

/** The processing lease of one generation: written before the original is read, see attempt-ledger.ts. */
export function leaseKey(layout: Layout, id: string, generation: string | undefined): string {
  return `${layout.state}${id}/${(generation ?? 'unversioned').replace(/[^A-Za-z0-9._-]/g, '_')}.lease`;
}

/** True for a key made by {@link leaseKey}. */
export function isLeaseKey(key: string): boolean {
  return key.endsWith('.lease');
}

/**
 * The first character of every newest-first id. Ids from before them (UUIDs, hex) and the hashed ids
 * of imported keys never start with it, so an owner's prefix splits into `<prefix>z…` (newest first)
 * and everything before it (older images, in key order).
 */
export const NEWEST_FIRST_MARK = 'z';
const TIME_DIGITS = 9;
/** 36^9 − 1 ms is the year 5188: the inverted time stays 9 digits wide until then. */
const TIME_SPAN = 36 ** TIME_DIGITS - 1;
const NEWEST_FIRST = /^z[0-9a-z]{9}-[0-9a-f-]{36}$/;

/**
 * A new image id that sorts before every older one: `z`, the milliseconds left until {@link TIME_SPAN}
 * in 9 base-36 digits, `-`, a random UUID (122 bits, so ids stay unguessable). It shows when the upload
 * was signed (to the millisecond), which its owner knows anyway.
 */
export function newestFirstId(nowMs: number, uuid: string): string {
  const inverted = Math.max(0, TIME_SPAN - Math.floor(nowMs));
  return `${NEWEST_FIRST_MARK}${inverted.toString(36).padStart(TIME_DIGITS, '0')}-${uuid.toLowerCase()}`;
}

/** True for an id made by {@link newestFirstId}. */
export function isNewestFirstId(id: string): boolean {
  return NEWEST_FIRST.test(id);
}

export function attemptsKey(layout: Layout, id: string, generation: string): string {
  return `${layout.state}${id}/${generation.replace(/[^A-Za-z0-9._-]/g, '_')}.attempts`;
}

/** True when `id` has the shape the upload function generates. */
export function isImageId(id: string): boolean {
  return ID.test(id);
}
