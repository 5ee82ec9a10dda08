/** Small in-memory fakes for the remaining ports. */
import { createHash } from 'node:crypto';
import type { CallOptions, Clock, EventAttributes, EventPublisher, IdGenerator, SignUploadRequest, UploadTarget, UrlSigner } from '../ports';
import { cancelled } from '../resilience';

/** Rejects with the signal's retryable error if it already aborted: the fakes answer at once, so this is their only cancellation point. */
function notCancelled(signal: AbortSignal | undefined, what: string): Promise<void> {
  return signal?.aborted ? Promise.reject(cancelled(signal, what)) : Promise.resolve();
}

/** Records published messages; `failNext` simulates an unavailable broker; an aborted signal publishes nothing. */
export class MemoryEventPublisher implements EventPublisher {
  readonly messages: Array<{ id: string; body: string; attributes: EventAttributes }> = [];
  private failures: Error[] = [];
  private seq = 0;

  failNext(err: Error, times = 1): void {
    for (let i = 0; i < times; i++) this.failures.push(err);
  }

  async publish(body: string, attributes: EventAttributes, options: CallOptions = {}): Promise<string> {
    await notCancelled(options.signal, 'memory publish');
    const failure = this.failures.shift();
    if (failure) throw failure;
    const id = String(++this.seq);
    this.messages.push({ id, body, attributes: { ...attributes } });
    return id;
  }
}

/** A signer whose "signature" is a hash of what it signs: enough to prove what was pinned. */
export class FakeUrlSigner implements UrlSigner {
  readonly requests: SignUploadRequest[] = [];
  /** The call options each `signUpload` got, in order. */
  readonly uploadOptions: CallOptions[] = [];
  constructor(private readonly base = 'https://storage.test') {}

  async signUpload(r: SignUploadRequest, options: CallOptions = {}): Promise<UploadTarget> {
    await notCancelled(options.signal, 'fake sign upload');
    this.requests.push(r);
    this.uploadOptions.push(options);
    const sig = createHash('sha256').update(JSON.stringify(r)).digest('hex').slice(0, 16);
    return {
      method: 'PUT',
      url: `${this.base}/${r.bucket}/${encodeURIComponent(r.key)}?expires=${r.expiresInSeconds}&sig=${sig}`,
      headers: { 'content-type': r.contentType, 'x-goog-content-length-range': `${r.minBytes},${r.maxBytes}` },
    };
  }

  async signRead(bucket: string, key: string, expiresInSeconds: number, options: CallOptions = {}): Promise<string> {
    await notCancelled(options.signal, 'fake sign read');
    return `${this.base}/${bucket}/${encodeURIComponent(key)}?expires=${expiresInSeconds}`;
  }
}

/** A clock that only moves when told to. */
export class FixedClock implements Clock {
  constructor(private t = new Date('2026-01-01T00:00:00Z').getTime()) {}
  now(): Date {
    return new Date(this.t);
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

/** Predictable ids: `00000000-0000-4000-8000-000000000001`, …2, … */
export class SequentialIds implements IdGenerator {
  private n = 0;
  newId(): string {
    return `00000000-0000-4000-8000-${String(++this.n).padStart(12, '0')}`;
  }
}
