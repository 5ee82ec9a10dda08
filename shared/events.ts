/**
 * The completion event contract: CloudEvents 1.0 in structured JSON mode, published once per manifest.
 *
 * - `type`: `pixelpipe.image.processed.v1` or `pixelpipe.image.failed.v1` (data: the manifest), or
 *   `pixelpipe.image.deleted.v1` (data: an {@link ImageDeletion}, published by the delete cascade once
 *   every derived object is gone). The `v1` is the data schema version; a breaking change gets a new
 *   type so old subscribers keep working;
 * - `id`: deterministic from (bucket, key, generation, status), so redeliveries and reprocessing of the
 *   same generation carry the same id and subscribers can drop duplicates;
 * - `subject`: the image id; `traceparent`: the upload's trace, when known.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { manifestSchema, type Manifest } from './manifest';
import type { EventAttributes } from './ports';

export const EVENT_TYPES = { processed: 'pixelpipe.image.processed.v1', failed: 'pixelpipe.image.failed.v1', deleted: 'pixelpipe.image.deleted.v1' } as const;
export type CompletionEventType = (typeof EVENT_TYPES)[keyof typeof EVENT_TYPES];
export const DATA_SCHEMA = 'urn:pixelpipe:schema:completion-event:v1';

const envelope = {
  specversion: z.literal('1.0'),
  id: z.string().min(1),
  source: z.string().min(1),
  subject: z.string().min(1),
  time: z.string(),
  datacontenttype: z.literal('application/json'),
  dataschema: z.literal(DATA_SCHEMA),
  traceparent: z.string().optional(),
};

/** The `data` of a `pixelpipe.image.deleted.v1` event: which original went, and when. */
export const imageDeletionSchema = z.object({
  schemaVersion: z.literal(1),
  id: z.string(),
  owner: z.string(),
  status: z.literal('deleted'),
  /** The deleted original; `generation` is absent when the platform did not report one (unversioned S3). */
  source: z.object({ bucket: z.string(), key: z.string(), generation: z.string().optional() }),
  /** When the storage service reported the deletion (RFC 3339). */
  deletedAt: z.string(),
  traceId: z.string().optional(),
});
export type ImageDeletion = z.infer<typeof imageDeletionSchema>;

export const imageOutcomeEventSchema = z.object({
  ...envelope,
  type: z.enum([EVENT_TYPES.processed, EVENT_TYPES.failed]),
  durationms: z.number().nonnegative().optional(),
  data: manifestSchema,
});

export const imageDeletedEventSchema = z.object({
  ...envelope,
  type: z.literal(EVENT_TYPES.deleted),
  data: imageDeletionSchema,
});

export const completionEventSchema = z.discriminatedUnion('type', [imageOutcomeEventSchema, imageDeletedEventSchema]);

/** A `processed` or `failed` event, published by the notifier; `data` is the manifest. */
export type ImageOutcomeEvent = z.infer<typeof imageOutcomeEventSchema>;
/** A `deleted` event, published by the delete cascade. */
export type ImageDeletedEvent = z.infer<typeof imageDeletedEventSchema>;
/** Any event on the completion topic: narrow on `type` before reading `data`. */
export type CompletionEvent = z.infer<typeof completionEventSchema>;

/** Deterministic event id: same source generation and outcome ⇒ same id. */
export function completionEventId(m: { source: Pick<Manifest['source'], 'bucket' | 'key' | 'generation'>; status: string }): string {
  return createHash('sha256').update(`${m.source.bucket}\n${m.source.key}\n${m.source.generation}\n${m.status}`).digest('hex').slice(0, 32);
}

/**
 * The manifest as the event carries it: face descriptors (biometric data) removed, `analysis.faceDescriptors`
 * (their count) kept. Every subscriber of the topic gets the event, while the manifest stays in the private
 * manifests bucket, so only there are they readable, under that bucket's access and the delete cascade.
 */
export function withoutDescriptors(manifest: Manifest): Manifest {
  const faces = manifest.analysis?.faces;
  if (!faces?.some((f) => f.descriptor)) return manifest;
  return { ...manifest, analysis: { ...manifest.analysis!, faces: faces.map(({ descriptor: _descriptor, ...face }) => face) } };
}

/** Builds the event and the attributes subscribers filter on. */
export function buildCompletionEvent(manifest: Manifest, source: string, time: Date): { event: ImageOutcomeEvent; attributes: EventAttributes } {
  const type = manifest.status === 'processed' ? EVENT_TYPES.processed : EVENT_TYPES.failed;
  const event: ImageOutcomeEvent = {
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
    data: withoutDescriptors(manifest),
  };
  const a = manifest.analysis;
  // Filterable outcome of analysis: only when it was asked for, so absence never reads as "no faces" or "ok".
  const analysis = { ...(a?.moderation ? { moderation: a.moderation.verdict } : {}), ...(a?.faces ? { faces: String(a.faces.length) } : {}) };
  const profile: Record<string, string> = manifest.profile ? { profile: manifest.profile } : {};
  // A blocked image's stand-ins: subscribers can tell them from real variants without reading the data.
  const placeholders: Record<string, string> = manifest.variants.some((v) => v.placeholder) ? { variants: 'placeholder' } : {};
  return { event, attributes: { type, imageId: manifest.id, owner: manifest.owner, status: manifest.status, ...analysis, ...profile, ...placeholders } };
}

/**
 * Builds the `deleted` event. Its id is derived like the others, from the deleted generation (or, where
 * the platform reports none, `identity`: the notification's sequencer), so a redelivered deletion
 * publishes an identical message; `time` is the deletion's, not the cascade's.
 */
export function buildDeletedEvent(
  deletion: ImageDeletion,
  source: string,
  identity: string = deletion.source.generation ?? deletion.deletedAt,
): { event: ImageDeletedEvent; attributes: EventAttributes } {
  const event: ImageDeletedEvent = {
    specversion: '1.0',
    id: completionEventId({ source: { ...deletion.source, generation: identity }, status: 'deleted' }),
    source,
    type: EVENT_TYPES.deleted,
    subject: deletion.id,
    time: deletion.deletedAt,
    datacontenttype: 'application/json',
    dataschema: DATA_SCHEMA,
    ...(deletion.traceId ? { traceparent: toTraceparent(deletion.traceId) } : {}),
    data: deletion,
  };
  return { event, attributes: { type: EVENT_TYPES.deleted, imageId: deletion.id, owner: deletion.owner, status: 'deleted' } };
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
