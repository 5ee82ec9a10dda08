/**
 * The browser helper's images API calls with an injected fetch: URLs, auth header, and how 404s and
 * errors come back.
 */
import { deleteImage, getImage, listImages, UploadError } from '../../web/upload.js';

interface Seen {
  url: string;
  method: string;
  headers: Record<string, string>;
}

function fakeFetch(status: number, body: unknown): { fetch: typeof fetch; seen: Seen[] } {
  const seen: Seen[] = [];
  const fn = (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    seen.push({
      url: input instanceof Request ? input.url : input.toString(),
      method: init?.method ?? 'GET',
      headers: { ...(init?.headers as Record<string, string>) },
    });
    return Promise.resolve(new Response(body === undefined ? null : JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } }));
  };
  return { fetch: fn, seen };
}

const endpoint = 'https://api.example.com/images/';

describe('images API client', () => {
  test('listImages sends limit and cursor with the bearer token and returns the page', async () => {
    const { fetch, seen } = fakeFetch(200, { images: [{ id: 'a', status: 'pending', bytes: 1 }], nextCursor: 'c2' });
    await expect(listImages({ endpoint, token: 't0k', limit: 5, cursor: 'c1', fetch })).resolves.toEqual({
      images: [{ id: 'a', status: 'pending', bytes: 1 }],
      nextCursor: 'c2',
    });
    expect(seen).toEqual([
      { url: 'https://api.example.com/images?limit=5&cursor=c1', method: 'GET', headers: { accept: 'application/json', authorization: 'Bearer t0k' } },
    ]);
  });

  test('getImage: the manifest on 200, null on 404, an UploadError with the API code otherwise', async () => {
    const ok = fakeFetch(200, { id: 'x', status: 'processed' });
    await expect(getImage('x y', { endpoint, fetch: ok.fetch })).resolves.toEqual({ id: 'x', status: 'processed' });
    expect(ok.seen[0].url).toBe('https://api.example.com/images/x%20y');
    await expect(getImage('x', { endpoint, fetch: fakeFetch(404, { error: { code: 'not_found', message: 'no such image' } }).fetch })).resolves.toBeNull();
    const denied = await getImage('x', { endpoint, fetch: fakeFetch(401, { error: { code: 'unauthenticated', message: 'no' } }).fetch }).catch(
      (e: unknown) => e,
    );
    expect(denied).toBeInstanceOf(UploadError);
    expect(denied).toMatchObject({ code: 'unauthenticated', status: 401, stage: 'images' });
  });

  test('deleteImage: DELETE, true on 202, false on 404', async () => {
    const accepted = fakeFetch(202, { id: 'x', status: 'deleting' });
    await expect(deleteImage('x', { endpoint, fetch: accepted.fetch })).resolves.toBe(true);
    expect(accepted.seen[0]).toMatchObject({ url: 'https://api.example.com/images/x', method: 'DELETE' });
    await expect(deleteImage('x', { endpoint, fetch: fakeFetch(404, { error: { code: 'not_found' } }).fetch })).resolves.toBe(false);
    await expect(deleteImage('x', { endpoint, fetch: fakeFetch(503, { error: { code: 'storage_unavailable' } }).fetch })).rejects.toMatchObject({
      code: 'storage_unavailable',
      status: 503,
    });
  });
});
