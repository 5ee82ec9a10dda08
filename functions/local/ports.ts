/**
 * Port availability for the dev stack: checked up front so a taken port fails in milliseconds with a
 * message naming the port and the variable that moves it, before anything slow (the JVM) has started.
 */
import { createServer, type Server } from 'node:net';

/** A port the stack needs is taken by another process. */
export class PortInUseError extends Error {
  constructor(
    readonly port: number,
    readonly variable: string,
    readonly what: string,
  ) {
    super(`port ${port} is already in use (set ${variable}) — needed for the ${what}`);
    this.name = 'PortInUseError';
  }
}

/** True when `err` is Node's "address already in use" error. */
export function isAddressInUse(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'EADDRINUSE';
}

/**
 * Binds and releases each port on `host`; throws {@link PortInUseError} for the first one taken.
 * Port 0 ("any free port") is skipped. A small race with other processes remains; the real listen
 * maps EADDRINUSE to the same error.
 */
export async function assertPortsFree(host: string, ports: Array<{ port: number; variable: string; what: string }>): Promise<void> {
  for (const p of ports) {
    if (p.port === 0) continue;
    await new Promise<void>((resolve, reject) => {
      const s: Server = createServer();
      s.once('error', (err) => reject(isAddressInUse(err) ? new PortInUseError(p.port, p.variable, p.what) : err));
      s.listen({ port: p.port, host, exclusive: true }, () => s.close(() => resolve()));
    });
  }
}

/** A free TCP port on 127.0.0.1 (bound and released, so a small race with other processes remains). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}
