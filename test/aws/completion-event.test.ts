/**
 * `parseCompletionEvent` on what AWS subscribers actually receive: the SNS HTTP(S) envelope, a Lambda
 * SNS event, an SQS-wrapped SNS notification (Lambda SQS event and SDK ReceiveMessage), and raw delivery.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EVENT_TYPES, parseCompletionEvent, type CompletionEvent } from '../../shared/events';

const fixture = (name: string): Record<string, unknown> => JSON.parse(readFileSync(join(__dirname, 'fixtures', name), 'utf8')) as Record<string, unknown>;

const expectEvent = (e: CompletionEvent): void => {
  if (e.type === EVENT_TYPES.deleted) throw new Error('expected a processed event');
  expect(e).toMatchObject({ specversion: '1.0', type: EVENT_TYPES.processed, subject: '6f1c2a4e-8b3d-4c5e-9f70-1a2b3c4d5e6f', source: '//pixelpipe/aws/test' });
  expect(e.traceparent).toMatch(/^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/);
  expect(e.data.variants.map((v) => [v.name, v.width, v.height])).toEqual([
    ['thumb', 200, 200],
    ['small', 480, 360],
  ]);
};

describe('parseCompletionEvent with AWS envelopes', () => {
  test('SNS notification envelope (HTTP/S subscription body)', () => {
    const env = fixture('sns-notification.json');
    expectEvent(parseCompletionEvent(env));
    expectEvent(parseCompletionEvent(JSON.stringify(env)));
    expect((env.MessageAttributes as Record<string, { Value: string }>).status.Value).toBe('processed');
  });

  test('Lambda event from an SNS subscription', () => {
    expectEvent(parseCompletionEvent(fixture('lambda-sns-event.json')));
  });

  test('Lambda event from an SQS queue subscribed to the topic (SNS envelope inside the SQS body)', () => {
    const event = fixture('lambda-sqs-sns-event.json');
    expectEvent(parseCompletionEvent(event));
    // A batch consumer parses record by record; a bare record is not recognised by shared/events.ts yet
    // (reported to the lead), so each one is passed as a one-record event.
    for (const record of event.Records as unknown[]) expectEvent(parseCompletionEvent({ Records: [record] }));
  });

  test('SDK ReceiveMessage output (SQS message with an SNS envelope body)', () => {
    const { Messages } = fixture('sqs-receive-message.json') as { Messages: unknown[] };
    expectEvent(parseCompletionEvent(Messages[0]));
  });

  test('raw message delivery to SQS (body is the CloudEvent itself)', () => {
    expectEvent(parseCompletionEvent(fixture('lambda-sqs-raw-event.json')));
  });

  test('a batch of several records must be parsed record by record', () => {
    const event = fixture('lambda-sqs-sns-event.json') as { Records: unknown[] };
    event.Records.push(event.Records[0]);
    expect(() => parseCompletionEvent(event)).toThrow(/one record/);
  });

  test('a tampered message fails validation', () => {
    const env = fixture('sns-notification.json') as { Message: string };
    const inner = JSON.parse(env.Message) as Record<string, unknown>;
    inner.specversion = '0.3';
    env.Message = JSON.stringify(inner);
    expect(() => parseCompletionEvent(env)).toThrow();
  });
});
