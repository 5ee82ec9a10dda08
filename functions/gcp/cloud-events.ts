/**
 * Edge validation of the CloudEvents the GCP functions receive (no SDK imports, shared by the process
 * and notify entries):
 * - `google.cloud.storage.object.v1.finalized` from Eventarc (data: the JSON API object resource);
 * - `google.cloud.pubsub.topic.v1.messagePublished` carrying a GCS Pub/Sub notification (attributes
 *   `bucketId`, `objectId`, `objectGeneration`, `eventType`), from Eventarc or from a push
 *   subscription that functions-framework converts into that CloudEvent;
 * - for the delete cascade, `google.cloud.storage.object.v1.deleted` from Eventarc, or a GCS Pub/Sub
 *   notification with `eventType` `OBJECT_DELETE` (both may say `overwrittenByGeneration`).
 */
import { z } from 'zod';
import type { PixelpipeConfig } from '../../shared/config';
import { isRetryable } from '../../shared/errors';
import { newTraceId, validTraceId, withInvocation, type Invocation } from '../../shared/invocation';
import type { Logger } from '../../shared/ports';

export const STORAGE_FINALIZED = 'google.cloud.storage.object.v1.finalized';
export const PUBSUB_PUBLISHED = 'google.cloud.pubsub.topic.v1.messagePublished';
export const STORAGE_DELETED = 'google.cloud.storage.object.v1.deleted';

/** What the handlers need from any CloudEvent. */
export interface IncomingCloudEvent {
  id?: string;
  type?: string;
  source?: string;
  time?: string;
  /** W3C trace context extension attribute, when the producer set one. */
  traceparent?: string;
  data?: unknown;
}

const generation = z.union([z.string().regex(/^\d+$/), z.number().int().nonnegative()]).transform(String);
const isoTime = z.iso.datetime({ offset: true });

const storageObjectData = z.object({
  bucket: z.string().min(1),
  name: z.string().min(1),
  generation,
  metageneration: generation.optional(),
  size: z
    .union([z.string().regex(/^\d+$/), z.number().int().nonnegative()])
    .transform(Number)
    .optional(),
  contentType: z.string().optional(),
  // Values are only read for the trace id; anything else in them must not make the event invalid.
  metadata: z.record(z.string(), z.unknown()).optional(),
  overwrittenByGeneration: generation.optional(),
  timeDeleted: isoTime.optional(),
});

/** A reference to a finalized object, as the use cases take it. */
export interface ObjectRef {
  bucket: string;
  key: string;
  generation?: string;
  eventTime?: Date;
  /** The `pixelpipe-trace` metadata of the object, when the event carries the object's metadata. */
  traceId?: string;
}

/** A deleted object, as the delete cascade takes it. */
export interface DeletionRef extends ObjectRef {
  /** Set when GCS reports the deletion because a newer generation replaced the object. */
  overwrittenByGeneration?: string;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; ignored: boolean; reason: string };

/** The validated time and object resource of a direct storage event (`finalized`, `deleted`). */
function parseStorageEvent(event: IncomingCloudEvent): Parsed<{ time?: string; data: z.infer<typeof storageObjectData>; traceId?: string }> {
  const time = event.time === undefined ? undefined : isoTime.safeParse(event.time);
  if (time && !time.success) return { ok: false, ignored: false, reason: 'event time is not an RFC 3339 timestamp' };
  const data = storageObjectData.safeParse(typeof event.data === 'string' ? safeJson(event.data) : event.data);
  if (!data.success) return { ok: false, ignored: false, reason: `invalid storage object data: ${summarize(data.error)}` };
  const traceId = validTraceId(data.data.metadata?.['pixelpipe-trace']);
  return { ok: true, value: { data: data.data, ...(time?.success ? { time: time.data } : {}), ...(traceId ? { traceId } : {}) } };
}

