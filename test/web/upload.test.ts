/**
 * The browser upload helper, exercised in Node with hand-written fakes for XMLHttpRequest and fetch.
 * `web/upload.js` is an ES module, so Jest must transform `.js` under `web/` (see the report / jest.config).
 */
import { uploadImage, UploadError, type UploadProgress } from '../../web/upload.js';

type Handler = () => void;

/** Records what the helper sends and lets each test drive progress and completion. */
class FakeXHR {
  static sent: FakeXHR[] = [];
  static waiters: Array<(x: FakeXHR) => void> = [];

  method = '';
  url = '';
  headers: Record<string, string> = {};
  headerOrder: string[] = [];
  body: unknown = undefined;
  status = 0;
  responseText = '';
  aborted = false;
  upload: { onprogress: ((e: { lengthComputable: boolean; loaded: number; total: number }) => void) | null } = { onprogress: null };
  onload: Handler | null = null;
  onerror: Handler | null = null;
  onabort: Handler | null = null;
  ontimeout: Handler | null = null;

  open(method: string, url: string): void {
    this.method = method;
    this.url = url;
  }
  setRequestHeader(name: string, value: string): void {
    this.headers[name] = value;
    this.headerOrder.push(name);
  }
  send(body: unknown): void {
    this.body = body;
    const waiter = FakeXHR.waiters.shift();
    if (waiter) waiter(this);
    else FakeXHR.sent.push(this);
  }
  abort(): void {
    this.aborted = true;
    this.onabort?.();
  }

  // Test-side controls.
  progress(loaded: number, total: number): void {
    this.upload.onprogress?.({ lengthComputable: true, loaded, total });
  }
  respond(status: number, text = ''): void {
    this.status = status;
    this.responseText = text;
    this.onload?.();
  }
  /** The next XHR the helper sends (the upload starts only after the ticket request resolves). */
  static next(): Promise<FakeXHR> {
    const ready = FakeXHR.sent.shift();
    return ready ? Promise.resolve(ready) : new Promise((resolve) => FakeXHR.waiters.push(resolve));
  }
}

interface Call {
  url: string;
  init: RequestInit;
}

/** A fetch that answers from a queue of responses per URL and records every call. */
function fakeFetch(routes: Record<string, Array<() => Response | Promise<Response>>>) {
  const calls: Call[] = [];
  const fn = async (input: RequestInfo | URL, init: RequestInit = {}): Promise<Response> => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    calls.push({ url, init });
    if (init.signal?.aborted) throw init.signal.reason;
    const queue = routes[url];
    if (!queue || queue.length === 0) throw new Error(`unexpected fetch ${url}`);
    const next = queue.length > 1 ? queue.shift()! : queue[0];
    return next();
  };
  return { fetch: fn, calls };
}

const json = (status: number, body: unknown) => () => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

const ENDPOINT = 'https://api.example/api/uploads';
const EXPIRES = '2030-01-01T00:00:00.000Z';
const PUT_TICKET = {
  id: 'img_123',
  key: 'uploads/u1/img_123',
  upload: {
    method: 'PUT',
    url: 'https://storage.example/bucket/uploads/u1/img_123?sig=abc',
    headers: { 'Content-Type': 'image/png', 'x-goog-if-generation-match': '0' },
  },
  expiresAt: EXPIRES,
  statusUrl: '/api/images/img_123',
};
const POST_TICKET = {
  id: 'img_456',
  key: 'uploads/u1/img_456',
  upload: {
    method: 'POST',
    url: 'https://bucket.s3.example/',
    fields: { key: 'uploads/u1/img_456', 'Content-Type': 'image/png', Policy: 'cG9saWN5', 'X-Amz-Signature': 'deadbeef' },
    headers: { 'x-trace': 't1', 'Content-Type': 'multipart/form-data' },
  },
  expiresAt: EXPIRES,
};
const MANIFEST = { schemaVersion: 1, id: 'img_123', status: 'processed', variants: [], placeholder: null };

const png = () => new File([new Uint8Array(100)], 'cat.png', { type: 'image/png' });

beforeEach(() => {
  FakeXHR.sent = [];
  FakeXHR.waiters = [];
  (globalThis as unknown as { XMLHttpRequest: unknown }).XMLHttpRequest = FakeXHR;
});

