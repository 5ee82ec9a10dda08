/**
 * The images API use cases on in-memory fakes: newest-first pages bounded in size and in storage
 * calls, cursors that cannot leave the caller's images, the same 404 (and the same storage calls) for
 * a stranger's image and an unknown id, URLs, and deletion of the original only.
 */
import { randomUUID } from 'node:crypto';
import { newestFirstIds } from '../../shared/clock';
import { loadConfig, type PixelpipeConfig } from '../../shared/config';
import { ClientError } from '../../shared/errors';
import { isNewestFirstId, manifestKey, newestFirstId, originalKey } from '../../shared/keys';
import type { Manifest } from '../../shared/manifest';
import type { Principal } from '../../shared/ports';
import { FakeUrlSigner, FixedClock } from '../../shared/testing/fakes';
import { testInvocation } from '../../shared/testing/invocation';
import { MemoryObjectStore, type MemoryCall } from '../../shared/testing/memory-object-store';
import { getImage, listImages, requestImageDeletion, type ImagesDeps } from '../../shared/usecases/images';

const alice: Principal = { subject: 'alice', anonymous: false };
const bob: Principal = { subject: 'bob', anonymous: false };

function setup(env: Record<string, string> = {}) {
  const config: PixelpipeConfig = loadConfig({ PIXELPIPE_AUTH_MODE: 'anonymous', ...env });
  const store = new MemoryObjectStore();
  const signer = new FakeUrlSigner();
  const deps: ImagesDeps = { store, signer, config, readUrlSeconds: 300 };
  const clock = new FixedClock();
  const ids = newestFirstIds(clock);
  /** Stores an original (and, unless pending, its manifest) for `owner`; returns its id. */
  const add = async (owner: string, opts: { id?: string; pending?: boolean } = {}) => {
    clock.advance(1000);
    const id = opts.id ?? ids.newId();
    const key = originalKey(config.layout, owner, id);
    await store.put(config.buckets.originals, key, Buffer.from('jpeg'), { contentType: 'image/jpeg' });
    if (!opts.pending) {
      await store.put(config.buckets.variants, manifestKey(config.layout, id), Buffer.from(JSON.stringify(manifest(config, owner, id, key))), {
        contentType: 'application/json',
      });
    }
    return id;
  };
  return { config, store, signer, deps, add, clock };
}

function manifest(config: PixelpipeConfig, owner: string, id: string, key: string): Manifest {
  return {
    schemaVersion: 1,
    id,
    owner,
    status: 'processed',
    source: { bucket: config.buckets.originals, key, generation: '1', bytes: 4 },
    variants: [
      { name: 'thumb', format: 'webp', key: `variants/${id}/thumb.webp`, contentType: 'image/webp', width: 10, height: 10, bytes: 3 },
      { name: 'large', format: 'jpeg', key: `variants/${id}/large.jpg`, contentType: 'image/jpeg', width: 20, height: 20, bytes: 3 },
    ],
    placeholder: null,
    bucket: config.buckets.variants,
    attempts: 1,
    createdAt: '2026-01-01T00:00:00.000Z',
    durationMs: 5,
  };
}

/** The store calls of one operation, with the image id masked so two ids can be compared. */
function shape(calls: MemoryCall[], ...ids: string[]): string[] {
  return calls.map((c) => `${c.op} ${c.bucket} ${ids.reduce((k, id) => k.split(id).join('<id>'), c.key).replace(/originals\/[^/]+\//, 'originals/<owner>/')}`);
}

describe('newest-first ids', () => {
  test('sort newest first as strings, keep the id shape, and differ for the same millisecond', () => {
    const times = [Date.parse('2020-01-01'), Date.parse('2026-12-03T16:00:00Z'), Date.parse('2026-12-03T16:00:00.001Z'), Date.parse('2090-06-01')];
    const ids = times.map((t) => newestFirstId(t, randomUUID()));
    expect([...ids].sort()).toEqual([...ids].reverse());
    for (const id of ids) expect(isNewestFirstId(id)).toBe(true);
    expect(newestFirstId(times[1], randomUUID())).not.toBe(newestFirstId(times[1], randomUUID()));
    expect(isNewestFirstId(randomUUID())).toBe(false);
  });
});