/** Validates a storage `finalized` event; anything else is rejected with a reason for the log. */
export function parseStorageFinalized(event: IncomingCloudEvent): Parsed<ObjectRef> {
  if (event.type !== STORAGE_FINALIZED) return { ok: false, ignored: true, reason: `unexpected event type ${String(event.type)}` };
  const parsed = parseStorageEvent(event);
  if (!parsed.ok) return parsed;
  const { data, time, traceId } = parsed.value;
  return {
    ok: true,
    value: {
      bucket: data.bucket,
      key: data.name,
      generation: data.generation,
      ...(time ? { eventTime: new Date(time) } : {}),
      ...(traceId ? { traceId } : {}),
    },
  };
}

const notificationAttributes = z.object({
  bucketId: z.string().min(1),
  objectId: z.string().min(1),
  objectGeneration: generation.optional(),
  eventType: z.string().min(1),
  // Only read by the cascade, and only when it parses as a date: it must not invalidate a finalize.
  eventTime: z.string().optional(),
  overwrittenByGeneration: generation.optional(),
});

const pubsubData = z.object({
  message: z.object({
    attributes: z.record(z.string(), z.string()).optional(),
    data: z.string().optional(),
    publishTime: z.string().optional(),
  }),
});

/** A GCS Pub/Sub notification of `eventType`, its attributes validated; other notification types are ignored. */
function parseGcsNotification(
  event: IncomingCloudEvent,
  eventType: 'OBJECT_FINALIZE' | 'OBJECT_DELETE',
): Parsed<{ attrs: z.infer<typeof notificationAttributes>; traceId: string | undefined }> {
  if (event.type !== PUBSUB_PUBLISHED) return { ok: false, ignored: true, reason: `unexpected event type ${String(event.type)}` };
  const data = pubsubData.safeParse(event.data);
  if (!data.success) return { ok: false, ignored: false, reason: `invalid Pub/Sub message: ${summarize(data.error)}` };
  const attrs = notificationAttributes.safeParse(data.data.message.attributes ?? {});
  if (!attrs.success) return { ok: false, ignored: false, reason: `not a GCS notification: ${summarize(attrs.error)}` };
  if (attrs.data.eventType !== eventType) return { ok: false, ignored: true, reason: `notification ${attrs.data.eventType} is not ${eventType}` };
  return { ok: true, value: { attrs: attrs.data, traceId: notificationTraceId(data.data.message.data) } };
}

/**
 * Accepts a GCS notification wrapped in a Pub/Sub `messagePublished` event, or a direct storage
 * `finalized` event. Notifications other than `OBJECT_FINALIZE` (deletes, metadata updates) are ignored.
 */
export function parseFinalizeNotification(event: IncomingCloudEvent): Parsed<ObjectRef> {
  if (event.type === STORAGE_FINALIZED) return parseStorageFinalized(event);
  const parsed = parseGcsNotification(event, 'OBJECT_FINALIZE');
  if (!parsed.ok) return parsed;
  const { attrs, traceId } = parsed.value;
  return {
    ok: true,
    value: {
      bucket: attrs.bucketId,
      key: attrs.objectId,
      ...(attrs.objectGeneration ? { generation: attrs.objectGeneration } : {}),
      ...(traceId ? { traceId } : {}),
    },
  };
}

/**
 * Validates a deletion: a storage `deleted` event, or a GCS notification (`OBJECT_DELETE`) wrapped in
 * a Pub/Sub `messagePublished` event. Other notifications (finalize, archive, metadata) are ignored.
 */
export function parseDeletion(event: IncomingCloudEvent): Parsed<DeletionRef> {
  if (event.type === STORAGE_DELETED) {
    const parsed = parseStorageEvent(event);
    if (!parsed.ok) return parsed;
    const { data, time, traceId } = parsed.value;
    const when = time ?? data.timeDeleted;
    return {
      ok: true,
      value: {
        bucket: data.bucket,
        key: data.name,
        generation: data.generation,
        ...(when ? { eventTime: new Date(when) } : {}),
        ...(data.overwrittenByGeneration ? { overwrittenByGeneration: data.overwrittenByGeneration } : {}),
        ...(traceId ? { traceId } : {}),
      },
    };
  }
  const parsed = parseGcsNotification(event, 'OBJECT_DELETE');
  if (!parsed.ok) return parsed;
  const { attrs, traceId } = parsed.value;
  return {
    ok: true,
    value: {
      bucket: attrs.bucketId,
      key: attrs.objectId,
      ...(attrs.objectGeneration ? { generation: attrs.objectGeneration } : {}),
      ...(attrs.eventTime && !Number.isNaN(Date.parse(attrs.eventTime)) ? { eventTime: new Date(attrs.eventTime) } : {}),
      ...(attrs.overwrittenByGeneration ? { overwrittenByGeneration: attrs.overwrittenByGeneration } : {}),
      ...(traceId ? { traceId } : {}),
    },
  };
}

