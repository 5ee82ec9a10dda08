/**
 * {@link EventPublisher} on Cloud Pub/Sub's REST API (`projects.topics.publish`).
 *
 * Why REST and not `@google-cloud/pubsub`: the notifier publishes one small message per invocation,
 * and the client library (gRPC, protobufs, batching) costs ~165–310 ms to load — more than the
 * notifier's whole cold-start budget. One HTTPS request per event also means nothing is left in a
 * batching queue when the platform freezes the instance after the handler returns.
 *
 * Retries, the per-attempt timeout and the circuit breaker come from `resilient()`, the one place
 * that decides how long a publish may take.
 */
import { ConfigError, PixelpipeError, TransientError } from '../../shared/errors';
import type { CallOptions, EventAttributes, EventPublisher } from '../../shared/ports';
import { cancelled, defaultPolicy, resilient, type ResiliencePolicy } from '../../shared/resilience';
import type { RequestAuthorizer } from './google-auth';
import { googleJson } from './google-http';
import { httpStatusOf } from './gcs-errors';

/** Options for {@link PubSubEventPublisher}. */
export interface PubSubEventPublisherOptions {
  /** API base URL: `https://pubsub.googleapis.com`, or `http://<PUBSUB_EMULATOR_HOST>`. */
  endpoint?: string;
  policy?: ResiliencePolicy;
}

// Statuses that describe the request or the deployment (missing topic, permission, bad message):
// retrying cannot fix them. 401 is included because tokens are refreshed minutes before they expire.
const PERMANENT_STATUS = new Set([400, 401, 403, 404]);

const TOPIC_PATH = /^projects\/[^/]+\/topics\/[^/]+$/;

/**
 * The topic's full resource name from `PIXELPIPE_TOPIC`, which may be a bare name (then the project
 * is needed) or `projects/<project>/topics/<name>`.
 */
export function pubsubTopicPath(topic: string, projectId: string | undefined): string {
  if (TOPIC_PATH.test(topic)) return topic;
  if (!/^[A-Za-z][A-Za-z0-9._~%+-]{2,254}$/.test(topic))
    throw new ConfigError('PIXELPIPE_TOPIC', 'not a Pub/Sub topic name or projects/<project>/topics/<name>');
  if (!projectId)
    throw new ConfigError('GOOGLE_CLOUD_PROJECT', `needed to address the topic "${topic}" (or set PIXELPIPE_TOPIC to projects/<project>/topics/${topic})`);
  return `projects/${projectId}/topics/${topic}`;
}

/** Publishes completion events to one Pub/Sub topic. */
export class PubSubEventPublisher implements EventPublisher {
  private readonly url: string;
  private readonly policy: ResiliencePolicy;

  constructor(
    private readonly auth: RequestAuthorizer,
    /** `projects/<project>/topics/<name>` (see {@link pubsubTopicPath}). */
    readonly topic: string,
    options: PubSubEventPublisherOptions = {},
  ) {
    if (!TOPIC_PATH.test(topic)) throw new RangeError(`expected projects/<project>/topics/<name>, got "${topic}"`);
    this.url = `${(options.endpoint ?? 'https://pubsub.googleapis.com').replace(/\/$/, '')}/v1/${topic}:publish`;
    this.policy = options.policy ?? defaultPolicy('pubsub', { timeoutMs: 10_000 });
  }

  async publish(body: string, attributes: EventAttributes, options: CallOptions = {}): Promise<string> {
    const payload = JSON.stringify({ messages: [{ data: Buffer.from(body, 'utf8').toString('base64'), attributes: { ...attributes } }] });
    return resilient(
      this.policy,
      `publish to ${this.topic}`,
      async (signal) => {
        try {
          const r = await googleJson<{ messageIds?: unknown }>(this.url, {
            method: 'POST',
            headers: { ...(await this.auth.headers()), 'content-type': 'application/json' },
            body: payload,
            timeoutMs: this.policy.timeoutMs,
            signal,
          });
          const id: unknown = Array.isArray(r.messageIds) ? (r.messageIds as unknown[])[0] : undefined;
          if (typeof id !== 'string' || !id) throw new Error('the publish response has no message id');
          return id;
        } catch (err) {
          // Our own cancellation: the attempt's timeout or the invocation's end, as `resilient` reports it.
          if (signal.aborted) throw cancelled(signal, `publish to ${this.topic}`);
          // Already classified, e.g. by the credentials: missing ones (ConfigError) must not become a retry.
          if (err instanceof PixelpipeError) throw err;
          const message = err instanceof Error ? err.message : String(err);
          const status = httpStatusOf(err);
          if (status !== undefined && PERMANENT_STATUS.has(status)) {
            throw new PixelpipeError('internal', `publish to ${this.topic} failed: ${message}`, { retryable: false, cause: err });
          }
          throw new TransientError('publish_failed', `publish to ${this.topic} failed: ${message}`, err);
        }
      },
      options,
    ).catch((err: unknown) => {
      // A publish cut by its attempt timeout is, for the caller, a broker that did not answer.
      throw err instanceof PixelpipeError && err.code === 'storage_timeout' ? new TransientError('publish_failed', err.message, err) : err;
    });
  }
}
