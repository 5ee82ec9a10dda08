/**
 * Where the repository is, however this code is run: transpiled by jest in place, or bundled by
 * `scripts/ts.mjs` into `node_modules/.cache/pixelpipe/`. Imported first by the benchmark so that
 * `scripts/fixtures.ts` finds `samples/` from either location.
 */
import { join } from 'node:path';
import { repoRoot } from '../lib/root';

/** Absolute path of the repository root. */
export const REPO_ROOT: string = repoRoot(__dirname);

process.env.PIXELPIPE_SAMPLES_DIR ??= join(REPO_ROOT, 'samples');
