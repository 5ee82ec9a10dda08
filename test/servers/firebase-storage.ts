/**
 * Optional second GCS JSON-API server: firebase-tools' storage emulator, started in-process without
 * its CLI. `StorageEmulator.start()` would first launch the security-rules runtime, a Java jar it
 * downloads at run time (impossible offline), so only its Express app is built and served here; the
 * JSON ("gcloud") API does not consult rules. This reaches into firebase-tools internals
 * (`lib/emulator/...`), so it is pinned to the version noted below and used only for the ObjectStore
 * contract, never for signed URLs (it has no V4 signed-URL support).
 *
 * firebase-tools is not a dependency of this project (hundreds of MB for one extra contract run): the
 * helper looks for it in `PIXELPIPE_FIREBASE_TOOLS` (a `.../node_modules/firebase-tools` directory) or
 * the project's node_modules, and returns null when absent.
 */
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

export const FIREBASE_TOOLS_VERSION_TESTED = '15.34.2';

export interface FirebaseStorage {
  url: string;
  version: string;
  stop(): Promise<void>;
}

/** Where firebase-tools is installed, or null. */
export function findFirebaseTools(): string | null {
  const candidates = [process.env.PIXELPIPE_FIREBASE_TOOLS, join(__dirname, '..', '..', 'node_modules', 'firebase-tools')].filter(Boolean) as string[];
  return candidates.find((d) => existsSync(join(d, 'lib', 'emulator', 'storage', 'server.js'))) ?? null;
}

/** Starts the emulator's HTTP app on 127.0.0.1 and a free port, or returns null when firebase-tools is absent. */
export async function startFirebaseStorage(projectId = 'demo-pixelpipe'): Promise<FirebaseStorage | null> {
  const dir = findFirebaseTools();
  if (!dir) return null;
  // Dynamic requires: the package is optional and has no types here.
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { StorageEmulator } = require(join(dir, 'lib/emulator/storage/index.js')) as { StorageEmulator: new (args: object) => { args: { port: number } } };
  const { createApp } = require(join(dir, 'lib/emulator/storage/server.js')) as {
    createApp: (projectId: string, emulator: unknown) => Promise<{ listen(port: number, host: string): import('node:http').Server }>;
  };
  const { EmulatorRegistry } = require(join(dir, 'lib/emulator/registry.js')) as {
    EmulatorRegistry: { set(name: string, e: unknown): void; clear(name: string): void };
  };
  const version = (require(join(dir, 'package.json')) as { version: string }).version;
  /* eslint-enable @typescript-eslint/no-require-imports */
  const emulator = new StorageEmulator({ projectId, host: '127.0.0.1', port: 0, auto_download: false, rules: [] });
  const app = await createApp(projectId, emulator);
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    server.once('listening', () => resolve());
    server.once('error', reject);
  });
  const port = (server.address() as AddressInfo).port;
  // Its handlers build URLs from the registry; register this instance with the real port.
  emulator.args.port = port;
  EmulatorRegistry.set('storage', emulator);
  return {
    url: `http://127.0.0.1:${port}`,
    version,
    stop: () =>
      new Promise<void>((resolve) => {
        EmulatorRegistry.clear('storage');
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
