/**
 * SVG must never make the pipeline fetch anything. A local HTTP server (127.0.0.1, random port)
 * counts every request while SVGs pointing at it go through the use case with SVG enabled; it
 * must see ZERO requests. The same documents are also given straight to sharp/librsvg, bypassing
 * the SVG check, to show the second line of defence holds on its own.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';
import { expectFailed, harness, within } from './harness';

const CASE_MS = 10_000;
const NS = 'xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"';

let server: Server;
let base: string;
const requests: string[] = [];

beforeAll(async () => {
  const png = await sharp({ create: { width: 4, height: 4, channels: 3, background: '#ff00ff' } })
    .png()
    .toBuffer();
  server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    if (req.url?.endsWith('.png')) res.setHeader('content-type', 'image/png');
    res.end(req.url?.endsWith('.png') ? png : '<!ENTITY x "fetched">');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.close();
  await once(server, 'close');
});

beforeEach(() => {
  requests.length = 0;
});

const docs = (): Array<[string, string]> => [
  ['<image href>', `<svg ${NS} width="40" height="40"><image href="${base}/x.png" width="40" height="40"/></svg>`],
  ['<image xlink:href>', `<svg ${NS} width="40" height="40"><image xlink:href="${base}/y.png" width="40" height="40"/></svg>`],
  [
    '<feImage>',
    `<svg ${NS} width="40" height="40"><filter id="f"><feImage href="${base}/f.png"/></filter><rect width="40" height="40" filter="url(#f)"/></svg>`,
  ],
  ['<use> of a remote sprite', `<svg ${NS} width="40" height="40"><use href="${base}/sprite.svg#a"/></svg>`],
  [
    'CSS @import and url()',
    `<svg ${NS} width="40" height="40"><style>@import url(${base}/a.css); rect { fill: url(${base}/p.svg#g) }</style><rect width="40" height="40"/></svg>`,
  ],
  [
    'XInclude over http',
    `<svg ${NS} width="40" height="40"><text y="20"><xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="${base}/inc.txt" parse="text"/></text></svg>`,
  ],
  ['external DTD', `<?xml version="1.0"?><!DOCTYPE svg SYSTEM "${base}/x.dtd"><svg ${NS} width="40" height="40"/>`],
  ['external parameter entity', `<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY % p SYSTEM "${base}/p.dtd"> %p;]><svg ${NS} width="40" height="40"/>`],
];

describe('SVG never fetches', () => {
  test(
    'control: the counting server does see a real request',
    async () => {
      const res = await within(CASE_MS, fetch(`${base}/control.png`));
      expect(res.status).toBe(200);
      await res.arrayBuffer();
      expect(requests).toEqual(['GET /control.png']);
    },
    CASE_MS,
  );

  test.each(docs().map(([name]) => [name]))(
    'use case, SVG enabled: %s → svg_unsafe and zero requests',
    async (name) => {
      const doc = docs().find(([n]) => n === name)![1];
      const h = harness({ PIXELPIPE_ALLOWED_TYPES: 'image/png,image/svg+xml' });
      expectFailed(await within(CASE_MS, h.run(Buffer.from(doc), { contentType: 'image/svg+xml' })), 'svg_unsafe');
      expect(requests).toEqual([]);
    },
    CASE_MS,
  );

  test.each(docs().map(([name]) => [name]))(
    'librsvg alone (validator bypassed): %s → zero requests',
    async (name) => {
      const doc = docs().find(([n]) => n === name)![1];
      await within(
        CASE_MS,
        sharp(Buffer.from(doc))
          .png()
          .toBuffer()
          .catch(() => null), // refusing to parse is fine too; fetching is not
      );
      expect(requests).toEqual([]);
    },
    CASE_MS,
  );

  test(
    'librsvg alone does not embed file:///etc/passwd (XInclude parse="text" or <image>)',
    async () => {
      const blank = await sharp(Buffer.from(`<svg ${NS} width="400" height="40"><text x="0" y="20"></text></svg>`))
        .png()
        .raw()
        .toBuffer();
      for (const inner of [
        '<text x="0" y="20"><xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file:///etc/passwd" parse="text"/></text>',
        '<text x="0" y="20"></text><image href="file:///etc/passwd" width="400" height="40"/>',
      ]) {
        const out = await sharp(Buffer.from(`<svg ${NS} width="400" height="40">${inner}</svg>`))
          .png()
          .raw()
          .toBuffer();
        // Identical to the empty drawing: nothing of the file was rendered.
        expect(out.equals(blank)).toBe(true);
      }
    },
    CASE_MS,
  );
});