describe('uploadImage', () => {
  it('requests a ticket, then PUTs the file body with exactly the given headers', async () => {
    const { fetch, calls } = fakeFetch({ [ENDPOINT]: [json(201, PUT_TICKET)] });
    const file = png();
    const done = uploadImage(file, { endpoint: ENDPOINT, token: 'tok', fetch });
    const xhr = await FakeXHR.next();

    expect(calls).toHaveLength(1);
    expect(calls[0].init.method).toBe('POST');
    const headers = calls[0].init.headers as Record<string, string>;
    expect(headers.authorization).toBe('Bearer tok');
    expect(headers['content-type']).toBe('application/json');
    expect(JSON.parse(calls[0].init.body as string)).toEqual({ contentType: 'image/png', size: 100, filename: 'cat.png' });

    expect(xhr.method).toBe('PUT');
    expect(xhr.url).toBe(PUT_TICKET.upload.url);
    expect(xhr.headers).toEqual(PUT_TICKET.upload.headers);
    expect(xhr.body).toBe(file);

    xhr.respond(200);
    await expect(done).resolves.toEqual({ id: 'img_123', key: 'uploads/u1/img_123', expiresAt: EXPIRES });
  });

  it('omits Authorization without a token and guesses a type the browser left empty', async () => {
    const { fetch, calls } = fakeFetch({ [ENDPOINT]: [json(201, PUT_TICKET)] });
    const done = uploadImage(new File([new Uint8Array(4)], 'IMG_0001.HEIC'), { endpoint: ENDPOINT, fetch });
    (await FakeXHR.next()).respond(200);
    await done;
    const headers = calls[0].init.headers as Record<string, string>;
    expect(headers).not.toHaveProperty('authorization');
    expect((JSON.parse(calls[0].init.body as string) as { contentType: string }).contentType).toBe('image/heic');
  });

  it('POSTs a form with every field in order and the file as the last field', async () => {
    const { fetch } = fakeFetch({ [ENDPOINT]: [json(201, POST_TICKET)] });
    const file = png();
    const done = uploadImage(file, { endpoint: ENDPOINT, fetch });
    const xhr = await FakeXHR.next();

    expect(xhr.method).toBe('POST');
    expect(xhr.url).toBe(POST_TICKET.upload.url);
    expect(xhr.body).toBeInstanceOf(FormData);
    const entries: Array<[string, FormDataEntryValue]> = [];
    (xhr.body as FormData).forEach((value, name) => entries.push([name, value]));
    expect(entries.map(([name]) => name)).toEqual(['key', 'Content-Type', 'Policy', 'X-Amz-Signature', 'file']);
    expect(entries.slice(0, 4).map(([, value]) => value)).toEqual(Object.values(POST_TICKET.upload.fields));
    const sentFile = entries[4][1] as File;
    expect(sentFile.name).toBe('cat.png');
    expect(sentFile.size).toBe(100);
    // Other headers go through; Content-Type is left to the browser so the multipart boundary is right.
    expect(xhr.headers).toEqual({ 'x-trace': 't1' });

    xhr.respond(204);
    await expect(done).resolves.toMatchObject({ id: 'img_456' });
  });

  it('reports monotonic progress fractions that end at exactly 1', async () => {
    const { fetch } = fakeFetch({ [ENDPOINT]: [json(201, POST_TICKET)] });
    const seen: UploadProgress[] = [];
    const done = uploadImage(png(), { endpoint: ENDPOINT, fetch, onProgress: (p) => seen.push(p) });
    const xhr = await FakeXHR.next();
    // Multipart totals are larger than the file; repeated and out-of-order events must not go backwards.
    xhr.progress(50, 200);
    xhr.progress(120, 200);
    xhr.progress(100, 200);
    xhr.progress(120, 200);
    xhr.progress(200, 200);
    // Every byte left the browser, but storage has not answered yet: not done.
    expect(seen.at(-1)!.fraction).toBeLessThan(1);
    xhr.respond(204);
    await done;

    const fractions = seen.map((p) => p.fraction);
    expect(fractions).toEqual([0, 0.25, 0.6, 0.999, 1]);
    for (let i = 1; i < fractions.length; i++) expect(fractions[i]).toBeGreaterThanOrEqual(fractions[i - 1]);
    expect(seen.every((p) => p.phase === 'upload' && p.total === 100 && p.id === 'img_456')).toBe(true);
    expect(seen.map((p) => p.loaded)).toEqual([0, 25, 60, 99, 100]);
    expect(seen.filter((p) => p.fraction === 1)).toHaveLength(1);
  });

  it('throws an UploadError with the function’s code on a 4xx', async () => {
    const { fetch } = fakeFetch({ [ENDPOINT]: [json(413, { error: { code: 'too_large', message: 'file exceeds 25 MB' } })] });
    const err = await uploadImage(png(), { endpoint: ENDPOINT, fetch }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UploadError);
    expect(err).toMatchObject({ name: 'UploadError', code: 'too_large', status: 413, stage: 'request', message: 'file exceeds 25 MB' });
    expect(FakeXHR.sent).toHaveLength(0);
  });

  it('falls back to http_<status> when an error body is not JSON', async () => {
    const { fetch } = fakeFetch({ [ENDPOINT]: [() => new Response('<html>Bad gateway</html>', { status: 502 })] });
    await expect(uploadImage(png(), { endpoint: ENDPOINT, fetch })).rejects.toMatchObject({ code: 'http_502', status: 502, stage: 'request' });
  });

  it('rejects a 2xx ticket that is not an upload target', async () => {
    const { fetch } = fakeFetch({ [ENDPOINT]: [json(201, { id: 'x', key: 'k', upload: { method: 'GET', url: 'u' } })] });
    await expect(uploadImage(png(), { endpoint: ENDPOINT, fetch })).rejects.toMatchObject({ code: 'invalid_response', stage: 'request' });
  });

  it('turns a storage 403 into an UploadError at stage "upload" with the response text', async () => {
    const { fetch } = fakeFetch({ [ENDPOINT]: [json(201, PUT_TICKET)] });
    const done = uploadImage(png(), { endpoint: ENDPOINT, fetch }).catch((e: unknown) => e);
    const xhr = await FakeXHR.next();
    const xml = `<?xml version="1.0"?><Error><Code>SignatureDoesNotMatch</Code><Message>${'x'.repeat(400)}</Message></Error>\n`;
    xhr.respond(403, xml);
    const err = (await done) as UploadError;
    expect(err).toBeInstanceOf(UploadError);
    expect(err).toMatchObject({ code: 'storage_rejected', stage: 'upload', status: 403 });
    expect(err.message).toContain('SignatureDoesNotMatch');
    expect(err.detail).toBe(xml.trim().slice(0, 300));
    expect(err.detail!.length).toBe(300);
  });

  it('reports a network failure during the storage upload', async () => {
    const { fetch } = fakeFetch({ [ENDPOINT]: [json(201, PUT_TICKET)] });
    const done = uploadImage(png(), { endpoint: ENDPOINT, fetch });
    (await FakeXHR.next()).onerror?.();
    await expect(done).rejects.toMatchObject({ code: 'network_error', stage: 'upload', status: 0 });
  });

  it('aborts the XHR and rejects with the signal’s AbortError', async () => {
    const { fetch } = fakeFetch({ [ENDPOINT]: [json(201, PUT_TICKET)] });
    const controller = new AbortController();
    const done = uploadImage(png(), { endpoint: ENDPOINT, fetch, signal: controller.signal }).catch((e: unknown) => e);
    const xhr = await FakeXHR.next();
    xhr.progress(10, 100);
    controller.abort();
    const err = (await done) as DOMException;
    expect(xhr.aborted).toBe(true);
    expect(err.name).toBe('AbortError');
    expect(err).toBe(controller.signal.reason);
  });

  it('aborts the ticket request and wraps a custom reason in an AbortError', async () => {
    const controller = new AbortController();
    const fetch = ((_url: RequestInfo | URL, init: RequestInit = {}) =>
      new Promise<Response>((_resolve, reject) =>
        // Like the real fetch, reject with the signal's reason as given (here a string), not an Error made from it.
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
        init.signal!.addEventListener('abort', () => reject(init.signal!.reason)),
      )) as typeof globalThis.fetch;
    const done = uploadImage(png(), { endpoint: ENDPOINT, fetch, signal: controller.signal }).catch((e: unknown) => e);
    controller.abort('user left the page');
    const err = (await done) as DOMException & { cause?: unknown };
    expect(err.name).toBe('AbortError');
    expect(err.cause).toBe('user left the page');
    expect(FakeXHR.sent).toHaveLength(0);
  });

  it('rejects at once when the signal is already aborted', async () => {
    const { fetch, calls } = fakeFetch({ [ENDPOINT]: [json(201, PUT_TICKET)] });
    await expect(uploadImage(png(), { endpoint: ENDPOINT, fetch, signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
    expect(calls).toHaveLength(0);
  });

  it('with wait: true, polls statusUrl through 404s until the manifest arrives', async () => {
    const statusUrl = 'https://api.example/api/images/img_123';
    const { fetch, calls } = fakeFetch({
      [ENDPOINT]: [json(201, PUT_TICKET)],
      [statusUrl]: [json(404, { error: { code: 'not_found', message: 'pending' } }), json(503, {}), json(404, {}), json(200, MANIFEST)],
    });
    const done = uploadImage(png(), { endpoint: ENDPOINT, token: 'tok', fetch, wait: true, statusPollMs: 5 });
    (await FakeXHR.next()).respond(200);
    const result = await done;

    expect(result).toEqual({ id: 'img_123', key: PUT_TICKET.key, expiresAt: EXPIRES, manifest: MANIFEST });
    const polls = calls.filter((c) => c.url === statusUrl);
    expect(polls).toHaveLength(4);
    // Relative statusUrl resolved against the endpoint; the token goes along.
    expect(polls.every((c) => (c.init.headers as Record<string, string>).authorization === 'Bearer tok')).toBe(true);
  });

  it('with wait: true, stops polling and throws wait_timeout after waitTimeoutMs', async () => {
    const statusUrl = 'https://api.example/api/images/img_123';
    const { fetch, calls } = fakeFetch({ [ENDPOINT]: [json(201, PUT_TICKET)], [statusUrl]: [json(404, {})] });
    const done = uploadImage(png(), { endpoint: ENDPOINT, fetch, wait: true, statusPollMs: 5, waitTimeoutMs: 40 });
    (await FakeXHR.next()).respond(200);
    await expect(done).rejects.toMatchObject({ code: 'wait_timeout', stage: 'wait' });
    const count = calls.length;
    await new Promise((r) => setTimeout(r, 60));
    expect(calls.length).toBe(count);
  });

  it('with wait: true, gives up on a status URL that answers 403', async () => {
    const statusUrl = 'https://api.example/api/images/img_123';
    const { fetch } = fakeFetch({ [ENDPOINT]: [json(201, PUT_TICKET)], [statusUrl]: [json(403, { error: { code: 'forbidden', message: 'no' } })] });
    const done = uploadImage(png(), { endpoint: ENDPOINT, fetch, wait: true, statusPollMs: 5 });
    (await FakeXHR.next()).respond(200);
    await expect(done).rejects.toMatchObject({ code: 'forbidden', status: 403, stage: 'wait' });
  });

  it('with wait: true but no statusUrl, returns without a manifest', async () => {
    const { fetch, calls } = fakeFetch({ [ENDPOINT]: [json(201, POST_TICKET)] });
    const done = uploadImage(png(), { endpoint: ENDPOINT, fetch, wait: true });
    (await FakeXHR.next()).respond(204);
    expect(await done).not.toHaveProperty('manifest');
    expect(calls).toHaveLength(1);
  });

  it('with a wait function, awaits it with the image id and stops it on abort', async () => {
    const { fetch } = fakeFetch({ [ENDPOINT]: [json(201, PUT_TICKET)] });
    const wait = jest.fn((id: string) => Promise.resolve({ ...MANIFEST, id } as never));
    const done = uploadImage(png(), { endpoint: ENDPOINT, fetch, wait });
    (await FakeXHR.next()).respond(200);
    expect((await done).manifest).toMatchObject({ id: 'img_123' });
    expect(wait).toHaveBeenCalledWith('img_123', expect.objectContaining({ signal: expect.any(AbortSignal) as AbortSignal }));

    const controller = new AbortController();
    let innerSignal: AbortSignal | undefined;
    const never = (_id: string, opts: { signal?: AbortSignal }) => {
      innerSignal = opts.signal;
      return new Promise<never>(() => {});
    };
    const pending = uploadImage(png(), { endpoint: ENDPOINT, fetch, wait: never, signal: controller.signal }).catch((e: unknown) => e);
    (await FakeXHR.next()).respond(200);
    await new Promise((r) => setTimeout(r, 0));
    controller.abort();
    expect(await pending).toMatchObject({ name: 'AbortError' });
    expect(innerSignal?.aborted).toBe(true);
  });
});
