/** Default clock and id generator adapters (Node built-ins, no cloud SDK). */
import { randomUUID } from 'node:crypto';
import { newestFirstId } from './keys';
import type { Clock, IdGenerator } from './ports';

export const systemClock: Clock = { now: () => new Date() };

/** Random UUIDv4 ids: 122 bits of entropy, so keys cannot be guessed or enumerated. */
export const uuidIds: IdGenerator = { newId: () => randomUUID() };

/**
 * Newest-first image ids (`keys.ts`): listing an owner's originals in key order lists their images
 * newest first, with a random UUID inside so ids stay unguessable.
 */
export function newestFirstIds(clock: Clock = systemClock): IdGenerator {
  return { newId: () => newestFirstId(clock.now().getTime(), randomUUID()) };
}