describe('listImages', () => {
  test('pages newest first, at most `limit` each, with at most two list calls and one manifest read per image', async () => {
    const { deps, add, store } = setup();
    const made: string[] = [];
    for (let i = 0; i < 23; i++) made.push(await add('alice'));
    await add('bob');
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      store.calls.length = 0;
      const page = await listImages(deps, testInvocation(), alice, { limit: 10, ...(cursor ? { cursor } : {}) });
      expect(page.images.length).toBeLessThanOrEqual(10);
      expect(store.calls.filter((c) => c.op === 'list').length).toBeLessThanOrEqual(2);
      expect(store.calls.filter((c) => c.op === 'get').length).toBe(page.images.length);
      seen.push(...page.images.map((i) => i.id));
      cursor = page.nextCursor;
      pages++;
    } while (cursor && pages < 10);
    expect(seen).toEqual([...made].reverse());
    expect(pages).toBe(3);
  });

  test('images from before newest-first ids (UUIDs) follow the newer ones, and pending images are listed as pending', async () => {
    const { deps, add } = setup();
    const legacy = [await add('alice', { id: randomUUID() }), await add('alice', { id: randomUUID() })].sort();
    const newer = [await add('alice'), await add('alice', { pending: true })];
    const all: { id: string; status: string }[] = [];
    let cursor: string | undefined;
    for (let n = 0; n < 5; n++) {
      const page = await listImages(deps, testInvocation(), alice, { limit: 1, ...(cursor ? { cursor } : {}) });
      all.push(...page.images.map(({ id, status }) => ({ id, status })));
      cursor = page.nextCursor;
      if (!cursor) break;
    }
    expect(all.map((i) => i.id)).toEqual([newer[1], newer[0], ...legacy]);
    expect(all[0].status).toBe('pending');
    expect(all[1].status).toBe('processed');
  });

  test('items carry CDN URLs when a public base is configured and no signed URLs otherwise', async () => {
    const cdn = setup({ PIXELPIPE_PUBLIC_BASE_URL: 'https://cdn.example.com/' });
    await cdn.add('alice');
    const [withCdn] = (await listImages(cdn.deps, testInvocation(), alice, {})).images;
    expect(withCdn.manifest?.variants.map((v) => v.url)).toEqual([
      `https://cdn.example.com/${withCdn.manifest?.variants[0].key}`,
      `https://cdn.example.com/${withCdn.manifest?.variants[1].key}`,
    ]);
    const plain = setup();
    await plain.add('alice');
    const [without] = (await listImages(plain.deps, testInvocation(), alice, {})).images;
    expect(without.manifest?.variants.every((v) => v.url === undefined)).toBe(true);
  });

  test('a cursor is refused when altered, made up, or taken from another caller', async () => {
    const { deps, add } = setup();
    for (let i = 0; i < 3; i++) await add('alice');
    for (let i = 0; i < 3; i++) await add('bob');
    const page = await listImages(deps, testInvocation(), alice, { limit: 1 });
    expect(page.nextCursor).toBeDefined();
    const forged = Buffer.from(`v1:originals/bob/`, 'utf8').toString('base64url');
    for (const cursor of [`${page.nextCursor}x!`, 'not-a-cursor', forged, Buffer.from('originals/alice/zz').toString('base64url')]) {
      await expect(listImages(deps, testInvocation(), alice, { cursor })).rejects.toMatchObject({ status: 400, code: 'invalid_request' });
    }
    await expect(listImages(deps, testInvocation(), bob, { cursor: page.nextCursor })).rejects.toMatchObject({ status: 400 });
    // The cursor works for its owner and only ever yields their images.
    const next = await listImages(deps, testInvocation(), alice, { limit: 5, cursor: page.nextCursor });
    expect(next.images).toHaveLength(2);
  });

  test.each([[0], [101], ['ten']])('limit %p is a 400', async (limit) => {
    const { deps } = setup();
    await expect(listImages(deps, testInvocation(), alice, { limit })).rejects.toBeInstanceOf(ClientError);
  });
});

