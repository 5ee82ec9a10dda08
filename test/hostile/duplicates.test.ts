/**
 * At-least-once delivery, partial failures and poison objects, at the core level (memory store).
 * Platforms redeliver events and retry functions; the outcome must not depend on how many times.
 */
import sharp from 'sharp';
import { smallJpeg } from '../../scripts/fixtures';
import { EVENT_TYPES } from '../../shared/events';
import { TransientError } from '../../shared/errors';
import type { ObjectStore } from '../../shared/ports';
import { expectOneFailureLine, expectProcessed, harness, sha256, within, type Harness } from './harness';

const CASE_MS = 20_000;

/** name.format → sha256 and real dimensions of every stored variant listed in the manifest. */
async function snapshot(h: Harness, id: string): Promise<Record<string, string>> {
  const m = JSON.parse((await h.store.get(h.config.buckets.variants, `manifests/${id}.json`)).body.toString()) as {
    variants: Array<{ name: string; format: string; key: string }>;
  };
  const out: Record<string, string> = {};
  for (const v of m.variants) {
    const body = (await h.store.get(h.config.buckets.variants, v.key)).body;
    const meta = await sharp(body).metadata();
    out[`${v.name}.${v.format}`] = `${meta.width}x${meta.height}:${sha256(body)}`;
  }
  return out;
}

