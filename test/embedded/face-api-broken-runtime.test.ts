import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FaceApiImageAnalyzer, faceApiAssetDirs } from '../../functions/embedded/face-api-image-analyzer';

// A file of its own: TensorFlow.js keeps one engine per process (here: per test file), and this one must never have started.
it('fails loudly when the wasm binaries are missing instead of running on the pure-JS backend', async () => {
  const { modelDir } = faceApiAssetDirs(undefined, existsSync);
  const empty = mkdtempSync(join(tmpdir(), 'no-wasm-'));
  const analyzer = new FaceApiImageAnalyzer({ modelDir, wasmDir: empty });
  // tfjs and emscripten warn on the console on their way down; the assertion below is what matters.
  const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
  const pixels = { data: new Uint8Array(64 * 64 * 3), width: 64, height: 64, channels: 3 as const };
  await expect(analyzer.analyze(pixels, ['faces'])).rejects.toThrow(/wasm backend did not start/);
  warn.mockRestore();
});