/** The trace id in a JSON_API_V1 notification payload (base64 of the object resource), if any. */
function notificationTraceId(base64: string | undefined): string | undefined {
  if (!base64) return undefined;
  const resource = safeJson(Buffer.from(base64, 'base64').toString('utf8')) as { metadata?: Record<string, unknown> } | undefined;
  return validTraceId(typeof resource === 'object' && resource !== null ? resource.metadata?.['pixelpipe-trace'] : undefined);
}

/** The trace id of a W3C `traceparent` value (`00-<trace id>-<span id>-<flags>`). */
function traceparentId(value: string | undefined): string | undefined {
  return validTraceId(/^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(value ?? '')?.[1]);
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s) as unknown;
  } catch {
    return undefined;
  }
}

function summarize(err: z.ZodError): string {
  return err.issues
    .slice(0, 3)
    .map((i) => `${i.path.join('.') || 'data'}: ${i.message}`)
    .join('; ');
}

/** What {@link eventHandler} needs: the function's settings and logger, the edge parser and the use case. */
export interface EventHandlerOptions<R, T extends ObjectRef = ObjectRef> {
  what: string;
  config: PixelpipeConfig;
  /** The function's root logger; each invocation logs through a child with its event and trace id. */
  logger: Logger;
  parse: (event: IncomingCloudEvent) => Parsed<T>;
  run: (ref: T, inv: Invocation) => Promise<R>;
  /** Epoch milliseconds; injectable so tests control the deadline. Defaults to `Date.now`. */
  now?: () => number;
}

/**
 * The one shape both GCP event handlers have: validate at the edge, build the invocation context, run
 * the use case, log the outcome, acknowledge everything permanent and rethrow what is retryable (the
 * platform then redelivers).
 *
 * Functions-framework does not tell a handler its deadline, so it is the configured function timeout
 * (`PIXELPIPE_FUNCTION_TIMEOUT_SECONDS`, which the deploy sets to the function's `--timeout`) from the
 * moment the handler was called. The trace id is the object's `pixelpipe-trace` metadata when the event
 * carries it, else the CloudEvent's `traceparent`, else a fresh one.
 */
export function eventHandler<R extends { status: string }, T extends ObjectRef = ObjectRef>(
  options: EventHandlerOptions<R, T>,
): (event: IncomingCloudEvent) => Promise<void> {
  const { what, config, logger, parse, run } = options;
  const now = options.now ?? Date.now;
  return async (event) => {
    const started = now();
    const parsed = parse(event);
    const traceId = (parsed.ok ? parsed.value.traceId : undefined) ?? traceparentId(event.traceparent) ?? newTraceId();
    const log = logger.child({ eventId: event.id, eventType: event.type, traceId });
    if (!parsed.ok) {
      // Acknowledged: redelivering a malformed or foreign event cannot make it valid.
      if (parsed.ignored) log.info(`${what}: event not handled`, { reason: parsed.reason });
      else log.error(`${what}: event not handled`, { reason: parsed.reason });
      return;
    }
    const key = parsed.value.key;
    const init = { deadline: started + config.invocation.timeoutSeconds * 1000, traceId, logger: log, now };
    try {
      const outcome = await withInvocation(init, (inv) => run(parsed.value, inv));
      log.info(`${what} outcome: ${outcome.status}`, { status: outcome.status, key, ...('reason' in outcome ? { reason: outcome.reason } : {}) });
    } catch (err) {
      if (isRetryable(err)) {
        log.warn(`${what} failed transiently; asking the platform to retry`, { err, key });
        throw err;
      }
      log.error(`${what} failed permanently; event acknowledged`, { err, key });
    }
  };
}
