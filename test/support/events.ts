/** Test helper for code paths that can only have published a `processed` or `failed` event. */
import { EVENT_TYPES, parseCompletionEvent, type ImageOutcomeEvent } from '../../shared/events';

/** `parseCompletionEvent`, narrowed: a `deleted` event where an outcome was expected fails the test. */
export function parseOutcomeEvent(message: unknown): ImageOutcomeEvent {
  const event = parseCompletionEvent(message);
  if (event.type === EVENT_TYPES.deleted) throw new Error(`expected a processed or failed event, got ${event.type} for ${event.subject}`);
  return event;
}