describe('getImage', () => {
  test('the owner gets the manifest with signed read URLs for every variant', async () => {
    const { deps, add } = setup();
    const id = await add('alice');
    const m = await getImage(deps, testInvocation(), alice, id);
    expect(m.id).toBe(id);
    expect(m.variants.map((v) => v.url)).toEqual(m.variants.map((v) => `https://storage.test/${m.bucket}/${encodeURIComponent(v.key)}?expires=300`));
  });

  test('a CDN base replaces signing', async () => {
    const { deps, add } = setup({ PIXELPIPE_PUBLIC_BASE_URL: 'https://cdn.example.com' });
    const id = await add('alice');
    const m = await getImage(deps, testInvocation(), alice, id);
    expect(m.variants[0].url).toBe(`https://cdn.example.com/variants/${id}/thumb.webp`);
  });

  test("someone else's image, an unknown id and a pending image are the same 404 after the same storage calls", async () => {
    const { deps, add, store } = setup();
    const bobs = await add('bob');
    const pending = await add('alice', { pending: true });
    const unknown = newestFirstId(Date.now(), randomUUID());
    const attempt = async (id: string) => {
      store.calls.length = 0;
      const err = await getImage(deps, testInvocation(), alice, id).catch((e: unknown) => e);
      return { err: err instanceof ClientError ? { status: err.status, code: err.code, message: err.message } : err, calls: shape(store.calls, id) };
    };
    const [stranger, missing, notYet] = [await attempt(bobs), await attempt(unknown), await attempt(pending)];
    expect(stranger.err).toEqual({ status: 404, code: 'not_found', message: 'no such image' });
    expect(missing).toEqual(stranger);
    expect(notYet).toEqual(stranger);
    expect(stranger.calls).toEqual([`get ${deps.config.buckets.variants} manifests/<id>.json`, `list ${deps.config.buckets.originals} originals/<owner>/<id>`]);
  });

  test('an id of the wrong shape is a 404 without any storage call', async () => {
    const { deps, store } = setup();
    await expect(getImage(deps, testInvocation(), alice, '../manifests/x')).rejects.toMatchObject({ status: 404 });
    expect(store.calls).toEqual([]);
  });
});

describe('requestImageDeletion', () => {
  test('deletes only the original and answers deleting; again it is a 404', async () => {
    const { deps, add, store, config } = setup();
    const id = await add('alice');
    store.calls.length = 0;
    await expect(requestImageDeletion(deps, testInvocation(), alice, id)).resolves.toEqual({ id, status: 'deleting' });
    expect(store.calls.filter((c) => c.op === 'delete')).toEqual([{ op: 'delete', bucket: config.buckets.originals, key: `originals/alice/${id}` }]);
    // The manifest stays for the cascade to remove.
    expect(store.keys(config.buckets.variants)).toEqual([manifestKey(config.layout, id)]);
    await expect(requestImageDeletion(deps, testInvocation(), alice, id)).rejects.toMatchObject({ status: 404 });
  });

  test("someone else's image is the same 404 and stays", async () => {
    const { deps, add, store, config } = setup();
    const id = await add('bob');
    await expect(requestImageDeletion(deps, testInvocation(), alice, id)).rejects.toMatchObject({ status: 404, code: 'not_found' });
    expect(store.keys(config.buckets.originals)).toEqual([`originals/bob/${id}`]);
  });

  test('a pending image (no manifest yet) can be deleted by its owner', async () => {
    const { deps, add, store, config } = setup();
    const id = await add('alice', { pending: true });
    await expect(requestImageDeletion(deps, testInvocation(), alice, id)).resolves.toMatchObject({ status: 'deleting' });
    expect(store.keys(config.buckets.originals)).toEqual([]);
  });
});
