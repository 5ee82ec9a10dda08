/**
 * S3 event notifications as Lambda receives them: validated at the edge, keys decoded, one
 * {@link ObjectRef} per record, and the per-record bookkeeping shared by the process and notify handlers.
 */
import { z } from 'zod';
import { PixelpipeError, TransientError, isRetryable, type TransientReasonCode } from '../../shared/errors';
import type { Logger } from '../../shared/ports';
import { s3Generation } from './s3-object-store';

const recordSchema = z.object({
  eventSource: z.literal('aws:s3'),
  eventName: z.string(),
  eventTime: z.string().optional(),
  s3: z.object({
    bucket: z.object({ name: z.string().min(1) }),
    object: z.object({
      key: z.string().min(1),
      size: z.number().optional(),
      eTag: z.string().optional(),
      versionId: z.string().optional(),
      sequencer: z.string().optional(),
    }),
  }),
});

/** `{Records: [...]}` as delivered by an S3 → Lambda notification. */
export const s3EventSchema = z.object({ Records: z.array(recordSchema).min(1) });
export type S3EventRecord = z.infer<typeof recordSchema>;

/** What one record points at, with the key decoded and the generation in the object store's terms. */
export interface ObjectRef {
  bucket: string;
  key: string;
  generation?: string;
  eventTime?: Date;
  eventName: string;
  /** Orders the events of one key; the same on a redelivery, so it identifies an unversioned deletion. */
  sequencer?: string;
}

/**
 * Decodes an event key. S3 writes keys form-URL-encoded: `+` stands for a space and a literal plus
 * arrives as `%2B`, so `+` must become a space *before* percent-decoding. Returns `null` for a key
 * that is not valid percent-encoding (it cannot name an object we wrote).
 */
export function decodeS3Key(raw: string): string | null {
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' '));
  } catch {
    return null;
  }
}

/** The object a record refers to, or `null` when its key cannot be decoded. */
export function objectRef(record: S3EventRecord): ObjectRef | null {
  const key = decodeS3Key(record.s3.object.key);
  if (key === null) return null;
  const { eTag, versionId } = record.s3.object;
  const time = record.eventTime ? new Date(record.eventTime) : undefined;
  return {
    bucket: record.s3.bucket.name,
    key,
    generation: eTag || versionId ? s3Generation(versionId, eTag) : undefined,
    eventTime: time && !Number.isNaN(time.getTime()) ? time : undefined,
    eventName: record.eventName,
    ...(record.s3.object.sequencer ? { sequencer: record.s3.object.sequencer } : {}),
  };
}

/** The outcome of one record, logged for every invocation and returned to the caller. */
export interface RecordOutcome {
  bucket: string;
  key: string;
  /** Use-case status, or `retry` (transient, the invocation will fail) / `error` (permanent, acknowledged). */
  status: string;
  reason?: string;
  imageId?: string;
}

/** The handlers' return value: every record's outcome, and the ones that need another attempt. */
export interface BatchResult {
  outcomes: RecordOutcome[];
  /** Keys of records that failed transiently (batchItemFailures-style), empty when the invocation succeeds. */
  batchItemFailures: Array<{ itemIdentifier: string }>;
}

/**
 * Runs `handle` for each record in order (one image at a time bounds memory), never stopping at a
 * failure, then throws once when any record failed transiently so Lambda retries the event. Records
 * already done are cheap on the retry: the use cases recognise them (duplicate manifest, identical event).
 * Permanent errors are logged and acknowledged: retrying them cannot help.
 */
export async function forEachRecord(
  event: unknown,
  logger: Logger,
  what: string,
  handle: (ref: ObjectRef) => Promise<Omit<RecordOutcome, 'bucket' | 'key'>>,
  /** Which records the handler serves: `ObjectCreated:` (process, notify) or `ObjectRemoved:` (cascade). */
  events: 'ObjectCreated:' | 'ObjectRemoved:' = 'ObjectCreated:',
): Promise<BatchResult> {
  const parsed = s3EventSchema.safeParse(event);
  if (!parsed.success) {
    // S3 sends `s3:TestEvent` once when a notification is configured; anything else is a wiring mistake.
    const test = typeof event === 'object' && event !== null && (event as { Event?: unknown }).Event === 's3:TestEvent';
    if (!test) logger.error(`${what}: not an S3 event notification; ignoring it`, { reason: 'invalid_event', issues: parsed.error.issues.slice(0, 3) });
    return { outcomes: [], batchItemFailures: [] };
  }
  const outcomes: RecordOutcome[] = [];
  const transient: unknown[] = [];
  for (const record of parsed.data.Records) {
    const ref = objectRef(record);
    const base = { bucket: record.s3.bucket.name, key: ref?.key ?? record.s3.object.key };
    if (!ref) {
      outcomes.push({ ...base, status: 'ignored', reason: 'undecodable_key' });
      continue;
    }
    if (!ref.eventName.startsWith(events)) {
      outcomes.push({ ...base, status: 'ignored', reason: events === 'ObjectCreated:' ? 'not_object_created' : 'not_object_removed' });
      continue;
    }
    try {
      outcomes.push({ ...base, ...(await handle(ref)) });
    } catch (err) {
      const reason = err instanceof PixelpipeError ? err.code : 'internal';
      if (isRetryable(err)) {
        transient.push(err);
        outcomes.push({ ...base, status: 'retry', reason });
      } else {
        logger.error(`${what}: permanent failure; acknowledging the record`, { err, bucket: base.bucket, key: base.key, reason });
        outcomes.push({ ...base, status: 'error', reason });
      }
    }
  }
  const result: BatchResult = {
    outcomes,
    batchItemFailures: outcomes.filter((o) => o.status === 'retry').map((o) => ({ itemIdentifier: o.key })),
  };
  logger.info(`${what}: ${outcomes.length} record(s)`, { outcomes, batchItemFailures: result.batchItemFailures });
  if (transient.length) {
    const first = transient[0];
    const code = (first instanceof PixelpipeError ? first.code : 'internal') as TransientReasonCode;
    throw new TransientError(
      code,
      `${transient.length} of ${outcomes.length} record(s) failed transiently (${result.batchItemFailures.map((f) => f.itemIdentifier).join(', ')}); failing the invocation so Lambda retries`,
      transient.length === 1 ? first : new AggregateError(transient),
    );
  }
  return result;
}
