/**
 * Use case: delete variant objects the current recipe of their image's profile no longer produces — a
 * variant removed from `PIXELPIPE_VARIANTS` or a profile, or a format dropped from a variant that stays
 * (`variants/<id>/card.jpeg` once `card` is WebP only) — which nothing else ever removes.
 *
 * Safe by construction:
 * - it lists only the variants prefix of the variants bucket and deletes only keys under it that parse
 *   as `variants/<id>/<name>.<ext>`: originals, manifests and state objects are never candidates, even
 *   when everything shares one bucket (the prefixes cannot nest, see loadConfig);
 * - it prunes only images whose manifest is `processed` with the current recipe of their profile. Such a
 *   manifest lists exactly the current variants, so what it deletes is referenced by nothing; an image
 *   without a manifest (perhaps being processed right now), failed, or stale (its manifest still lists the
 *   old variants: run `backfill --stale` first) is left alone and counted;
 * - a dry run is the default of the CLI; a rerun after an interruption finds only what is left.
 */
import { PixelpipeError } from '../errors';
import { callOptions, type Invocation } from '../invocation';
import type { Manifest } from '../manifest';
import type { ObjectInfo } from '../ports';
import { findProfile } from '../profiles';
import { isStale, manifestProfile } from './backfill';
import { mapLimit, readManifest, type ProcessDeps } from './process-image';

export interface PruneOptions {
  /** Only report what would be deleted. */
  dryRun: boolean;
  /** Only images of this profile. */
  profile?: string;
  /** Deletes in flight at once. */
  concurrency: number;
  /** Stop after this many deletions in this run. */
  maxDeletes: number;
  /** Stops taking new objects; deletions in flight finish. */
  signal?: AbortSignal;
  onProgress?: (p: PruneReport) => void;
}

export interface PruneReport {
  /** Variant objects listed. */
  listed: number;
  /** Objects that would be deleted (dry run) or were: count and stored bytes. */
  candidates: number;
  bytes: number;
  deleted: number;
  /** Images whose objects were left alone, by why: `no manifest`, `failed`, `stale recipe`, `other profile`. */
  skippedImages: Record<string, number>;
  /** Images with at least one candidate. */
  images: number;
  errors: number;
  stoppedBy: 'done' | 'cap' | 'aborted';
  /** The candidate keys (dry run) or the deleted ones. */
  keys: string[];
}

/**
 * Finds (and unless `dryRun`, deletes) the variant objects no current recipe produces. One listing of
 * the variants prefix, paginated; one manifest read per image (objects of an image are listed together).
 */
export async function pruneVariants(deps: ProcessDeps, inv: Invocation, opts: PruneOptions): Promise<PruneReport> {
  const { config, store } = deps;
  if (opts.profile !== undefined && !findProfile(config, opts.profile)) {
    throw new PixelpipeError('invalid_config', `no profile "${opts.profile}" is configured`, { retryable: false });
  }
  const bucket = config.buckets.variants;
  const prefix = config.layout.variants;
  const r: PruneReport = { listed: 0, candidates: 0, bytes: 0, deleted: 0, skippedImages: {}, images: 0, errors: 0, stoppedBy: 'done', keys: [] };
  const call = callOptions(inv);
  // The image being looked at: its verdict is decided once, from its manifest.
  let current: { id: string; keep: ReadonlySet<string> | null } | undefined;
  // The keys to keep are the manifest's own: a manifest of the current recipe lists exactly the objects
  // that recipe writes, so a key it does not list (a removed name or a dropped format) is an orphan.
  const verdict = async (id: string): Promise<ReadonlySet<string> | null> => {
    if (current?.id === id) return current.keep;
    const m = await readManifest(store, config, id, call);
    const skip = whySkip(deps, m, opts.profile);
    if (skip) r.skippedImages[skip] = (r.skippedImages[skip] ?? 0) + 1;
    const keep = skip ? null : new Set(m!.variants.map((v) => v.key));
    current = { id, keep };
    return keep;
  };
  const seenImages = new Set<string>();
  let batch: ObjectInfo[] = [];
  const flush = async (): Promise<void> => {
    const todo = batch;
    batch = [];
    if (opts.dryRun || !todo.length) return;
    await mapLimit(todo, opts.concurrency, async (o) => {
      try {
        await store.delete(bucket, o.key, call);
        r.deleted++;
      } catch (err) {
        // One failed delete must not end the run; the next run finds the object again.
        r.errors++;
        inv.logger.error('prune: delete failed', { key: o.key, err, reason: err instanceof PixelpipeError ? err.code : 'internal' });
      }
    });
    opts.onProgress?.({ ...r, keys: [...r.keys] });
  };

  let pageToken: string | undefined;
  listing: do {
    const page = await store.list(bucket, prefix, { pageToken, pageSize: 500, ...call });
    pageToken = page.nextPageToken;
    for (const obj of page.items) {
      if (opts.signal?.aborted) {
        r.stoppedBy = 'aborted';
        break listing;
      }
      if (r.candidates >= opts.maxDeletes) {
        r.stoppedBy = 'cap';
        break listing;
      }
      const parsed = parseVariantObjectKey(prefix, obj.key);
      if (!parsed) continue;
      r.listed++;
      const keep = await verdict(parsed.id);
      if (!keep || keep.has(obj.key)) continue;
      if (!seenImages.has(parsed.id)) {
        seenImages.add(parsed.id);
        r.images++;
      }
      r.candidates++;
      r.bytes += obj.size;
      r.keys.push(obj.key);
      batch.push(obj);
      if (batch.length >= opts.concurrency * 8) await flush();
    }
  } while (pageToken);
  await flush();
  opts.onProgress?.({ ...r, keys: [...r.keys] });
  return r;
}

function whySkip(deps: ProcessDeps, m: Manifest | null, profile: string | undefined): string | null {
  if (!m) return 'no manifest';
  if (profile !== undefined && manifestProfile(deps.config, m).name !== profile) return 'other profile';
  if (m.status !== 'processed') return 'failed';
  if (isStale(deps.config, m)) return 'stale recipe';
  return null;
}

/** `variants/<id>/<name>.<ext>` → id and variant name; anything else (deeper keys, no extension) is not ours to delete. */
export function parseVariantObjectKey(prefix: string, key: string): { id: string; name: string } | null {
  if (!key.startsWith(prefix)) return null;
  const m = /^([^/]+)\/([a-z0-9][a-z0-9_-]{0,31})\.[a-z0-9]+$/.exec(key.slice(prefix.length));
  return m ? { id: m[1], name: m[2] } : null;
}
