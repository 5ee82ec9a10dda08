import { loadConfig } from '../../shared/config';
import { attemptsKey, manifestKey, originalKey, ownerSegment, parseManifestKey, parseOriginalKey, variantKey } from '../../shared/keys';

const { layout } = loadConfig({ PIXELPIPE_AUTH_MODE: 'anonymous' });
const id = '3f2a9c1e-1111-4222-8333-444455556666';

describe('key layout', () => {
  test('round trips and shapes', () => {
    expect(originalKey(layout, 'alice', id)).toBe(`originals/alice/${id}`);
    expect(parseOriginalKey(layout, `originals/alice/${id}`)).toEqual({ owner: 'alice', id });
    expect(variantKey(layout, id, 'thumb', 'webp')).toBe(`variants/${id}/thumb.webp`);
    expect(manifestKey(layout, id)).toBe(`manifests/${id}.json`);
    expect(parseManifestKey(layout, `manifests/${id}.json`)).toBe(id);
    expect(attemptsKey(layout, id, '1712/3')).toBe(`state/${id}/1712_3.attempts`);
  });

  test('recursion guard: nothing the processor writes parses as an original', () => {
    for (const key of [
      variantKey(layout, id, 'thumb', 'jpg'),
      manifestKey(layout, id),
      attemptsKey(layout, id, '1'),
      'originals/',
      'originals/alice/',
      'other/alice/x',
    ]) {
      expect(parseOriginalKey(layout, key)).toBeNull();
    }
  });

  test('foreign keys under the prefix get a stable id derived from the key', () => {
    const a = parseOriginalKey(layout, 'originals/holiday/IMG 0001.JPG')!;
    expect(a.owner).toBe('holiday');
    expect(a.id).toMatch(/^k[0-9a-f]{31}$/);
    expect(parseOriginalKey(layout, 'originals/holiday/IMG 0001.JPG')).toEqual(a);
    expect(parseOriginalKey(layout, 'originals/holiday/IMG 0002.JPG')!.id).not.toBe(a.id);
    expect(parseOriginalKey(layout, 'originals/loose.jpg')!.owner).toBe('_');
  });

  test('only manifests under the manifests prefix are manifests', () => {
    expect(parseManifestKey(layout, `variants/${id}/manifest.json`)).toBeNull();
    expect(parseManifestKey(layout, `manifests/${id}.json.tmp`)).toBeNull();
    expect(parseManifestKey(layout, 'manifests/../x.json')).toBeNull();
  });

  test('owner segments cannot escape or collide', () => {
    expect(ownerSegment('alice')).toBe('alice');
    for (const s of ['..', '.', 'a/b', '../../etc', 'auth0|123', 'ålice', 'u_spoof', '', 'x'.repeat(200)]) {
      const seg = ownerSegment(s);
      expect(seg).toMatch(/^u_[A-Za-z0-9]{32}$/);
    }
    expect(ownerSegment('a/b')).not.toBe(ownerSegment('a|b'));
    expect(ownerSegment('a/b')).toBe(ownerSegment('a/b'));
  });
});
