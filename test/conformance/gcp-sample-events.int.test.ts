/**
 * Google's own sample CloudEvents (googleapis/google-cloudevents examples/ and testdata/;
 * fixtures/README.md) through functions-framework — its real HTTP decoding of structured and binary
 * CloudEvents, via `getTestServer` on 127.0.0.1 — into the real GCP handler factories on in-memory
 * fakes. Each sample is handled or refused, and the tables say which and why.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cloudEvent } from '@google-cloud/functions-framework';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { loadConfig } from '../../shared/config';
import { SharpImageProcessor } from '../../shared/image/sharp-image-processor';
import { createLogger } from '../../shared/logger';
import { FixedClock, MemoryEventPublisher } from '../../shared/testing/fakes';
import { MemoryObjectStore } from '../../shared/testing/memory-object-store';
import { createNotifyHandler } from '../../functions/gcp/notify-handler';
import { createProcessHandler } from '../../functions/gcp/process-handler';
import { serve, type ServedFunction } from '../support/serve';

const FIXTURES = join(__dirname, 'fixtures', 'cloudevents');
const read = (...p: string[]): string => readFileSync(join(FIXTURES, ...p), 'utf8');
const FINALIZED = 'google.cloud.storage.object.v1.finalized';
const PUBLISHED = 'google.cloud.pubsub.topic.v1.messagePublished';

const config = loadConfig({
  PIXELPIPE_ORIGINALS_BUCKET: 'pixelpipe-originals',
  PIXELPIPE_VARIANTS_BUCKET: 'pixelpipe-variants',
  PIXELPIPE_TOPIC: 'pixelpipe-events',
  PIXELPIPE_AUTH_MODE: 'anonymous',
});

interface Rig {
  lines: Array<Record<string, unknown>>;
  store: MemoryObjectStore;
  publisher: MemoryEventPublisher;
  process: ServedFunction;
  notify: ServedFunction;
}

let rig: Rig;

beforeAll(async () => {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger({ level: 'debug', sink: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) });
  const store = new MemoryObjectStore();
  const publisher = new MemoryEventPublisher();
  cloudEvent('conformance-process', createProcessHandler({ store, processor: new SharpImageProcessor(), clock: new FixedClock(), logger, config }));
  cloudEvent('conformance-notify', createNotifyHandler({ store, publisher, logger, config }));
  rig = { lines, store, publisher, process: await serve(getTestServer('conformance-process')), notify: await serve(getTestServer('conformance-notify')) };
});
afterAll(async () => {
  await rig?.process.close();
  await rig?.notify.close();
});

/** A whole structured-mode event, as published (application/cloudevents+json). */
function structured(body: string): RequestInit {
  return { method: 'POST', headers: { 'content-type': 'application/cloudevents+json; charset=utf-8' }, body };
}

/** A binary-mode event: the sample is the body, the attributes go in ce-* headers. */
function binary(type: string, data: string): RequestInit {
  const d = JSON.parse(data) as { bucket?: string; name?: string };
  const source =
    type === FINALIZED ? `//storage.googleapis.com/projects/_/buckets/${d.bucket}` : '//pubsub.googleapis.com/projects/test-project/topics/my-topic';
  return {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'ce-specversion': '1.0',
      'ce-id': randomUUID(),
      'ce-type': type,
      'ce-source': source,
      ...(type === FINALIZED ? { 'ce-subject': `objects/${d.name}` } : {}),
      'ce-time': '2021-02-05T04:06:14.109Z',
    },
    body: data,
  };
}

/** Sends one event and returns the HTTP status and the log lines the handler wrote for it. */
async function send(fn: ServedFunction, init: RequestInit): Promise<{ status: number; lines: Array<Record<string, unknown>> }> {
  const from = rig.lines.length;
  const res = await fetch(fn.url, { ...init, signal: AbortSignal.timeout(20_000) });
  await res.text();
  return { status: res.status, lines: rig.lines.slice(from) };
}

type Expect = { outcome: string; reason: string } | { notHandled: string };

