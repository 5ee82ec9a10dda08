/** Default clock and id generator adapters (Node built-ins, no cloud SDK). */
import { randomUUID } from 'node:crypto';
import type { Clock, IdGenerator } from './ports';

export const systemClock: Clock = { now: () => new Date() };

/** Random UUIDv4 ids: 122 bits of entropy, so keys cannot be guessed or enumerated. */
export const uuidIds: IdGenerator = { newId: () => randomUUID() };
