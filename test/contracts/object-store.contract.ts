/**
 * The ObjectStore contract, written once and run against every adapter (memory, GCS, S3).
 * Call `objectStoreContract(name, setup)` from a test file; `setup` returns a store and a bucket that
 * exists and is empty for the suite.
 */
import { ImageRejectedError, ObjectNotFoundError, PixelpipeError } from '../../shared/errors';
import type { ObjectStore } from '../../shared/ports';

export interface ContractTarget {
  store: ObjectStore;
  bucket: string;
  /** Extra teardown (stop servers). */
  close?: () => Promise<void>;
}

export function objectStoreContract(name: string, setup: () => Promise<ContractTarget>): void {
  describe(`ObjectStore contract: ${name}`, () => {
    let t: ContractTarget;
    const run = `c${Date.now().toString(36)}/`;
    beforeAll(async () => {
      t = await setup();
    });
    afterAll(async () => {
      await t?.close?.();
    });

    test('put then get returns the bytes, type, cache control and metadata', async () => {
      const body = Buffer.from([0, 1, 2, 255, 254]);
      const info = await t.store.put(t.bucket, `${run}a/b.bin`, body, {
        contentType: 'image/webp',
        cacheControl: 'public, max-age=60',
        metadata: { 'pixelpipe-image': 'abc', 'pixelpipe-trace': '0123456789abcdef0123456789abcdef' },
      });
      expect(info.generation).toMatch(/\S/);
      expect(info.size).toBe(5);
      const got = await t.store.get(t.bucket, `${run}a/b.bin`);
      expect(got.body.equals(body)).toBe(true);
      expect(got.contentType).toBe('image/webp');
      expect(got.cacheControl).toBe('public, max-age=60');
      expect(got.metadata['pixelpipe-image']).toBe('abc');
      expect(got.metadata['pixelpipe-trace']).toBe('0123456789abcdef0123456789abcdef');
      expect(got.generation).toBe(info.generation);
      expect(got.size).toBe(5);
    });

    test('get and head of a missing object', async () => {
      await expect(t.store.get(t.bucket, `${run}missing`)).rejects.toBeInstanceOf(ObjectNotFoundError);
      await expect(t.store.head(t.bucket, `${run}missing`)).resolves.toBeNull();
    });

    test('head returns metadata without the body', async () => {
      await t.store.put(t.bucket, `${run}h.json`, Buffer.from('{}'), { contentType: 'application/json', metadata: { k: 'v' } });
      const h = await t.store.head(t.bucket, `${run}h.json`);
      expect(h).toMatchObject({ key: `${run}h.json`, size: 2, contentType: 'application/json', metadata: { k: 'v' } });
      expect(h).not.toHaveProperty('body');
    });

    test('overwriting a key changes its generation', async () => {
      const a = await t.store.put(t.bucket, `${run}gen`, Buffer.from('1'), { contentType: 'text/plain' });
      const b = await t.store.put(t.bucket, `${run}gen`, Buffer.from('22'), { contentType: 'text/plain' });
      expect(b.generation).not.toBe(a.generation);
      const got = await t.store.get(t.bucket, `${run}gen`);
      expect(got.body.toString()).toBe('22');
      expect(got.generation).toBe(b.generation);
    });

    test('maxBytes refuses a larger object with too_many_bytes', async () => {
      await t.store.put(t.bucket, `${run}big`, Buffer.alloc(64 * 1024, 7), { contentType: 'application/octet-stream' });
      const err = await t.store.get(t.bucket, `${run}big`, { maxBytes: 1000 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ImageRejectedError);
      expect((err as ImageRejectedError).code).toBe('too_many_bytes');
      await expect(t.store.get(t.bucket, `${run}big`, { maxBytes: 64 * 1024 })).resolves.toMatchObject({ size: 64 * 1024 });
    });

    test('keys with spaces, plus signs, percent signs and unicode survive a round trip', async () => {
      const key = `${run}we ird/a+b%2B c/фото 😀.jpg`;
      await t.store.put(t.bucket, key, Buffer.from('x'), { contentType: 'image/jpeg' });
      const got = await t.store.get(t.bucket, key);
      expect(got.key).toBe(key);
      expect(got.body.toString()).toBe('x');
      const listed = await t.store.list(t.bucket, `${run}we ird/`);
      expect(listed.items.map((i) => i.key)).toEqual([key]);
    });

    test('list pages through a prefix in key order', async () => {
      const keys = ['p/1', 'p/2', 'p/3', 'p/4', 'p/5'].map((k) => `${run}${k}`);
      for (const k of [...keys].reverse()) await t.store.put(t.bucket, k, Buffer.from(k), { contentType: 'text/plain' });
      await t.store.put(t.bucket, `${run}q/other`, Buffer.from('o'), { contentType: 'text/plain' });
      const seen: string[] = [];
      let token: string | undefined;
      let pages = 0;
      do {
        const page = await t.store.list(t.bucket, `${run}p/`, { pageSize: 2, pageToken: token });
        expect(page.items.length).toBeLessThanOrEqual(2);
        seen.push(...page.items.map((i) => i.key));
        token = page.nextPageToken;
        pages++;
      } while (token && pages < 10);
      expect(seen).toEqual(keys);
      expect(pages).toBe(3);
    });

    test('startAfter lists only the keys after the given one, within the prefix, in key order', async () => {
      const keys = ['s/a', 's/b', 's/c', 's/d'].map((k) => `${run}${k}`);
      for (const k of keys) await t.store.put(t.bucket, k, Buffer.from(k), { contentType: 'text/plain' });
      await t.store.put(t.bucket, `${run}t/after`, Buffer.from('o'), { contentType: 'text/plain' });
      const after = await t.store.list(t.bucket, `${run}s/`, { startAfter: keys[1] });
      expect(after.items.map((i) => i.key)).toEqual(keys.slice(2));
      const one = await t.store.list(t.bucket, `${run}s/`, { startAfter: keys[0], pageSize: 1 });
      expect(one.items.map((i) => i.key)).toEqual([keys[1]]);
      expect(one.nextPageToken).toBeDefined();
      // A key that is not stored works too (S3 StartAfter and GCS startOffset are positions, not keys).
      const between = await t.store.list(t.bucket, `${run}s/`, { startAfter: `${run}s/bb` });
      expect(between.items.map((i) => i.key)).toEqual(keys.slice(2));
    });

    test('an aborted signal rejects the call with a retryable error and writes nothing', async () => {
      const kept = `${run}abort/kept`;
      await t.store.put(t.bucket, kept, Buffer.from('k'), { contentType: 'text/plain' });
      const invocation = new AbortController();
      invocation.abort(new DOMException('invocation deadline passed', 'TimeoutError'));
      const signal = invocation.signal;
      const calls: Array<[string, () => Promise<unknown>]> = [
        ['put', () => t.store.put(t.bucket, `${run}abort/new`, Buffer.from('n'), { contentType: 'text/plain', signal })],
        ['put over', () => t.store.put(t.bucket, kept, Buffer.from('overwritten'), { contentType: 'text/plain', signal })],
        ['delete', () => t.store.delete(t.bucket, kept, { signal })],
        ['get', () => t.store.get(t.bucket, kept, { signal })],
        ['head', () => t.store.head(t.bucket, kept, { signal })],
        ['list', () => t.store.list(t.bucket, `${run}abort/`, { signal })],
      ];
      for (const [name, call] of calls) {
        const err = await call().then(
          () => null,
          (e: unknown) => e,
        );
        expect([name, err instanceof PixelpipeError && err.retryable]).toEqual([name, true]);
      }
      await expect(t.store.head(t.bucket, `${run}abort/new`)).resolves.toBeNull();
      expect((await t.store.get(t.bucket, kept)).body.toString()).toBe('k');
    });

    test('delete removes an object and tolerates a missing one', async () => {
      await t.store.put(t.bucket, `${run}del`, Buffer.from('d'), { contentType: 'text/plain' });
      await t.store.delete(t.bucket, `${run}del`);
      await expect(t.store.head(t.bucket, `${run}del`)).resolves.toBeNull();
      await expect(t.store.delete(t.bucket, `${run}del`)).resolves.toBeUndefined();
    });
  });
}
