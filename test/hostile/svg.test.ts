/**
 * SVG policy (see shared/image/svg.ts): off by default; when enabled, only self-contained drawings
 * are rasterised and anything that could fetch, expand or script is refused as `svg_unsafe`.
 */
import sharp from 'sharp';
import { billionLaughsSvg } from '../../scripts/fixtures';
import { findSvgHazard } from '../../shared/image/svg';
import { expectFailed, expectProcessed, harness, spiedProcessor, within } from './harness';

const CASE_MS = 10_000;
const SVG_ON = { PIXELPIPE_ALLOWED_TYPES: 'image/jpeg,image/png,image/svg+xml' };
const NS = 'xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"';
const svg = (inner: string, attrs = 'width="120" height="80"'): Buffer => Buffer.from(`<svg ${NS} ${attrs}>${inner}</svg>`);

const LAUGHS = billionLaughsSvg().toString('utf8');

/**
 * Every document here must be refused before a parser sees it: by the SVG check (`svg_unsafe`), or
 * already by content sniffing (`unsupported_type`) when the bytes do not even start like an SVG.
 * Either way the SVG check alone would refuse it too (asserted separately).
 */
const HAZARDS: Array<[string, string | Buffer, ('svg_unsafe' | 'unsupported_type')?]> = [
  ['billion laughs (internal DTD subset)', LAUGHS],
  ['external entity', `<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]><svg ${NS}><text>&x;</text></svg>`],
  ['DOCTYPE with a non-W3C system id', `<!DOCTYPE svg SYSTEM "http://127.0.0.1:9/evil.dtd"><svg ${NS}/>`],
  [
    'xml-stylesheet processing instruction in the prolog',
    `<?xml version="1.0"?><?xml-stylesheet href="http://127.0.0.1:9/s.css"?><svg ${NS}/>`,
    'unsupported_type',
  ],
  ['processing instruction in the document', svg('<?xml-stylesheet href="http://127.0.0.1:9/s.css"?><rect width="10" height="10"/>')],
  ['<script> element', svg('<script>fetch("http://127.0.0.1:9/")</script><rect width="10" height="10"/>')],
  [
    'prefixed root <svg:svg> with <svg:script>',
    `<svg:svg xmlns:svg="http://www.w3.org/2000/svg"><svg:script>alert(1)</svg:script></svg:svg>`,
    'unsupported_type',
  ],
  ['prefixed <s:script>', svg('<s:script xmlns:s="http://www.w3.org/2000/svg">alert(1)</s:script>')],
  ['onload handler', svg('<rect width="10" height="10"/>', 'width="10" height="10" onload="alert(1)"')],
  ['javascript: link', svg('<a href="javascript:alert(1)"><rect width="10" height="10"/></a>')],
  ['<image href> over http', svg('<image href="http://127.0.0.1:9/x.png" width="10" height="10"/>')],
  ['<image xlink:href> to file:///etc/passwd', svg('<image xlink:href="file:///etc/passwd" width="10" height="10"/>')],
  ['relative href (resolved against whatever base the loader has)', svg('<image href="x.png" width="10" height="10"/>')],
  ['protocol-relative href', svg('<image href="//127.0.0.1:9/x.png" width="10" height="10"/>')],
  ['href spelled with character references', svg('<image href="&#104;ttp://127.0.0.1:9/x.png" width="10" height="10"/>')],
  ['href with a tab inside the scheme', svg('<image href="ht&#9;tp://127.0.0.1:9/x.png" width="10" height="10"/>')],
  ['<use> of an external document', svg('<use href="http://127.0.0.1:9/sprite.svg#icon"/>')],
  ['nested SVG as a data: URI', svg('<image href="data:image/svg+xml;base64,PHN2Zy8+" width="10" height="10"/>')],
  ['XInclude of a local file as text', svg('<text><xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file:///etc/passwd" parse="text"/></text>')],
  ['CSS @import', svg('<style>@import url(http://127.0.0.1:9/a.css);</style><rect width="10" height="10"/>')],
  ['CSS url() in a <style> element', svg('<style>rect { fill: url(http://127.0.0.1:9/p.svg#g) }</style><rect width="10" height="10"/>')],
  ['url() in a presentation attribute', svg('<rect width="10" height="10" fill="url(http://127.0.0.1:9/p.svg#g)"/>')],
  ['url() spelled with CSS escapes', svg('<style>rect { fill: \\75 rl(http://127.0.0.1:9/p.svg#g) }</style><rect width="10" height="10"/>')],
  ['url() spelled with character references', svg('<rect width="10" height="10" style="fill: &#117;rl(http://127.0.0.1:9/p.svg#g)"/>')],
  [
    '<foreignObject> with HTML',
    svg('<foreignObject width="10" height="10"><img xmlns="http://www.w3.org/1999/xhtml" src="http://127.0.0.1:9/x.png"/></foreignObject>'),
  ],
  [
    'a quote in text hiding a real attribute from a naive parser',
    svg(`<text>a='</text><image href="http://127.0.0.1:9/x.png" width="10" height="10"/><text>'</text>`),
  ],
  ['UTF-7 declared encoding', `<?xml version="1.0" encoding="UTF-7"?><svg ${NS}>+ADw-script+AD4-</svg>`],
  ['invalid UTF-8', Buffer.concat([Buffer.from(`<svg ${NS}><text>`), Buffer.from([0xc0, 0xaf]), Buffer.from('</text></svg>')])],
];

