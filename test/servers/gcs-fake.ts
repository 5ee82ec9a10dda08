/**
 * A small in-memory Google Cloud Storage for tests (node:http, 127.0.0.1, random port).
 *
 * Which GCS server is used for what, and why:
 * - This fake is the one every GCP test uses. It speaks the parts of the JSON API that
 *   `@google-cloud/storage` v7 calls for our adapter (multipart/media/resumable insert, metadata,
 *   `alt=media` download with `x-goog-hash`, paged listing, delete, generations) AND the XML API's
 *   V4 signed `PUT`/`GET`, which no emulator we can run offline implements. The signed PUT is checked
 *   the way GCS does — signature (with the independent verifier in `test/gcp/v4-verify.ts`), expiry,
 *   signed headers actually sent, body length within `x-goog-content-length-range` — so the end-to-end
 *   test proves a browser upload with the returned headers is accepted and a tampered one is not.
 *   It also fires `onFinalize`, standing in for the Eventarc trigger, and can inject faults.
 * - firebase-tools' storage emulator (started in-process, see `firebase-storage.ts`) is an optional
 *   second, independently written JSON-API server: when present it re-runs the ObjectStore contract,
 *   guarding against this fake and the adapter agreeing on a mistake. It has no signed-URL support.
 *
 * Deliberately stricter than GCS in one place: an `x-goog-meta-*` header that was not signed makes a
 * signed PUT fail, so a client sending extra metadata is caught in tests.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseLengthRange, verifyV4 } from '../gcp/v4-verify';

/** The JSON API object resource, as far as the fake fills it in. */
export interface GcsObjectResource {
  kind: 'storage#object';
  id: string;
  selfLink: string;
  mediaLink: string;
  name: string;
  bucket: string;
  generation: string;
  metageneration: string;
  contentType: string;
  storageClass: 'STANDARD';
  size: string;
  md5Hash: string;
  crc32c: string;
  etag: string;
  timeCreated: string;
  updated: string;
  cacheControl?: string;
  metadata?: Record<string, string>;
}

interface StoredEntry {
  resource: GcsObjectResource;
  body: Buffer;
}

/** A fault to inject: the next `times` matching requests get `status` (or the socket is destroyed). */
export interface FaultRule {
  status: number | 'reset';
  times?: number;
  method?: string;
  /** Matches when the request path (decoded) contains this text. */
  pathIncludes?: string;
  /** Extra delay before answering, ms. */
  delayMs?: number;
}

export interface GcsFakeOptions {
  /** Buckets that exist from the start; others answer 404 like GCS. */
  buckets?: string[];
  /** Service accounts whose V4 signatures are accepted: client email → public key. */
  signers?: Record<string, string | KeyObject>;
  /** Clock for signed-URL expiry checks. */
  now?: () => Date;
  /** Called (not awaited) after each object write, like a `google.cloud.storage.object.v1.finalized` event. */
  onFinalize?: (object: GcsObjectResource) => void | Promise<void>;
  /** Origins allowed to call the XML API from a browser (CORS on signed PUT/GET). */
  corsOrigins?: string[];
  /** Largest request body accepted, bytes. */
  maxBodyBytes?: number;
}

export interface GcsFake {
  /** `http://127.0.0.1:<port>`: use as `STORAGE_EMULATOR_HOST` / `apiEndpoint`. */
  url: string;
  host: string;
  port: number;
  createBucket(name: string): void;
  /** Direct access for assertions, bypassing HTTP. */
  getObject(bucket: string, name: string): { resource: GcsObjectResource; body: Buffer } | undefined;
  listObjects(bucket: string): GcsObjectResource[];
  /** Makes the metadata report `size` while the body stays as is (tests that must not trust metadata). */
  misreportSize(bucket: string, name: string, size: number): void;
  injectFault(rule: FaultRule): void;
  clearFaults(): void;
  /** Every request seen, in order (method and decoded path), for assertions. */
  readonly requests: Array<{ method: string; path: string; status: number }>;
  /** Errors thrown by `onFinalize` (tests assert it stayed empty). */
  readonly finalizeErrors: unknown[];
  setOnFinalize(fn: GcsFakeOptions['onFinalize']): void;
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly reason = 'invalid',
  ) {
    super(message);
  }
}

