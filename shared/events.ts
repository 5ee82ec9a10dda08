/**
 * The completion event contract: CloudEvents 1.0 in structured JSON mode, published once per manifest.
 *
 * - `type`: `pixelpipe.image.processed.v1` or `pixelpipe.image.failed.v1` (the `v1` is the data schema
 *   version; a breaking change gets a new type so old subscribers keep working);
 * - `id`: deterministic from (bucket, key, generation, status), so redeliveries and reprocessing of the
 *   same generation carry the same id and subscribers can drop duplicates;
 * - `subject`: the image id; `data`: the manifest; `traceparent`: the upload's trace, when known.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { manifestSchema, type Manifest } from './manifest';
import type { EventAttributes } from './ports';

export const EVENT_TYPES = { processed: 'pixelpipe.image.processed.v1', failed: 'pixelpipe.image.failed.v1' } as const;
export type CompletionEventType = (typeof EVENT_TYPES)[keyof typeof EVENT_TYPES];
export const DATA_SCHEMA = 'urn:pixelpipe:schema:completion-event:v1';

export const completionEventSchema = z.object({
  specversion: z.literal('1.0'),
  id: z.string().min(1),
  source: z.string().min(1),
  type: z.enum([EVENT_TYPES.processed, EVENT_TYPES.failed]),
  subject: z.string().min(1),
  time: z.string(),
  datacontenttype: z.literal('application/json'),
  dataschema: z.literal(DATA_SCHEMA),
  traceparent: z.string().optional(),
  durationms: z.number().nonnegative().optional(),
  data: manifestSchema,
});

/** A CloudEvents 1.0 completion event as published by the notifier. */
export type CompletionEvent = z.infer<typeof completionEventSchema>;

/** Deterministic event id: same source generation and outcome ⇒ same id. */
export function completionEventId(m: Pick<Manifest, 'source' | 'status'>): string {
  return createHash('sha256').update(`${m.source.bucket}\n${m.source.key}\n${m.source.generation}\n${m.status}`).digest('hex').slice(0, 32);
}

/** Builds the event and the attributes subscribers filter on. */
export function buildCompletionEvent(manifest: Manifest, source: string, time: Date): { event: CompletionEvent; attributes: EventAttributes } {
  const type = manifest.status === 'processed' ? EVENT_TYPES.processed : EVENT_TYPES.failed;
  const event: CompletionEvent = {
    specversion: '1.0',
    id: completionEventId(manifest),
    source,
    type,
    subject: manifest.id,
    time: time.toISOString(),
    datacontenttype: 'application/json',
    dataschema: DATA_SCHEMA,
    ...(manifest.traceId ? { traceparent: toTraceparent(manifest.traceId) } : {}),
    durationms: manifest.durationMs,
    data: manifest,
  };
  return { event, attributes: { type, imageId: manifest.id, owner: manifest.owner, status: manifest.status } };
}

/** W3C traceparent for a 32-hex trace id (the span id is derived, the sampled flag set). */
export function toTraceparent(traceId: string): string {
  const span = createHash('sha256').update(traceId).digest('hex').slice(0, 16);
  return `00-${traceId}-${span}-01`;
}

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Extracts and validates a completion event from whatever a subscriber received:
 * - the event object itself, or its JSON text, or a Buffer of it;
 * - a Pub/Sub pull message (`{data: Buffer|base64, attributes}`), or a push body (`{message: {data}, subscription}`);
 * - an SNS notification (`{Type: 'Notification', Message}`), a Lambda SNS event (`{Records: [{Sns}]}`)
 *   or an SQS message / SQS event whose body is an SNS notification (raw delivery too).
 * Throws a `ZodError` or `Error` with a clear message when the payload is not a valid event.
 */
export function parseCompletionEvent(message: unknown): CompletionEvent {
  return completionEventSchema.parse(unwrap(message, 0));
}

function unwrap(m: unknown, depth: number): unknown {
  if (depth > 5) throw new Error('completion event is nested too deeply');
  if (Buffer.isBuffer(m) || m instanceof Uint8Array) return unwrap(Buffer.from(m).toString('utf8'), depth + 1);
  if (typeof m === 'string') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(m);
    } catch {
      throw new Error('completion event is not JSON');
    }
    return unwrap(parsed, depth + 1);
  }
  if (!isObj(m)) throw new Error('completion event must be an object');
  if (m.specversion !== undefined) return m;
  // Pub/Sub push body.
  if (isObj(m.message) && m.message.data !== undefined) return unwrap(decodeData(m.message.data), depth + 1);
  // Lambda SNS / SQS events: exactly one record, so callers handle batches explicitly.
  if (Array.isArray(m.Records)) {
    if (m.Records.length !== 1) throw new Error(`expected one record, got ${m.Records.length}: parse each record separately`);
    const r: unknown = m.Records[0];
    if (isObj(r) && isObj(r.Sns)) return unwrap(r.Sns.Message, depth + 1);
    if (isObj(r) && typeof r.body === 'string') return unwrap(r.body, depth + 1);
    throw new Error('unrecognised record');
  }
  // One record of a Lambda SNS or SQS event, handed over on its own.
  if (isObj(m.Sns)) return unwrap(m.Sns.Message, depth + 1);
  if (typeof m.body === 'string' && m.eventSource === 'aws:sqs') return unwrap(m.body, depth + 1);
  // SNS notification envelope (HTTP subscription or SQS body).
  if (m.Type === 'Notification' && typeof m.Message === 'string') return unwrap(m.Message, depth + 1);
  // SQS message from the SDK.
  if (typeof m.Body === 'string') return unwrap(m.Body, depth + 1);
  // Pub/Sub pull message from the client library.
  if (m.data !== undefined && (Buffer.isBuffer(m.data) || typeof m.data === 'string' || m.data instanceof Uint8Array)) {
    return unwrap(decodeData(m.data), depth + 1);
  }
  throw new Error('unrecognised completion event envelope');
}

function decodeData(data: unknown): Buffer {
  if (Buffer.isBuffer(data) || data instanceof Uint8Array) return Buffer.from(data);
  if (typeof data === 'string') {
    const trimmed = data.trimStart();
    // Pub/Sub push bodies carry base64; tolerate raw JSON text too.
    return trimmed.startsWith('{') ? Buffer.from(data, 'utf8') : Buffer.from(data, 'base64');
  }
  throw new Error('message data must be a string or bytes');
}