/** [sample, how it is sent, event type (binary), to which function, expected outcome, why]. */
const SAMPLES: Array<[sample: string, mode: 'structured' | 'binary', type: string, fn: 'process' | 'notify', expect: Expect, why: string]> = [
  [
    'examples/structured/StorageObjectDataWorkflows.json',
    'structured',
    FINALIZED,
    'process',
    { outcome: 'ignored', reason: 'outside_originals' },
    'sample-bucket is not ours',
  ],
  [
    'examples/structured/StorageObjectDataWorkflows.json',
    'structured',
    FINALIZED,
    'notify',
    { outcome: 'ignored', reason: 'not_a_manifest' },
    'MyFile is no manifest',
  ],
  [
    'examples/structured/MessagePublishedData.json',
    'structured',
    PUBLISHED,
    'process',
    { notHandled: 'unexpected event type' },
    'process takes storage events only',
  ],
  [
    'examples/structured/MessagePublishedData.json',
    'structured',
    PUBLISHED,
    'notify',
    { notHandled: 'not a GCS notification' },
    'no bucketId/objectId/eventType attributes',
  ],
  [
    'examples/binary/StorageObjectData-simple.json',
    'binary',
    FINALIZED,
    'process',
    { outcome: 'ignored', reason: 'outside_originals' },
    'string generation and size accepted',
  ],
  [
    'examples/binary/StorageObjectData-complex.json',
    'binary',
    FINALIZED,
    'process',
    { outcome: 'ignored', reason: 'outside_originals' },
    'numeric generation and size accepted',
  ],
  [
    'examples/binary/StorageObjectData-simple.json',
    'binary',
    FINALIZED,
    'notify',
    { outcome: 'ignored', reason: 'not_a_manifest' },
    'folder/Test.cs is no manifest',
  ],
  ['examples/binary/StorageObjectData-complex.json', 'binary', FINALIZED, 'notify', { outcome: 'ignored', reason: 'not_a_manifest' }, 'MyFile is no manifest'],
  ['examples/binary/MessagePublishedData-simple.json', 'binary', PUBLISHED, 'notify', { notHandled: 'not a GCS notification' }, 'no attributes at all'],
  ['examples/binary/MessagePublishedData-complex.json', 'binary', PUBLISHED, 'notify', { notHandled: 'not a GCS notification' }, 'attr1 only'],
  [
    'examples/binary/MessagePublishedData-complex.json',
    'binary',
    PUBLISHED,
    'process',
    { notHandled: 'unexpected event type' },
    'process takes storage events only',
  ],
  ['StorageObjectData-simple.json', 'binary', FINALIZED, 'process', { outcome: 'ignored', reason: 'outside_originals' }, 'testdata: some-bucket is not ours'],
  [
    'StorageObjectData-complex.json',
    'binary',
    FINALIZED,
    'process',
    { outcome: 'ignored', reason: 'outside_originals' },
    'testdata: sample-bucket is not ours',
  ],
  ['MessagePublishedData-binary.json', 'binary', PUBLISHED, 'notify', { notHandled: 'not a GCS notification' }, 'testdata: binary payload, no attributes'],
  ['MessagePublishedData-text.json', 'binary', PUBLISHED, 'notify', { notHandled: 'not a GCS notification' }, 'testdata: attr1 only'],
  [
    'MessagePublishedData-duplicatedFields.json',
    'binary',
    PUBLISHED,
    'notify',
    { notHandled: 'not a GCS notification' },
    'testdata: snake_case duplicates tolerated',
  ],
];

describe('Google sample CloudEvents through functions-framework into the process and notify handlers', () => {
  const rows = SAMPLES.map(([name, mode, type, fn, expected, why]) => {
    const label = 'outcome' in expected ? `${expected.outcome} (${expected.reason})` : `refused ("${expected.notHandled}")`;
    return [name, mode, fn, label, why, type, expected] as const;
  });
  test.each(rows)('%s (%s) → %s: %s — %s', async (name, mode, fn, _label, _why, type, expected) => {
    const body = read(name);
    const { status, lines } = await send(rig[fn], mode === 'structured' ? structured(body) : binary(type, body));
    // Acknowledged (2xx): neither an ignored nor a refused event is worth a redelivery.
    expect(status).toBeGreaterThanOrEqual(200);
    expect(status).toBeLessThan(300);
    if ('outcome' in expected) {
      // The object named by the sample's data, as the handler read it.
      const parsed = JSON.parse(body) as { name?: string; data?: { name?: string } };
      const key = mode === 'structured' ? parsed.data?.name : parsed.name;
      expect(lines.filter((l) => l.message === `${fn} outcome: ${expected.outcome}`)).toMatchObject([
        { status: expected.outcome, reason: expected.reason, key },
      ]);
    } else {
      const refused = lines.filter((l) => l.message === `${fn}: event not handled`);
      expect(refused).toHaveLength(1);
      expect(String(refused[0].reason)).toContain(expected.notHandled);
    }
    expect(rig.publisher.messages).toEqual([]);
  });

  test('the structured storage sample pointed at one of our originals is handled end to end: failed (its 2021 time is past the event-age budget), then notify publishes it from the Pub/Sub sample', async () => {
    const id = '6f1c2a4e-8b3d-4c5e-9f70-1a2b3c4d5e6f';
    const key = `originals/alice/${id}`;
    const put = await rig.store.put('pixelpipe-originals', key, Buffer.from('not decoded: the age check comes first'), { contentType: 'image/jpeg' });
    // Only what names the object changes; time, the other metadata and the envelope are Google's.
    const event = JSON.parse(read('examples/structured/StorageObjectDataWorkflows.json')) as { source: string; subject: string; data: Record<string, unknown> };
    event.source = '//storage.googleapis.com/projects/_/buckets/pixelpipe-originals';
    event.subject = `objects/${key}`;
    Object.assign(event.data, { bucket: 'pixelpipe-originals', name: key, generation: put.generation });
    const processed = await send(rig.process, structured(JSON.stringify(event)));
    expect(processed.status).toBe(204);
    expect(processed.lines.filter((l) => l.message === 'process outcome: failed')).toMatchObject([{ key }]);

    // A GCS notification has these attributes (cloud.google.com/storage/docs/pubsub-notifications).
    const published = JSON.parse(read('examples/structured/MessagePublishedData.json')) as { data: { message: { attributes: Record<string, string> } } };
    published.data.message.attributes = {
      bucketId: 'pixelpipe-variants',
      objectId: `manifests/${id}.json`,
      eventType: 'OBJECT_FINALIZE',
      payloadFormat: 'JSON_API_V1',
    };
    const notified = await send(rig.notify, structured(JSON.stringify(published)));
    expect(notified.status).toBe(204);
    expect(notified.lines.filter((l) => l.message === 'notify outcome: published')).toHaveLength(1);
    expect(rig.publisher.messages).toHaveLength(1);
    expect(JSON.parse(rig.publisher.messages[0].body)).toMatchObject({ data: { id, status: 'failed', reason: { code: 'retries_exhausted' } } });
  });
});