describe('SVG policy', () => {
  test.each(HAZARDS)(
    'refused when enabled: %s',
    async (_name, doc, code = 'svg_unsafe') => {
      const h = harness(SVG_ON);
      const body = Buffer.isBuffer(doc) ? doc : Buffer.from(doc);
      expect(findSvgHazard(body)).toEqual(expect.any(String));
      const r = await within(CASE_MS, h.run(body, { contentType: 'image/svg+xml' }));
      expectFailed(r, code);
      if (code === 'svg_unsafe') expect(r.manifest.reason?.message).toMatch(/^the SVG was refused: it /);
    },
    CASE_MS,
  );

  test(
    'billion laughs is refused by the SVG check in the header probe, before any parser or decoder sees it',
    async () => {
      // Time and memory of the refusal are measured by `npm run bench` (hostile inputs), in a fresh process.
      const { proc, probe, decode } = spiedProcessor();
      const h = harness(SVG_ON, { processor: proc });
      const info = await h.upload(Buffer.from(LAUGHS), { contentType: 'image/svg+xml' });
      const { outcome } = await h.process({ bucket: info.bucket, key: info.key, generation: info.generation });
      expect(outcome.status === 'failed' && outcome.manifest.reason?.code).toBe('svg_unsafe');
      await expect(probe.mock.results[0].value).rejects.toMatchObject({
        code: 'svg_unsafe',
        message: expect.stringMatching(/^the SVG was refused: it /) as string,
      });
      expect(decode).not.toHaveBeenCalled();
    },
    CASE_MS,
  );

  test(
    'an SVG declaring 100000×100000 is refused from its header → too_many_pixels',
    async () => {
      const h = harness(SVG_ON);
      const r = await within(CASE_MS, h.run(svg('<rect width="10" height="10"/>', 'width="100000" height="100000"'), { contentType: 'image/svg+xml' }));
      expectFailed(r, 'too_many_pixels');
    },
    CASE_MS,
  );

  describe('accepted and rendered when enabled', () => {
    const VARIANTS = JSON.stringify([{ name: 'v', width: 120, formats: ['png', 'original'] }]);

    test(
      'a plain drawing with a gradient referenced by fragment, and the W3C DOCTYPE',
      async () => {
        const h = harness({ ...SVG_ON, PIXELPIPE_VARIANTS: VARIANTS });
        const doc =
          '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n' +
          `<!-- a comment --><svg ${NS} width="120" height="80"><defs><linearGradient id="g"><stop offset="0" stop-color="#ff0000"/><stop offset="1" stop-color="#ff0000"/></linearGradient></defs>` +
          '<rect width="60" height="80" fill="url(#g)"/><rect x="60" width="60" height="80" style="fill:#0000ff"/><use xlink:href="#g"/></svg>';
        expect(findSvgHazard(Buffer.from(doc))).toBeNull();
        const r = await within(CASE_MS, h.run(Buffer.from(doc), { contentType: 'image/svg+xml' }));
        const outs = await expectProcessed(h, r);
        expect(r.manifest.source).toMatchObject({ contentType: 'image/svg+xml', width: 120, height: 80 });
        // "original" for SVG falls back to a raster format browsers show.
        expect(outs.map((o) => o.format).sort()).toEqual(['png', 'png']);
        const { data, info } = await sharp(outs[0].body).raw().toBuffer({ resolveWithObject: true });
        const at = (x: number, y: number) => [...data.subarray((y * info.width + x) * info.channels, (y * info.width + x) * info.channels + 3)];
        expect(at(10, 40)).toEqual([255, 0, 0]);
        expect(at(110, 40)).toEqual([0, 0, 255]);
      },
      CASE_MS,
    );

    test(
      'a typical Inkscape export (namespaces, RDF metadata, sodipodi/inkscape attributes) is accepted',
      async () => {
        const doc =
          '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n<!-- Created with Inkscape (http://www.inkscape.org/) -->\n' +
          '<svg width="120" height="80" viewBox="0 0 120 80" version="1.1" id="svg5" inkscape:version="1.2.2 (b0a8486541, 2022-12-01)" sodipodi:docname="logo.svg" ' +
          'inkscape:export-filename="C:\\Users\\me\\logo.png" xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape" xmlns:sodipodi="http://sodipodi.sourceforge.net/DTD/sodipodi-0.dtd" ' +
          'xmlns="http://www.w3.org/2000/svg" xmlns:svg="http://www.w3.org/2000/svg" xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:cc="http://creativecommons.org/ns#" xmlns:dc="http://purl.org/dc/elements/1.1/">' +
          '<sodipodi:namedview id="namedview7" pagecolor="#ffffff" inkscape:zoom="1"/>' +
          '<metadata><rdf:RDF><cc:Work rdf:about=""><dc:type rdf:resource="http://purl.org/dc/dcmitype/StillImage"/><cc:license rdf:resource="http://creativecommons.org/publicdomain/zero/1.0/"/></cc:Work></rdf:RDF></metadata>' +
          '<g inkscape:label="Layer 1" inkscape:groupmode="layer" id="layer1"><rect style="fill:#ff0000;stroke:none" id="rect1" width="120" height="80" x="0" y="0"/></g></svg>';
        expect(findSvgHazard(Buffer.from(doc))).toBeNull();
        const h = harness({ ...SVG_ON, PIXELPIPE_VARIANTS: VARIANTS });
        await expectProcessed(h, await within(CASE_MS, h.run(Buffer.from(doc), { contentType: 'image/svg+xml' })));
      },
      CASE_MS,
    );

    test(
      'an embedded raster data: URI is allowed and drawn',
      async () => {
        const h = harness({ ...SVG_ON, PIXELPIPE_VARIANTS: VARIANTS });
        const png = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#00ff00' } })
          .png()
          .toBuffer();
        const doc = svg(`<image href="data:image/png;base64,${png.toString('base64')}" width="120" height="80" preserveAspectRatio="none"/>`);
        const r = await within(CASE_MS, h.run(doc, { contentType: 'image/svg+xml' }));
        const [out] = await expectProcessed(h, r);
        const { data } = await sharp(out.body).raw().toBuffer({ resolveWithObject: true });
        expect([...data.subarray(0, 3)]).toEqual([0, 255, 0]);
      },
      CASE_MS,
    );
  });
});
