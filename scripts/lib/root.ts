import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * The repository root, found by walking up to pixelpipe's package.json. Works both from source (jest)
 * and from a bundled copy under node_modules/.cache (scripts/ts.mjs), where `__dirname` differs.
 */
export function repoRoot(from: string = __dirname): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'pixelpipe') return dir;
    if (dirname(dir) === dir) throw new Error(`pixelpipe's package.json not found above ${from}`);
  }
}
