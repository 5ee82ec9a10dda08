/**
 * {@link EventPublisher} on Amazon SNS. The CloudEvent is the message body, unchanged; the filter
 * attributes (`type`, `imageId`, `owner`, `status`) become SNS message attributes, so subscriptions
 * can use filter policies such as `{"status": ["failed"]}` without parsing the body.
 */
import { PublishCommand, type MessageAttributeValue, type SNSClient } from '@aws-sdk/client-sns';
import { PixelpipeError, TransientError } from '../../shared/errors';
import type { CallOptions, EventAttributes, EventPublisher } from '../../shared/ports';
import { cancelled, defaultPolicy, resilient, type ResiliencePolicy } from '../../shared/resilience';
import { mapAwsError } from './sdk-errors';

/** Options for {@link SnsEventPublisher}. */
export interface SnsEventPublisherOptions {
  policy?: ResiliencePolicy;
}

/** SNS allows at most 10 message attributes per message. */
const MAX_ATTRIBUTES = 10;

/** Publishes to one topic, given by ARN. Takes a configured `SNSClient` (use `maxAttempts: 1`, see S3ObjectStore). */
export class SnsEventPublisher implements EventPublisher {
  private readonly policy: ResiliencePolicy;

  constructor(
    private readonly client: SNSClient,
    private readonly topicArn: string,
    options: SnsEventPublisherOptions = {},
  ) {
    if (!/^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$/.test(topicArn)) {
      throw new PixelpipeError('invalid_config', `PIXELPIPE_TOPIC must be an SNS topic ARN on AWS (got ${JSON.stringify(topicArn)})`, { retryable: false });
    }
    this.policy = options.policy ?? defaultPolicy('sns');
  }

  async publish(body: string, attributes: EventAttributes, options: CallOptions = {}): Promise<string> {
    const MessageAttributes: Record<string, MessageAttributeValue> = {};
    for (const [name, value] of Object.entries(attributes)) {
      // SNS rejects empty attribute values; an absent attribute filters the same way.
      if (value === '') continue;
      MessageAttributes[name] = { DataType: 'String', StringValue: value };
    }
    if (Object.keys(MessageAttributes).length > MAX_ATTRIBUTES) {
      throw new PixelpipeError('internal', `SNS allows at most ${MAX_ATTRIBUTES} message attributes`, { retryable: false });
    }
    return resilient(
      this.policy,
      'sns publish',
      async (signal) => {
        try {
          // The attempt's signal destroys the HTTP request on a timeout or when the caller cancels.
          const res = await this.client.send(new PublishCommand({ TopicArn: this.topicArn, Message: body, MessageAttributes }), { abortSignal: signal });
          if (!res.MessageId) throw new TransientError('publish_failed', 'SNS returned no message id');
          return res.MessageId;
        } catch (err) {
          if (signal.aborted) throw cancelled(signal, 'sns publish');
          const mapped = mapAwsError(err, 'sns publish', 'publish_failed');
          // Timeouts are reported as storage_timeout by the shared mapper; for a broker it is a failed publish.
          throw mapped.retryable && mapped.code === 'storage_timeout' ? new TransientError('publish_failed', mapped.message, err) : mapped;
        }
      },
      options,
    ).catch((err: unknown) => {
      // A publish cut by its attempt timeout is, for the caller, a broker that did not answer.
      throw err instanceof PixelpipeError && err.code === 'storage_timeout' ? new TransientError('publish_failed', err.message, err) : err;
    });
  }
}
