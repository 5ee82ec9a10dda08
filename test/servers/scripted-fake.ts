/**
 * The skeleton of the scripted service fakes (`vision-fake.ts`, `rekognition-fake.ts`): the scene a test
 * sets (what the service "sees" in every image), the requests recorded, a queue of faults for the next
 * requests (optionally only for one operation), requests held unanswered until the client gives up, and
 * an HTTP server on 127.0.0.1 only. Each fake keeps its own protocol: routing, authentication, answers.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';

/** An inline image as the fake decoded it (`data`: the bytes sent, for pixel checks). */
export interface DecodedImage {
  format: string;
  width: number;
  height: number;
  bytes: number;
  data: Buffer;
}

/** Decodes an inline image's header; undefined when sharp cannot read it. */
export async function decodeImage(data: Buffer): Promise<DecodedImage | undefined> {
  try {
    const meta = await sharp(data).metadata();
    return { format: meta.format ?? '', width: meta.width ?? 0, height: meta.height ?? 0, bytes: data.length, data };
  } catch {
    return undefined;
  }
}

export abstract class ScriptedFake<Scene, Request, Fault> {
  scene: Scene;
  readonly requests: Request[] = [];
  /** Requests whose client went away before an answer (held ones it gave up on, or aborted). */
  aborted = 0;
  private readonly faults: Array<{ fault: Fault; operation?: string }> = [];
  private server?: Server;

  constructor(private readonly emptyScene: () => Scene) {
    this.scene = emptyScene();
  }

  /** Forgets the scene, the recorded requests and any queued fault (between tests). */
  reset(): void {
    this.scene = this.emptyScene();
    this.requests.length = 0;
    this.faults.length = 0;
    this.aborted = 0;
  }

  /** Queues `fault` for the next `times` requests (of `operation`, or any). */
  failNext(fault: Fault, times = 1, operation?: string): void {
    for (let i = 0; i < times; i++) this.faults.push({ fault, operation });
  }

  /** Listens on a random port of 127.0.0.1; returns the base URL. */
  async start(): Promise<string> {
    this.server = createServer((req, res) => void this.receive(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** Answers one request whose body has been read. */
  protected abstract handle(req: IncomingMessage, body: Buffer, res: ServerResponse): Promise<void>;

  /** The first queued fault for `operation` (or for any), taken off the queue. */
  protected takeFault(operation?: string): Fault | undefined {
    const i = this.faults.findIndex((f) => !f.operation || f.operation === operation);
    return i < 0 ? undefined : this.faults.splice(i, 1)[0].fault;
  }

  /** Never answers `res`; counts it in `aborted` once the client gives up. */
  protected hold(res: ServerResponse): void {
    res.on('close', () => this.aborted++);
  }

  private async receive(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    await this.handle(req, Buffer.concat(chunks), res);
  }
}
