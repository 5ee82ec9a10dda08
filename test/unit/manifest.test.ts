import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseManifest, type Manifest } from '../../shared/manifest';

const base: Manifest = {
  schemaVersion: 1,
  id: 'abc',
  owner: 'alice',
  status: 'processed',
  source: { bucket: 'b', key: 'originals/alice/abc', generation: '1', bytes: 10 },
  variants: [{ name: 'thumb', format: 'webp', key: 'variants/abc/thumb.webp', contentType: 'image/webp', width: 200, height: 200, bytes: 6412 }],
  placeholder: null,
  bucket: 'v',
  attempts: 1,
  createdAt: '2026-12-03T00:00:00.000Z',
  durationMs: 1,
};

describe('variant quality and score in the manifest (schema v1, optional fields)', () => {
  test('a v1 manifest without them still validates; with them they are kept', () => {
    expect(parseManifest(base).variants[0]).not.toHaveProperty('quality');
    const withScore = { ...base, variants: [{ ...base.variants[0], quality: 62, score: 0.9712 }] };
    expect(parseManifest(withScore).variants[0]).toMatchObject({ quality: 62, score: 0.9712 });
    expect(() => parseManifest({ ...base, variants: [{ ...base.variants[0], quality: 0 }] })).toThrow();
    expect(() => parseManifest({ ...base, variants: [{ ...base.variants[0], quality: 'auto' }] })).toThrow();
  });

  test('the published JSON Schema lists both as optional properties of a variant', () => {
    const schema = readFileSync(join(__dirname, '..', '..', 'shared', 'schema', 'completion-event.v1.schema.json'), 'utf8');
    type Outcome = { properties: { data: { properties: { variants?: { items: { properties: object; required: string[] } } } } } };
    // processed/failed and deleted events are alternatives; only the outcome events carry variants.
    const doc = JSON.parse(schema) as { oneOf: Outcome[] };
    const outcome = doc.oneOf.find((o) => o.properties.data.properties.variants);
    expect(outcome).toBeDefined();
    const item = outcome!.properties.data.properties.variants!.items;
    expect(Object.keys(item.properties)).toEqual(expect.arrayContaining(['quality', 'score']));
    expect(item.required).not.toContain('quality');
    expect(item.required).not.toContain('score');
  });
});
