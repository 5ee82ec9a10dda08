/**
 * SVG input policy. SVG is a document format, not a bitmap: it can declare entities, pull in other
 * files and URLs (`<image href>`, `<use href>`, XInclude, CSS `url()`/`@import`, `<?xml-stylesheet?>`)
 * and carry scripts. The pipeline only ever rasterises it, so it accepts the subset a drawing needs and
 * REFUSES the whole file (reason `svg_unsafe`) as soon as anything else appears. Nothing is rewritten:
 * a stripped document that still renders would hide from the uploader that part of it was ignored, and
 * a regex-based rewrite of XML is exactly where bypasses live. A refusal is easy to reason about.
 *
 * librsvg (sharp's SVG loader) already refuses external loads for in-memory input and caps entity
 * amplification; this check runs first so the guarantee does not depend on a library version.
 *
 * What is refused:
 * - anything but UTF-8 (or its ASCII subset): other encodings could hide markup from this check;
 * - a DOCTYPE other than a bare `<!DOCTYPE svg>` or the W3C SVG public identifiers, any internal subset,
 *   entity or other `<!…>` declaration (billion laughs, external entities);
 * - processing instructions other than the XML declaration (`<?xml-stylesheet?>`);
 * - `script`, `foreignObject`, XInclude `include`, `handler`/`listener`, `iframe`/`embed`/`object`/`audio`/`video`;
 * - `on*` event attributes, and `javascript:`/`vbscript:` anywhere;
 * - `href`/`src` attributes and CSS `url()` targets other than a fragment (`#id`) or a raster
 *   `data:image/(png|jpeg|gif|webp)` URI (also when spelled with character references or CSS escapes);
 *   any CSS `@import`.
 *
 * The checks are deliberately coarse: a match anywhere (even in a comment or in text) refuses the file.
 */
import { ImageRejectedError } from '../errors';

const FORBIDDEN_ELEMENTS = ['script', 'foreignobject', 'include', 'handler', 'listener', 'iframe', 'embed', 'object', 'audio', 'video'];
const ALLOWED_DOCTYPE = /^<!DOCTYPE\s+svg(?:\s+PUBLIC\s+(["'])-\/\/W3C\/\/DTD SVG [^"'<>[\]]*\1\s+(["'])https?:\/\/www\.w3\.org\/[^"'<>[\]]*\2)?\s*>/;
// No whitespace, quotes or `<` in a fragment, none of the latter in a data URI: see the attribute scan.
const SAFE_REFERENCE = /^(?:#[^\s<>"']*|data:image\/(?:png|jpeg|gif|webp)[;,][^<>"']*)?$/i;
const XML_SPACE = /^[\x20\t\r\n]+|[\x20\t\r\n]+$/g;

/**
 * Throws `ImageRejectedError('svg_unsafe')` naming the first problem when the SVG is outside the
 * accepted subset (see the module comment); returns normally when it may be handed to the rasteriser.
 */
export function assertSafeSvg(input: Buffer): void {
  const problem = findSvgHazard(input);
  if (problem) throw new ImageRejectedError('svg_unsafe', `the SVG was refused: ${problem}`);
}

/** The first reason the SVG is refused, or `null` when it is acceptable. Pure; exported for tests. */
export function findSvgHazard(input: Buffer): string | null {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(input);
  } catch {
    return 'it is not valid UTF-8';
  }
  text = text.replace(/^\uFEFF/, '');
  if (text.includes('\u0000')) return 'it contains NUL characters';

  const decl = /^\s*<\?xml\s[^?]*\?>/.exec(text);
  if (decl) {
    const enc = /\sencoding\s*=\s*(["'])([^"']*)\1/.exec(decl[0]);
    if (enc && !/^(?:utf-?8|us-ascii|ascii)$/i.test(enc[2])) return `it declares the ${enc[2]} encoding (only UTF-8 is accepted)`;
  }
  // Every processing instruction after the declaration, e.g. <?xml-stylesheet href=…?>.
  const body = decl ? text.slice(decl[0].length) : text;
  if (/<\?/.test(body)) return 'it contains a processing instruction';

  let doctypes = 0;
  for (const m of body.matchAll(/<!(?!--|\[CDATA\[)/g)) {
    // An accepted DOCTYPE is short; a bounded slice keeps this linear whatever the input repeats.
    const rest = body.slice(m.index, m.index + 512);
    if (!/^<!DOCTYPE/i.test(rest)) return 'it contains a markup declaration';
    if (++doctypes > 1 || !ALLOWED_DOCTYPE.test(rest)) return 'it has a DOCTYPE with an internal subset, entities or a non-standard DTD';
  }
  if (/<!ENTITY/i.test(text)) return 'it declares entities';

  for (const m of text.matchAll(/<\s*(?:[\w.-]+:)?([\w.-]+)/g)) {
    if (FORBIDDEN_ELEMENTS.includes(m[1].toLowerCase())) return `it contains a <${m[1]}> element`;
  }

  // Attribute checks scan for the names themselves rather than parsing attribute lists, so a quote
  // in text content cannot make a real attribute look like part of another value; a swallowed tag
  // would need `<`, which no accepted reference contains.
  const handler = /(?:^|[\s"'/])(on[a-z]+)\s*=\s*["']/i.exec(text);
  if (handler) return `it has an event handler attribute (${handler[1]})`;
  for (const m of text.matchAll(/(?:^|[^\w.:-])((?:[\w.-]+:)?(?:href|src))\s*=\s*(?:"([^"]*)"|'([^']*)')/gi)) {
    const value = decodeReferences(m[2] ?? m[3] ?? '');
    if (!SAFE_REFERENCE.test(value.replace(XML_SPACE, ''))) return `it references an external resource (${m[1]}="${shorten(value)}")`;
  }

  // CSS, in <style> elements and style/presentation attributes alike, after undoing character
  // references and CSS escapes (`\75 rl(` is `url(`).
  const unreferenced = decodeReferences(text);
  for (const decoded of [unreferenced, decodeCssEscapes(unreferenced)]) {
    if (/(?:java|vb)script\s*:/i.test(decoded)) return 'it contains a script URL';
    if (/@import/i.test(decoded)) return 'it contains a CSS @import';
    for (const m of decoded.matchAll(/url\s*\(\s*(["']?)([^"')]*)/gi)) {
      if (!SAFE_REFERENCE.test(m[2].trim())) return `it references an external resource (url(${shorten(m[2])}))`;
    }
  }
  return null;
}

/** Undoes numeric character references and the predefined entities, as the XML parser would. */
function decodeReferences(s: string): string {
  return s.replace(/&(?:#x([0-9a-f]+)|#(\d+)|(amp|lt|gt|quot|apos));/gi, (all, hex: string, dec: string, named: string) => {
    if (named) return { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[named.toLowerCase()] ?? all;
    const cp = hex ? Number.parseInt(hex, 16) : Number.parseInt(dec, 10);
    return cp > 0 && cp <= 0x10ffff ? String.fromCodePoint(cp) : '';
  });
}

/** Undoes CSS escapes: `\` + 1–6 hex digits (+ one optional space), or `\` + any other character. */
function decodeCssEscapes(s: string): string {
  return s.replace(/\\(?:([0-9a-f]{1,6})[\x20\t\r\n]?|([^\r\n]))/gi, (_all, hex: string | undefined, ch: string | undefined) => {
    if (ch !== undefined) return ch;
    const cp = Number.parseInt(hex!, 16);
    return cp > 0 && cp <= 0x10ffff ? String.fromCodePoint(cp) : '\uFFFD';
  });
}

function shorten(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