class XmlError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Starts the fake on a random free port of 127.0.0.1. */
export async function startGcsFake(options: GcsFakeOptions = {}): Promise<GcsFake> {
  const buckets = new Map<string, Map<string, StoredEntry>>();
  for (const b of options.buckets ?? []) buckets.set(b, new Map());
  const sessions = new Map<string, { bucket: string; name: string; metadata: Record<string, unknown> }>();
  const faults: Array<FaultRule & { left: number }> = [];
  const requests: GcsFake['requests'] = [];
  const finalizeErrors: unknown[] = [];
  const maxBody = options.maxBodyBytes ?? 256 * 1024 * 1024;
  let onFinalize = options.onFinalize;
  let lastGeneration = 0;
  let sessionSeq = 0;
  let base = '';

  const nextGeneration = (): string => {
    // Real generations are microsecond timestamps; strictly increasing here even within a microsecond.
    lastGeneration = Math.max(lastGeneration + 1, Date.now() * 1000);
    return String(lastGeneration);
  };

  const bucketOf = (name: string): Map<string, StoredEntry> => {
    const b = buckets.get(name);
    if (!b) throw new HttpError(404, 'The specified bucket does not exist.', 'notFound');
    return b;
  };

  const store = (
    bucket: string,
    name: string,
    body: Buffer,
    meta: { contentType?: string; cacheControl?: string; metadata?: Record<string, string> },
  ): GcsObjectResource => {
    const objects = bucketOf(bucket);
    if (!name) throw new HttpError(400, 'Required parameter: name', 'required');
    const generation = nextGeneration();
    const now = new Date().toISOString();
    const md5 = createHash('md5').update(body).digest('base64');
    const enc = encodeURIComponent(name);
    const resource: GcsObjectResource = {
      kind: 'storage#object',
      id: `${bucket}/${name}/${generation}`,
      selfLink: `${base}/storage/v1/b/${bucket}/o/${enc}`,
      mediaLink: `${base}/download/storage/v1/b/${bucket}/o/${enc}?generation=${generation}&alt=media`,
      name,
      bucket,
      generation,
      metageneration: '1',
      contentType: meta.contentType || 'application/octet-stream',
      storageClass: 'STANDARD',
      size: String(body.length),
      md5Hash: md5,
      crc32c: crc32cBase64(body),
      etag: createHash('sha1').update(generation).digest('base64').slice(0, 12),
      timeCreated: now,
      updated: now,
      ...(meta.cacheControl ? { cacheControl: meta.cacheControl } : {}),
      ...(meta.metadata && Object.keys(meta.metadata).length ? { metadata: { ...meta.metadata } } : {}),
    };
    objects.set(name, { resource, body: Buffer.from(body) });
    const cb = onFinalize;
    if (cb) {
      const copy = structuredClone(resource);
      // Asynchronous like a real notification: the writer's response does not wait for subscribers.
      setImmediate(() => {
        Promise.resolve()
          .then(() => cb(copy))
          .catch((err: unknown) => {
            finalizeErrors.push(err);
          });
      });
    }
    return resource;
  };

  const find = (bucket: string, name: string, generation?: string | null): StoredEntry => {
    const e = bucketOf(bucket).get(name);
    if (!e || (generation && e.resource.generation !== generation)) throw new HttpError(404, `No such object: ${bucket}/${name}`, 'notFound');
    return e;
  };

  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    res.on('finish', () => requests.push({ method: req.method ?? '', path: safeDecode(path), status: res.statusCode }));
    const fault = faults.find((f) => f.left > 0 && (!f.method || f.method === req.method) && (!f.pathIncludes || safeDecode(path).includes(f.pathIncludes)));
    const run = async (): Promise<void> => {
      if (fault) {
        fault.left--;
        if (fault.delayMs) await new Promise((r) => setTimeout(r, fault.delayMs));
        if (fault.status === 'reset') {
          req.socket.destroy();
          return;
        }
        await drain(req);
        sendJsonError(res, fault.status, 'injected fault', 'backendError');
        return;
      }
      // With STORAGE_EMULATOR_HOST the client drops the `/storage/v1` prefix (`/b/...`); signed XML-API
      // requests are told apart by their query string.
      const signed = /[?&]X-Goog-Algorithm=/.test(req.url ?? '');
      if (path.startsWith('/b/') && !signed) req.url = `/storage/v1${req.url}`;
      if (req.url!.startsWith('/storage/v1/') || path.startsWith('/upload/storage/v1/') || path.startsWith('/download/storage/v1/')) {
        await handleJson(req, res);
      } else {
        await handleXml(req, res);
      }
    };
    run().catch((err: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (err instanceof HttpError) sendJsonError(res, err.status, err.message, err.reason);
      else if (err instanceof XmlError) sendXmlError(res, err.status, err.code, err.message, corsFor(req));
      else sendJsonError(res, 500, String((err as Error)?.message ?? err), 'backendError');
    });
  });

  async function handleJson(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const segs = url.pathname.split('/').slice(1);
    const method = req.method ?? 'GET';
    // /upload/storage/v1/b/<bucket>/o
    if (segs[0] === 'upload' && segs[3] === 'b' && segs[5] === 'o' && segs.length === 6) {
      const bucket = decodeURIComponent(segs[4]);
      const type = url.searchParams.get('uploadType');
      if (method === 'POST' && type === 'multipart') {
        const body = await readBody(req, maxBody);
        const { metadata, media, mediaType } = parseMultipartRelated(req.headers['content-type'], body);
        const name = url.searchParams.get('name') ?? (typeof metadata.name === 'string' ? metadata.name : '');
        const r = store(bucket, name, media, {
          contentType: (metadata.contentType as string | undefined) ?? mediaType,
          cacheControl: metadata.cacheControl as string | undefined,
          metadata: stringRecord(metadata.metadata),
        });
        return sendJson(res, 200, r);
      }
      if (method === 'POST' && type === 'media') {
        const body = await readBody(req, maxBody);
        const r = store(bucket, url.searchParams.get('name') ?? '', body, { contentType: header(req, 'content-type') });
        return sendJson(res, 200, r);
      }
      if (method === 'POST' && type === 'resumable') {
        bucketOf(bucket);
        const raw = (await readBody(req, 1024 * 1024)).toString('utf8');
        const metadata = raw ? (JSON.parse(raw) as Record<string, unknown>) : {};
        const name = url.searchParams.get('name') ?? (typeof metadata.name === 'string' ? metadata.name : '');
        const id = `s${++sessionSeq}`;
        sessions.set(id, { bucket, name, metadata });
        // Relative to the host the client used, as GCS does, so a proxy in front of the fake stays in the path.
        const origin = req.headers.host ? `http://${req.headers.host}` : base;
        res.writeHead(200, { location: `${origin}/upload/storage/v1/b/${encodeURIComponent(bucket)}/o?uploadType=resumable&upload_id=${id}` });
        res.end();
        return;
      }
      if (method === 'PUT' && type === 'resumable') {
        // One-shot sessions only: the client sends the whole object in a single PUT.
        const s = sessions.get(url.searchParams.get('upload_id') ?? '');
        if (!s) throw new HttpError(404, 'No such upload session', 'notFound');
        const body = await readBody(req, maxBody);
        const range = header(req, 'content-range') ?? '';
        if (/^bytes \*\/\*$/.test(range)) {
          res.writeHead(308, {});
          res.end();
          return;
        }
        sessions.delete(url.searchParams.get('upload_id') ?? '');
        const r = store(s.bucket, s.name, body, {
          contentType: (s.metadata.contentType as string | undefined) ?? header(req, 'content-type'),
          cacheControl: s.metadata.cacheControl as string | undefined,
          metadata: stringRecord(s.metadata.metadata),
        });
        return sendJson(res, 200, r);
      }
      throw new HttpError(400, `unsupported upload: ${method} uploadType=${type}`);
    }
    // /storage/v1/b/<bucket>/o[/<object>] and /download/storage/v1/b/<bucket>/o/<object>
    const off = segs[0] === 'download' ? 1 : 0;
    if (segs[off] !== 'storage' || segs[off + 1] !== 'v1' || segs[off + 2] !== 'b') throw new HttpError(404, 'Not Found', 'notFound');
    if (segs.length === off + 3 && method === 'POST') {
      // Bucket insert (tests may create buckets through the client).
      const body = JSON.parse((await readBody(req, 64 * 1024)).toString('utf8') || '{}') as { name?: string };
      if (!body.name) throw new HttpError(400, 'Required parameter: name', 'required');
      if (!buckets.has(body.name)) buckets.set(body.name, new Map());
      return sendJson(res, 200, { kind: 'storage#bucket', name: body.name, id: body.name });
    }
    const bucket = decodeURIComponent(segs[off + 3] ?? '');
    if (segs.length === off + 4 && method === 'GET') {
      bucketOf(bucket);
      return sendJson(res, 200, { kind: 'storage#bucket', name: bucket, id: bucket });
    }
    if (segs[off + 4] !== 'o') throw new HttpError(404, 'Not Found', 'notFound');
    if (segs.length === off + 5 && method === 'GET') return sendJson(res, 200, list(bucket, url.searchParams));
    if (segs.length !== off + 6) throw new HttpError(404, 'Not Found', 'notFound');
    const name = decodeURIComponent(segs[off + 5]);
    const generation = url.searchParams.get('generation');
    if (method === 'GET') {
      const e = find(bucket, name, generation);
      if (url.searchParams.get('alt') === 'media' || off === 1) return sendMedia(res, e, req);
      return sendJson(res, 200, e.resource);
    }
    if (method === 'DELETE') {
      find(bucket, name, generation);
      bucketOf(bucket).delete(name);
      res.writeHead(204);
      res.end();
      return;
    }
    throw new HttpError(405, `method ${method} not supported by the fake`);
  }

  function list(bucket: string, params: URLSearchParams): Record<string, unknown> {
    const prefix = params.get('prefix') ?? '';
    const max = Math.min(Math.max(Number(params.get('maxResults') ?? '1000') || 1000, 1), 1000);
    const token = params.get('pageToken');
    const after = token ? Buffer.from(token, 'base64url').toString('utf8') : null;
    const startOffset = params.get('startOffset');
    const names = [...bucketOf(bucket).keys()]
      .filter((n) => n.startsWith(prefix))
      // GCS orders by the UTF-8 bytes of the name, which differs from UTF-16 order for astral characters.
      .sort((a, b) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')))
      .filter((n) => after === null || Buffer.compare(Buffer.from(n, 'utf8'), Buffer.from(after, 'utf8')) > 0)
      // startOffset is inclusive, as in GCS.
      .filter((n) => startOffset === null || Buffer.compare(Buffer.from(n, 'utf8'), Buffer.from(startOffset, 'utf8')) >= 0);
    const page = names.slice(0, max);
    const items = page.map((n) => bucketOf(bucket).get(n)!.resource);
    return {
      kind: 'storage#objects',
      ...(items.length ? { items } : {}),
      ...(names.length > max ? { nextPageToken: Buffer.from(page[page.length - 1], 'utf8').toString('base64url') } : {}),
    };
  }

  function sendMedia(res: ServerResponse, e: StoredEntry, req: IncomingMessage, extra: Record<string, string> = {}): void {
    const metaHeaders: Record<string, string> = {};
    for (const [k, v] of Object.entries(e.resource.metadata ?? {})) metaHeaders[`x-goog-meta-${k}`] = v;
    res.writeHead(200, {
      'content-type': e.resource.contentType,
      'content-length': String(e.body.length),
      'x-goog-generation': e.resource.generation,
      'x-goog-metageneration': e.resource.metageneration,
      'x-goog-stored-content-encoding': 'identity',
      'x-goog-stored-content-length': String(e.body.length),
      'x-goog-hash': `crc32c=${e.resource.crc32c},md5=${e.resource.md5Hash}`,
      ...(e.resource.cacheControl ? { 'cache-control': e.resource.cacheControl } : {}),
      ...metaHeaders,
      ...extra,
    });
    if (req.method === 'HEAD') res.end();
    else res.end(e.body);
  }

  function corsFor(req: IncomingMessage): Record<string, string> {
    const origin = header(req, 'origin');
    if (!origin || !(options.corsOrigins ?? []).includes(origin)) return {};
    return { 'access-control-allow-origin': origin, vary: 'Origin', 'access-control-expose-headers': 'etag, x-goog-generation' };
  }

  async function handleXml(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const cors = corsFor(req);
    if (method === 'OPTIONS') {
      if (!cors['access-control-allow-origin']) throw new XmlError(403, 'AccessDenied', 'origin not allowed');
      res.writeHead(200, {
        ...cors,
        'access-control-allow-methods': 'PUT, GET, HEAD',
        'access-control-allow-headers': header(req, 'access-control-request-headers') ?? '',
        'access-control-max-age': '600',
      });
      res.end();
      return;
    }
    if (method !== 'PUT' && method !== 'GET' && method !== 'HEAD') throw new XmlError(405, 'MethodNotAllowed', `${method} is not allowed`);
    const now = (options.now ?? (() => new Date()))();
    // The signed host is the Host header as sent, port included (the signer targets this server's URL).
    const result = verifyV4({ method, url: req.url ?? '/', headers: req.headers }, { keys: options.signers ?? {}, now });
    if (!result.ok) {
      await drain(req);
      throw new XmlError(result.status, result.code, result.message);
    }
    const objects = buckets.get(result.bucket);
    if (!objects) {
      await drain(req);
      throw new XmlError(404, 'NoSuchBucket', 'The specified bucket does not exist.');
    }
    if (method !== 'PUT') {
      const e = objects.get(result.object);
      if (!e) throw new XmlError(404, 'NoSuchKey', 'The specified key does not exist.');
      return sendMedia(res, e, req, cors);
    }
    for (const name of Object.keys(req.headers)) {
      if (name.startsWith('x-goog-meta-') && !result.signedHeaders.includes(name)) {
        await drain(req);
        throw new XmlError(403, 'SignatureDoesNotMatch', `the header ${name} was not signed`);
      }
    }
    const range = result.signedHeaders.includes('x-goog-content-length-range') ? parseLengthRange(result.headerValues['x-goog-content-length-range']) : null;
    if (result.signedHeaders.includes('x-goog-content-length-range') && !range) {
      await drain(req);
      throw new XmlError(400, 'InvalidArgument', 'x-goog-content-length-range must be "min,max"');
    }
    const declared = header(req, 'content-length');
    // Refuse on the declared length before reading, as GCS does; then check what actually arrived.
    if (range && declared !== undefined && (Number(declared) > range.max || Number(declared) < range.min)) {
      await drain(req);
      throw new XmlError(
        400,
        Number(declared) > range.max ? 'EntityTooLarge' : 'EntityTooSmall',
        `content length ${declared} is outside ${range.min},${range.max}`,
      );
    }
    const body = await readBody(req, range ? range.max + 1 : maxBody).catch((err: unknown) => {
      if (err instanceof HttpError && err.status === 413) throw new XmlError(400, 'EntityTooLarge', 'the body is larger than the signed range allows');
      throw err;
    });
    if (range && (body.length < range.min || body.length > range.max)) {
      throw new XmlError(
        400,
        body.length > range.max ? 'EntityTooLarge' : 'EntityTooSmall',
        `content length ${body.length} is outside ${range.min},${range.max}`,
      );
    }
    const metadata: Record<string, string> = {};
    for (const name of result.signedHeaders) {
      if (name.startsWith('x-goog-meta-')) metadata[name.slice('x-goog-meta-'.length)] = result.headerValues[name];
    }
    const r = store(result.bucket, result.object, body, { contentType: header(req, 'content-type'), cacheControl: header(req, 'cache-control'), metadata });
    res.writeHead(200, { ...cors, etag: `"${Buffer.from(r.md5Hash, 'base64').toString('hex')}"`, 'x-goog-generation': r.generation, 'content-length': '0' });
    res.end();
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  base = `http://127.0.0.1:${port}`;

  return {
    url: base,
    host: `127.0.0.1:${port}`,
    port,
    requests,
    finalizeErrors,
    createBucket(name) {
      if (!buckets.has(name)) buckets.set(name, new Map());
    },
    getObject(bucket, name) {
      const e = buckets.get(bucket)?.get(name);
      return e ? { resource: structuredClone(e.resource), body: Buffer.from(e.body) } : undefined;
    },
    listObjects(bucket) {
      return [...(buckets.get(bucket)?.values() ?? [])].map((e) => structuredClone(e.resource));
    },
    misreportSize(bucket, name, size) {
      const e = buckets.get(bucket)?.get(name);
      if (!e) throw new Error(`no object ${bucket}/${name}`);
      e.resource.size = String(size);
    },
    injectFault(rule) {
      faults.push({ ...rule, left: rule.times ?? 1 });
    },
    clearFaults() {
      faults.length = 0;
    },
    setOnFinalize(fn) {
      onFinalize = fn;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function stringRecord(v: unknown): Record<string, string> | undefined {
  if (!v || typeof v !== 'object') return undefined;
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v as Record<string, unknown>))
    if (val !== null && val !== undefined) out[k] = typeof val === 'string' ? val : JSON.stringify(val);
  return out;
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    let done = false;
    req.on('data', (c: Buffer) => {
      if (done) return;
      n += c.length;
      if (n > limit) {
        done = true;
        req.resume();
        reject(new HttpError(413, `request body larger than ${limit} bytes`));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (!done) resolve(Buffer.concat(chunks));
    });
    req.on('error', (e) => {
      if (!done) reject(e);
    });
  });
}

async function drain(req: IncomingMessage): Promise<void> {
  if (req.readableEnded) return;
  await new Promise<void>((resolve) => {
    req.on('end', resolve);
    req.on('error', () => resolve());
    req.on('close', () => resolve());
    req.resume();
  });
}

/** Parses a `multipart/related` body made of a JSON metadata part and a media part. */
function parseMultipartRelated(contentType: string | undefined, body: Buffer): { metadata: Record<string, unknown>; media: Buffer; mediaType?: string } {
  const m = /boundary="?([^";]+)"?/i.exec(contentType ?? '');
  if (!m) throw new HttpError(400, 'multipart upload without a boundary');
  const delimiter = Buffer.from(`--${m[1]}`);
  const parts: Array<{ headers: Record<string, string>; body: Buffer }> = [];
  let pos = body.indexOf(delimiter);
  while (pos >= 0) {
    const start = pos + delimiter.length;
    if (body.subarray(start, start + 2).toString() === '--') break;
    const headerEnd = body.indexOf('\r\n\r\n', start);
    if (headerEnd < 0) break;
    const next = body.indexOf(Buffer.concat([Buffer.from('\r\n'), delimiter]), headerEnd + 4);
    if (next < 0) break;
    const headers: Record<string, string> = {};
    for (const line of body.subarray(start, headerEnd).toString('utf8').split('\r\n')) {
      const i = line.indexOf(':');
      if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    parts.push({ headers, body: body.subarray(headerEnd + 4, next) });
    pos = next + 2;
  }
  if (parts.length !== 2) throw new HttpError(400, `multipart upload must have 2 parts, got ${parts.length}`);
  return {
    metadata: JSON.parse(parts[0].body.toString('utf8') || '{}') as Record<string, unknown>,
    media: Buffer.from(parts[1].body),
    mediaType: parts[1].headers['content-type'],
  };
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', 'content-length': String(Buffer.byteLength(text)) });
  res.end(text);
}

