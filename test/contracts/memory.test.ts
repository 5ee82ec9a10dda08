import { MemoryObjectStore } from '../../shared/testing/memory-object-store';
import { MemoryEventPublisher } from '../../shared/testing/fakes';
import { eventPublisherContract } from './event-publisher.contract';
import { objectStoreContract } from './object-store.contract';

objectStoreContract('memory', () => Promise.resolve({ store: new MemoryObjectStore(), bucket: 'contract-bucket' }));

eventPublisherContract('memory', () => {
  const publisher = new MemoryEventPublisher();
  let read = 0;
  return Promise.resolve({
    publisher,
    receive(count: number) {
      const msgs = publisher.messages.slice(read, read + count);
      read += msgs.length;
      return Promise.resolve(msgs.map((m) => ({ body: m.body, attributes: m.attributes })));
    },
  });
});

describe('MemoryObjectStore as a slow storage (hold)', () => {
  test('a call held past its signal ends with a retryable error and changes nothing; a released one lands', async () => {
    const store = new MemoryObjectStore();
    let release: () => void = () => undefined;
    store.hold = (call) => (call.op === 'put' ? new Promise<void>((r) => (release = r)) : undefined);
    const invocation = new AbortController();
    const cancelled = store.put('b', 'k', Buffer.from('late'), { contentType: 'text/plain', signal: invocation.signal });
    invocation.abort(new DOMException('invocation deadline passed', 'TimeoutError'));
    await expect(cancelled).rejects.toMatchObject({ retryable: true, code: 'deadline_exceeded' });
    release();
    expect(store.cancelledCalls).toEqual([{ op: 'put', bucket: 'b', key: 'k' }]);
    await expect(store.head('b', 'k')).resolves.toBeNull();

    const landed = store.put('b', 'k', Buffer.from('on time'), { contentType: 'text/plain', signal: new AbortController().signal });
    release();
    await expect(landed).resolves.toMatchObject({ size: 7 });
    expect((await store.get('b', 'k')).body.toString()).toBe('on time');
  });
});
