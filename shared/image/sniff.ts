/**
 * Content sniffing from magic bytes. The client's Content-Type is never trusted: an HTML file
 * uploaded as `image/png` must be recognised as what it is before any decoder sees it.
 */

/** The MIME type the bytes really are, `text/html` for markup, or `null` when unrecognised. */
export function sniffMimeType(buf: Buffer): string | null {
  if (buf.length >= 3 && buf[0] === 0xff && buf[1] === 0xd8 && buf[2] === 0xff) return 'image/jpeg';
  if (buf.length >= 8 && buf.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return 'image/png';
  if (buf.length >= 6 && (ascii(buf, 0, 6) === 'GIF87a' || ascii(buf, 0, 6) === 'GIF89a')) return 'image/gif';
  if (buf.length >= 12 && ascii(buf, 0, 4) === 'RIFF' && ascii(buf, 8, 12) === 'WEBP') return 'image/webp';
  if (buf.length >= 16 && ascii(buf, 4, 8) === 'ftyp') return isoBmffType(buf);
  if (
    buf.length >= 4 &&
    ((buf[0] === 0x49 && buf[1] === 0x49 && buf[2] === 0x2a && buf[3] === 0) || (buf[0] === 0x4d && buf[1] === 0x4d && buf[2] === 0 && buf[3] === 0x2a))
  ) {
    return 'image/tiff';
  }
  if (buf.length >= 5 && ascii(buf, 0, 5) === '%PDF-') return 'application/pdf';
  return sniffText(buf);
}

function ascii(buf: Buffer, start: number, end: number): string {
  return buf.subarray(start, end).toString('latin1');
}

/** HEIF family: the major brand and the compatible brands decide between AVIF and HEVC-coded HEIC. */
function isoBmffType(buf: Buffer): string | null {
  const boxSize = buf.readUInt32BE(0);
  const end = Math.min(buf.length, boxSize >= 16 && boxSize <= 4096 ? boxSize : 16);
  const brands = [ascii(buf, 8, 12)];
  for (let i = 16; i + 4 <= end; i += 4) brands.push(ascii(buf, i, i + 4));
  const major = brands[0];
  if (major === 'avif' || major === 'avis') return 'image/avif';
  if (['heic', 'heix', 'hevc', 'hevx', 'heim', 'heis'].includes(major)) return 'image/heic';
  if (major === 'mif1' || major === 'msf1') {
    if (brands.includes('avif')) return 'image/avif';
    if (brands.some((b) => b.startsWith('hei') || b.startsWith('hev'))) return 'image/heic';
    return 'image/heif';
  }
  return null;
}

function sniffText(buf: Buffer): string | null {
  const head = buf
    .subarray(0, 4096)
    .toString('utf8')
    .replace(/^\uFEFF/, '');
  // Binary garbage is not markup.
  if (hasControlCharacters(head.slice(0, 512))) return null;
  const text = head
    .replace(/^\s+/, '')
    .replace(/^<\?xml[\s\S]*?\?>\s*/i, '')
    .replace(/^(?:<!--[\s\S]*?-->\s*)+/, '');
  if (/^<!doctype\s+svg/i.test(text) || /^<svg[\s>]/i.test(text)) return 'image/svg+xml';
  if (/^<!doctype\s+html/i.test(text) || /^<(?:html|head|body|script|iframe|meta)[\s>]/i.test(text)) return 'text/html';
  return null;
}

/** C0 control characters other than tab, line feed, vertical tab, form feed and carriage return. */
function hasControlCharacters(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x08 || (c >= 0x0e && c <= 0x1f)) return true;
  }
  return false;
}
