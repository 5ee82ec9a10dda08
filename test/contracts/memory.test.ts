import { MemoryObjectStore } from '../../shared/testing/memory-object-store';
import { MemoryEventPublisher } from '../../shared/testing/fakes';
import { eventPublisherContract } from './event-publisher.contract';
import { objectStoreContract } from './object-store.contract';

objectStoreContract('memory', async () => ({ store: new MemoryObjectStore(), bucket: 'contract-bucket' }));

eventPublisherContract('memory', async () => {
  const publisher = new MemoryEventPublisher();
  let read = 0;
  return {
    publisher,
    async receive(count) {
      const msgs = publisher.messages.slice(read, read + count);
      read += msgs.length;
      return msgs.map((m) => ({ body: m.body, attributes: m.attributes }));
    },
  };
});
