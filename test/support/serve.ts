/** Serving a test HTTP server on 127.0.0.1 (never another interface) and closing it without waiting on keep-alive sockets. */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ServedFunction {
  url: string;
  close(): Promise<void>;
}

/** Listens on a free port of 127.0.0.1 (e.g. a functions-framework `getTestServer`, or a fake). */
export async function serve(server: Server): Promise<ServedFunction> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
