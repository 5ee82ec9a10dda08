/**
 * Writes the completion event's JSON Schema from the zod schema the code validates with, so the
 * published file cannot drift from the implementation (a unit test compares them).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './lib/root';
import { z } from 'zod';
import { completionEventSchema, DATA_SCHEMA } from '../shared/events';

/** The JSON Schema document for `pixelpipe.image.*.v1` events. */
export function completionEventJsonSchema(): Record<string, unknown> {
  return {
    $id: DATA_SCHEMA,
    title: 'pixelpipe completion event (CloudEvents 1.0, structured JSON)',
    ...z.toJSONSchema(completionEventSchema, { target: 'draft-2020-12' }),
  };
}

export const SCHEMA_PATH = join(repoRoot(), 'shared', 'schema', 'completion-event.v1.schema.json');

if (require.main === module) {
  writeFileSync(SCHEMA_PATH, `${JSON.stringify(completionEventJsonSchema(), null, 2)}\n`);
  console.log(`wrote ${SCHEMA_PATH}`);
}
