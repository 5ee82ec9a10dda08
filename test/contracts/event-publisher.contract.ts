/**
 * The EventPublisher contract, run against every adapter (memory, Pub/Sub emulator, SNS→SQS).
 * `setup` returns the publisher and a way to receive what it published.
 */
import type { EventAttributes, EventPublisher } from '../../shared/ports';

export interface PublisherTarget {
  publisher: EventPublisher;
  /** Resolves with the next `count` messages that arrived (body text and attributes). */
  receive(count: number, timeoutMs: number): Promise<Array<{ body: string; attributes: Record<string, string> }>>;
  close?: () => Promise<void>;
}

export function eventPublisherContract(name: string, setup: () => Promise<PublisherTarget>): void {
  describe(`EventPublisher contract: ${name}`, () => {
    let t: PublisherTarget;
    beforeAll(async () => {
      t = await setup();
    });
    afterAll(async () => {
      await t?.close?.();
    });

    test('publishes the body unchanged with all filter attributes', async () => {
      const body = JSON.stringify({ specversion: '1.0', id: 'e1', note: 'ünïcödé' });
      const attributes: EventAttributes = { type: 'pixelpipe.image.processed.v1', imageId: 'img-1', owner: 'alice', status: 'processed' };
      const id = await t.publisher.publish(body, attributes);
      expect(id).toMatch(/\S/);
      const [msg] = await t.receive(1, 10_000);
      expect(msg.body).toBe(body);
      expect(msg.attributes).toMatchObject(attributes);
    });

    test('publishes several messages, each with its own attributes', async () => {
      for (const n of [1, 2, 3]) {
        await t.publisher.publish(JSON.stringify({ n }), { type: 't', imageId: `img-${n}`, owner: 'o', status: n === 2 ? 'failed' : 'processed' });
      }
      const msgs = await t.receive(3, 10_000);
      expect(msgs.map((m) => m.attributes.imageId).sort()).toEqual(['img-1', 'img-2', 'img-3']);
      expect(msgs.find((m) => m.attributes.imageId === 'img-2')!.attributes.status).toBe('failed');
    });
  });
}