function sendJsonError(res: ServerResponse, status: number, message: string, reason: string): void {
  sendJson(res, status, { error: { code: status, message, errors: [{ message, domain: 'global', reason }] } });
}

function sendXmlError(res: ServerResponse, status: number, code: string, message: string, extra: Record<string, string>): void {
  const esc = (s: string) => s.replace(/[<>&]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;' })[c]!);
  const text = `<?xml version='1.0' encoding='UTF-8'?><Error><Code>${esc(code)}</Code><Message>${esc(message)}</Message></Error>`;
  res.writeHead(status, { 'content-type': 'application/xml; charset=UTF-8', 'content-length': String(Buffer.byteLength(text)), ...extra });
  res.end(text);
}

let CRC_TABLE: Uint32Array | undefined;

/** CRC32C (Castagnoli) as GCS reports it: big-endian, base64. */
export function crc32cBase64(data: Buffer): string {
  if (!CRC_TABLE) {
    CRC_TABLE = new Uint32Array(256);
    for (let i = 0; i < 256; i++) {
      let c = i;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
      CRC_TABLE[i] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (const byte of data) crc = CRC_TABLE[(crc ^ byte) & 0xff] ^ (crc >>> 8);
  const out = Buffer.alloc(4);
  out.writeUInt32BE((crc ^ 0xffffffff) >>> 0);
  return out.toString('base64');
}
