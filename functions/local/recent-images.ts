/**
 * The dev server's "recent images" view: a bounded in-memory index fed by the upload responses (an
 * image becomes `pending`), the originals arriving in storage, and the completion events (it becomes
 * `processed` or `failed`). Seeded at start-up from the manifests already in storage.
 */
import type { Manifest } from '../../shared/manifest';

/** One row of `GET /api/images`. */
export interface RecentImage {
  id: string;
  status: 'pending' | 'processed' | 'failed';
  filename?: string;
  reason?: { code: string; message: string };
  /** When the image entered the pipeline (upload request), ISO 8601. */
  createdAt: string;
  /** Size of the original. */
  bytes?: number;
  /** Number of variant files written. */
  variants?: number;
  durationMs?: number;
}

interface Entry extends RecentImage {
  /** Order key: when the image entered the pipeline, ms. */
  at: number;
  /** A pending image whose original never arrived is dropped once its upload URL expired. */
  expiresAt?: number;
  uploaded: boolean;
}

/** Bounded, newest-first index of images. */
export class RecentImages {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly limit = 200,
    private readonly now: () => number = Date.now,
  ) {}

  /** An upload was signed. */
  signed(id: string, info: { filename?: string; expiresAt?: string }): void {
    const at = this.now();
    const expires = info.expiresAt ? Date.parse(info.expiresAt) : NaN;
    this.put({
      id,
      status: 'pending',
      ...(info.filename ? { filename: info.filename } : {}),
      createdAt: new Date(at).toISOString(),
      at,
      ...(Number.isFinite(expires) ? { expiresAt: expires } : {}),
      uploaded: false,
    });
  }

  /** The original arrived in storage. */
  uploaded(id: string, bytes?: number): void {
    const e = this.entries.get(id);
    if (e) {
      e.uploaded = true;
      if (bytes !== undefined && e.bytes === undefined) e.bytes = bytes;
      return;
    }
    // Uploaded by another client (CLI, SDK, the S3 API directly): still worth showing.
    const at = this.now();
    this.put({ id, status: 'pending', createdAt: new Date(at).toISOString(), at, uploaded: true, ...(bytes !== undefined ? { bytes } : {}) });
  }

  /** A completion event (or a manifest read at start-up) arrived. */
  completed(m: Manifest): void {
    const existing = this.entries.get(m.id);
    // Images seen only through their manifest are ordered by when processing started.
    const at = existing?.at ?? Math.max(0, Date.parse(m.createdAt) - m.durationMs);
    const filename = m.source.filename ?? existing?.filename;
    this.put({
      id: m.id,
      status: m.status,
      ...(filename ? { filename } : {}),
      ...(m.reason ? { reason: { code: m.reason.code, message: m.reason.message } } : {}),
      createdAt: existing?.createdAt ?? new Date(at).toISOString(),
      bytes: m.source.bytes,
      variants: m.variants.length,
      durationMs: m.durationMs,
      at,
      uploaded: true,
    });
  }

  /** A `deleted` event arrived: the image and everything derived from it are gone. */
  deleted(id: string): void {
    this.entries.delete(id);
  }

  /** Newest first, at most `max`. */
  list(max = 50): RecentImage[] {
    const now = this.now();
    const out: RecentImage[] = [];
    for (const e of [...this.entries.values()].sort((a, b) => b.at - a.at)) {
      if (e.status === 'pending' && !e.uploaded && e.expiresAt !== undefined && e.expiresAt < now) {
        this.entries.delete(e.id);
        continue;
      }
      if (out.length < max) out.push(publicView(e));
    }
    return out;
  }

  get size(): number {
    return this.entries.size;
  }

  private put(e: Entry): void {
    this.entries.delete(e.id);
    this.entries.set(e.id, e);
    if (this.entries.size <= this.limit) return;
    // Evict the oldest by pipeline time, not by insertion (seeding inserts in arbitrary order).
    const oldest = [...this.entries.values()].sort((a, b) => a.at - b.at).slice(0, this.entries.size - this.limit);
    for (const o of oldest) this.entries.delete(o.id);
  }
}

function publicView(e: Entry): RecentImage {
  const { at: _at, expiresAt: _exp, uploaded: _up, ...rest } = e;
  return rest;
}