describe('duplicates and retries', () => {
  let photo: Buffer;
  beforeAll(async () => {
    photo = await smallJpeg(640, 480);
  });

  test(
    'the same finalize event delivered twice: second is a no-op, same outputs, SAME completion event id',
    async () => {
      const h = harness();
      const first = await within(CASE_MS, h.run(photo));
      await expectProcessed(h, first);
      const before = await snapshot(h, first.manifest.id);
      expect(Object.keys(before)).toHaveLength(9);

      const ev = { bucket: first.info.bucket, key: first.info.key, generation: first.info.generation };
      const again = await within(CASE_MS, h.process(ev));
      expect(again.outcome.status).toBe('duplicate');
      const { event: second } = await h.notify(first.manifest.id);
      expect(second.id).toBe(first.event.id);
      expect(second.type).toBe(EVENT_TYPES.processed);
      expect(await snapshot(h, first.manifest.id)).toEqual(before);

      // Even a forced reprocess of the same generation produces byte-identical variants and the same id.
      const forced = await within(CASE_MS, h.process({ ...ev, force: true }));
      expect(forced.outcome.status).toBe('processed');
      const { event: third } = await h.notify(first.manifest.id);
      expect(third.id).toBe(first.event.id);
      expect(await snapshot(h, first.manifest.id)).toEqual(before);
    },
    CASE_MS,
  );

  test(
    'two deliveries of the same event racing each other: consistent outputs and one event id',
    async () => {
      const h = harness();
      const info = await h.upload(photo);
      const ev = { bucket: info.bucket, key: info.key, generation: info.generation };
      const both = await within(CASE_MS, Promise.all([h.process(ev), h.process(ev)]));
      for (const b of both) expect(['processed', 'duplicate']).toContain(b.outcome.status);
      const id = info.key.split('/').pop()!;
      const e1 = (await h.notify(id)).event;
      const e2 = (await h.notify(id)).event;
      expect(e1.id).toBe(e2.id);
      expect(Object.keys(await snapshot(h, id))).toHaveLength(9);
    },
    CASE_MS,
  );

  test(
    'a processor retried after a partial write finishes cleanly with a complete manifest',
    async () => {
      const h = harness();
      const realPut = h.store.put.bind(h.store);
      let variantPuts = 0;
      let failed = false;
      // The 4th variant write of the first attempt fails once, after 3 variants already landed.
      h.store.put = async (bucket, key, body, o) => {
        if (key.startsWith('variants/') && ++variantPuts === 4 && !failed) {
          failed = true;
          throw new TransientError('storage_unavailable', 'HTTP 503 (injected)');
        }
        return realPut(bucket, key, body, o);
      };
      const info = await h.upload(photo);
      const ev = { bucket: info.bucket, key: info.key, generation: info.generation };
      const err = await within(
        CASE_MS,
        h.process(ev).catch((e: unknown) => e),
      );
      expect(err).toBeInstanceOf(TransientError);
      const id = info.key.split('/').pop()!;
      expect(h.store.keys(h.config.buckets.variants).filter((k) => k.startsWith('manifests/'))).toEqual([]); // no manifest for a partial result

      const retry = await within(CASE_MS, h.process(ev));
      expect(retry.outcome.status).toBe('processed');
      if (retry.outcome.status !== 'processed') return;
      expect(retry.outcome.manifest.attempts).toBe(2);
      const { event } = await h.notify(id);
      expect(event.type).toBe(EVENT_TYPES.processed);
      const snap = await snapshot(h, id);
      expect(Object.keys(snap).sort()).toEqual(
        ['thumb', 'small', 'medium', 'large', 'medium-gray'].flatMap((n) => (n === 'medium-gray' ? [`${n}.jpeg`] : [`${n}.jpeg`, `${n}.webp`])).sort(),
      );
      // Same bytes as an undisturbed run of the same image.
      const clean = harness();
      const ref = await clean.run(photo, { id });
      expect(await snapshot(clean, ref.manifest.id)).toEqual(snap);
    },
    CASE_MS,
  );

  test(
    'a newer upload to the same key (new generation) is processed again and gets a NEW event id; the stale event is ignored',
    async () => {
      const h = harness();
      const first = await within(CASE_MS, h.run(photo));
      const id = first.manifest.id;
      const smaller = await smallJpeg(320, 240);
      const g2 = await h.upload(smaller, { id });
      expect(g2.generation).not.toBe(first.info.generation);
      const second = await within(CASE_MS, h.process({ bucket: g2.bucket, key: g2.key, generation: g2.generation }));
      expect(second.outcome.status).toBe('processed');
      const { event } = await h.notify(id);
      expect(event.id).not.toBe(first.event.id);
      expect(event.data.source).toMatchObject({ generation: g2.generation, width: 320, height: 240 });
      // A late redelivery of the first generation's event must not roll the image back.
      const stale = await h.process({ bucket: first.info.bucket, key: first.info.key, generation: first.info.generation });
      expect(stale.outcome).toEqual({ status: 'ignored', reason: 'superseded' });
    },
    CASE_MS,
  );

  describe('a poison object (its read keeps failing) ends failed after PIXELPIPE_MAX_ATTEMPTS, not retried forever', () => {
    const poison = (h: Harness, ops: Array<'get' | 'head'>): void => {
      const store: ObjectStore = h.store;
      const realGet = store.get.bind(store);
      const realHead = store.head.bind(store);
      if (ops.includes('get'))
        h.store.get = async (bucket, key, o) => {
          if (bucket === h.config.buckets.originals) throw new TransientError('storage_timeout', 'read timed out (injected)');
          return realGet(bucket, key, o);
        };
      if (ops.includes('head'))
        h.store.head = async (bucket, key) => {
          if (bucket === h.config.buckets.originals) throw new TransientError('storage_timeout', 'head timed out (injected)');
          return realHead(bucket, key);
        };
    };

    test.each([
      ['reads fail', ['get'] as Array<'get' | 'head'>],
      ['reads and metadata lookups fail', ['get', 'head'] as Array<'get' | 'head'>],
    ])(
      '%s',
      async (_what, ops) => {
        const h = harness({ PIXELPIPE_MAX_ATTEMPTS: '3' });
        const info = await h.upload(photo);
        poison(h, ops);
        const ev = { bucket: info.bucket, key: info.key, generation: info.generation };
        const id = info.key.split('/').pop()!;
        let deliveries = 0;
        let final: Awaited<ReturnType<Harness['process']>> | undefined;
        // The platform would redeliver while the function throws; cap the loop well above the budget.
        while (deliveries < 10) {
          deliveries++;
          const from = h.lines.length;
          try {
            final = await within(CASE_MS, h.process(ev));
            break;
          } catch (err) {
            expect(err).toBeInstanceOf(TransientError);
            // Each failed attempt logs exactly one line naming the image and the transient reason.
            expectOneFailureLine(h.lines.slice(from), id, 'storage_timeout');
          }
        }
        // Attempts 1 and 2 are retried by the platform; the third and last allowed attempt ends failed.
        expect(deliveries).toBe(3);
        expect(final!.outcome.status).toBe('failed');
        if (final!.outcome.status !== 'failed') return;
        expect(final!.outcome.manifest.reason?.code).toBe('retries_exhausted');
        expect(final!.outcome.manifest.attempts).toBe(3);
        expectOneFailureLine(final!.lines, id, 'retries_exhausted');
        const { event } = await h.notify(id);
        expect(event.type).toBe(EVENT_TYPES.failed);
        expect(event.data.reason?.code).toBe('retries_exhausted');
        // Once failed, further redeliveries are duplicates: no more work, no more attempts.
        expect((await h.process(ev)).outcome.status).toBe('duplicate');
      },
      CASE_MS,
    );
  });
});
