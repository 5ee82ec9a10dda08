/**
 * The dev stack's page and API server. It listens first, before anything else has started, so the
 * port is taken (and a conflict reported) at once; until the stack is ready it answers 503.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isAddressInUse, PortInUseError } from './ports';

type Listener = (req: IncomingMessage, res: ServerResponse) => void;

/** A listening server whose request handling is installed once the rest of the stack runs. */
export interface PageServer {
  /** The bound port (the configured one, or the one the system chose for 0). */
  port: number;
  /** Replaces the "starting" answer with the real request listener. */
  serve(listener: Listener): void;
  /** Stops accepting requests and drops open connections (event streams included) without waiting. */
  stopAccepting(): void;
  /** Closes the server and waits until it has closed. */
  close(): Promise<void>;
}

const starting: Listener = (_req, res) => {
  res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '1' });
  res.end('pixelpipe dev stack is starting');
};

/** Binds `host:port` exclusively; a port in use becomes a {@link PortInUseError} naming PIXELPIPE_DEV_PORT. */
export async function startPageServer(host: string, port: number): Promise<PageServer> {
  let listener = starting;
  const server = createServer((req, res) => listener(req, res));
  await listen(server, host, port);
  return {
    port: (server.address() as AddressInfo).port,
    serve(l) {
      listener = l;
    },
    stopAccepting() {
      server.close();
      server.closeAllConnections();
    },
    close: () => closeServer(server),
  };
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', (err) => reject(isAddressInUse(err) ? new PortInUseError(port, 'PIXELPIPE_DEV_PORT', 'page and API') : err));
    server.listen({ host, port, exclusive: true }, () => resolve());
  });
}

async function closeServer(server: Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  await closed;
}
