/**
 * A minimal Amazon SNS endpoint for tests: the Query API (`POST /`, form-encoded, XML answers) for
 * `CreateTopic` and `Publish`, fan-out to in-memory "SQS-subscribed" queues that receive exactly what
 * SNS delivers to SQS (a `{Type: 'Notification', Message, MessageAttributes, ...}` JSON body), with
 * optional subscription filter policies and raw delivery, plus fault injection.
 *
 * Why not an off-the-shelf emulator: LocalStack needs Docker, and the npm candidates
 * (serverless-offline-sns and friends) are serverless-offline plugins that pull an Express stack and
 * a plugin lifecycle just to answer one action. The SDK only needs Publish to be answered faithfully.
 *
 * Binds 127.0.0.1 on a random port. Signatures are checked for presence and shape, not recomputed.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export const ACCOUNT_ID = '000000000000';
const NS = 'http://sns.amazonaws.com/doc/2010-03-31/';

/** One message attribute as SNS keeps it. */
export interface SnsAttribute {
  DataType: string;
  StringValue?: string;
  BinaryValue?: string;
}

/** A message as the topic accepted it. */
export interface PublishedMessage {
  messageId: string;
  topicArn: string;
  message: string;
  subject?: string;
  attributes: Record<string, SnsAttribute>;
  timestamp: string;
}

/** What an SQS queue subscribed to the topic receives (SDK `ReceiveMessage` shape). */
export interface SqsMessage {
  MessageId: string;
  ReceiptHandle: string;
  MD5OfBody: string;
  Body: string;
}

/** Filter policy on message attributes (the subset of SNS's syntax that tests need). */
export type FilterPolicy = Record<string, Array<string | { prefix: string } | { 'anything-but': string | string[] } | { exists: boolean }>>;

/** An in-memory queue subscribed to a topic. */
export class MemoryQueue {
  readonly messages: SqsMessage[] = [];
  private read = 0;
  private waiters: Array<() => void> = [];

  constructor(
    readonly arn: string,
    readonly filterPolicy?: FilterPolicy,
    readonly raw = false,
  ) {}

  /** @internal */
  deliver(m: SqsMessage): void {
    this.messages.push(m);
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves with the next `count` unread messages; rejects after `timeoutMs` with what did arrive. */
  async receive(count: number, timeoutMs: number): Promise<SqsMessage[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.messages.length - this.read < count) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`expected ${count} message(s) on ${this.arn}, got ${this.messages.length - this.read} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    const out = this.messages.slice(this.read, this.read + count);
    this.read += out.length;
    return out;
  }

  /** A Lambda SQS event (`{Records: [{messageId, body, eventSource: 'aws:sqs', ...}]}`) for the given messages. */
  toLambdaEvent(messages: SqsMessage[], region = 'us-east-1'): { Records: Array<Record<string, unknown>> } {
    return {
      Records: messages.map((m) => ({
        messageId: m.MessageId,
        receiptHandle: m.ReceiptHandle,
        body: m.Body,
        attributes: {
          ApproximateReceiveCount: '1',
          SentTimestamp: String(Date.now()),
          SenderId: 'AIDAIT2UOQQY3AUEKVGXU',
          ApproximateFirstReceiveTimestamp: String(Date.now()),
        },
        messageAttributes: {},
        md5OfBody: m.MD5OfBody,
        eventSource: 'aws:sqs',
        eventSourceARN: this.arn,
        awsRegion: region,
      })),
    };
  }
}

/** A running local SNS endpoint. */
export interface LocalSns {
  /** `http://127.0.0.1:<port>`: pass as `endpoint` to `SNSClient`. */
  endpoint: string;
  region: string;
  /** Every accepted message, in order. */
  readonly published: PublishedMessage[];
  /** Number of HTTP requests received (retries included). */
  readonly requestCount: () => number;
  createTopic(name: string): string;
  subscribeQueue(topicArn: string, options?: { filterPolicy?: FilterPolicy; raw?: boolean }): MemoryQueue;
  /** The next `times` requests fail with this HTTP status and SNS error code. */
  failNext(status: number, code: string, times?: number): void;
  close(): Promise<void>;
}

/** Starts the endpoint on 127.0.0.1 and a random free port. */
export async function startLocalSns(options: { region?: string } = {}): Promise<LocalSns> {
  const region = options.region ?? 'us-east-1';
  const topics = new Map<string, MemoryQueue[]>();
  const published: PublishedMessage[] = [];
  const failures: Array<{ status: number; code: string }> = [];
  let requests = 0;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    requests++;
    const requestId = randomUUID();
    const reply = (status: number, xml: string): void => {
      res.writeHead(status, { 'content-type': 'text/xml', 'x-amzn-requestid': requestId });
      res.end(`<?xml version="1.0"?>\n${xml}`);
    };
    const fail = (status: number, code: string, message: string): void =>
      reply(
        status,
        `<ErrorResponse xmlns="${NS}"><Error><Type>${status >= 500 ? 'Receiver' : 'Sender'}</Type><Code>${esc(code)}</Code><Message>${esc(message)}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`,
      );
    const raw = await readBody(req);
    if (req.method !== 'POST' || req.url !== '/') return fail(400, 'InvalidAction', 'only POST / is supported');
    if (
      !/^AWS4-HMAC-SHA256 Credential=[^/]+\/\d{8}\/[a-z0-9-]+\/sns\/aws4_request, ?SignedHeaders=[^,]+, ?Signature=[0-9a-f]{64}$/.test(
        req.headers.authorization ?? '',
      )
    ) {
      return fail(403, 'IncompleteSignature', 'the request must be signed with SigV4 for service sns');
    }
    const injected = failures.shift();
    if (injected) return fail(injected.status, injected.code, 'injected failure');
    const p = new URLSearchParams(raw);
    switch (p.get('Action')) {
      case 'CreateTopic': {
        const arn = createTopic(p.get('Name') ?? '');
        return reply(
          200,
          `<CreateTopicResponse xmlns="${NS}"><CreateTopicResult><TopicArn>${esc(arn)}</TopicArn></CreateTopicResult><ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata></CreateTopicResponse>`,
        );
      }
      case 'Publish': {
        const topicArn = p.get('TopicArn') ?? '';
        const message = p.get('Message');
        if (!topics.has(topicArn)) return fail(404, 'NotFound', 'Topic does not exist');
        if (message === null || message === '') return fail(400, 'InvalidParameter', 'Invalid parameter: Message');
        if (Buffer.byteLength(message) > 256 * 1024) return fail(400, 'InvalidParameter', 'Invalid parameter: Message too long');
        const attributes = parseAttributes(p);
        if (typeof attributes === 'string') return fail(400, 'InvalidParameterValue', attributes);
        const m: PublishedMessage = {
          messageId: randomUUID(),
          topicArn,
          message,
          ...(p.get('Subject') ? { subject: p.get('Subject')! } : {}),
          attributes,
          timestamp: new Date().toISOString(),
        };
        published.push(m);
        for (const q of topics.get(topicArn)!) if (matches(q.filterPolicy, attributes)) q.deliver(toSqs(m, q.raw, region));
        return reply(
          200,
          `<PublishResponse xmlns="${NS}"><PublishResult><MessageId>${m.messageId}</MessageId></PublishResult><ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata></PublishResponse>`,
        );
      }
      default:
        return fail(400, 'InvalidAction', `unsupported action ${p.get('Action')}`);
    }
  };

  const createTopic = (name: string): string => {
    if (!/^[A-Za-z0-9_-]{1,256}$/.test(name)) throw new Error(`invalid topic name ${name}`);
    const arn = `arn:aws:sns:${region}:${ACCOUNT_ID}:${name}`;
    if (!topics.has(arn)) topics.set(arn, []);
    return arn;
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(err));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    region,
    published,
    requestCount: () => requests,
    createTopic,
    subscribeQueue(topicArn, opts = {}) {
      const subs = topics.get(topicArn);
      if (!subs) throw new Error(`no topic ${topicArn}`);
      const q = new MemoryQueue(`arn:aws:sqs:${region}:${ACCOUNT_ID}:q-${subs.length + 1}`, opts.filterPolicy, opts.raw);
      subs.push(q);
      return q;
    },
    failNext(status, code, times = 1) {
      for (let i = 0; i < times; i++) failures.push({ status, code });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** `MessageAttributes.entry.N.{Name,Value.DataType,Value.StringValue,Value.BinaryValue}` → map, or an error text. */
function parseAttributes(p: URLSearchParams): Record<string, SnsAttribute> | string {
  const out: Record<string, SnsAttribute> = {};
  for (let n = 1; p.has(`MessageAttributes.entry.${n}.Name`); n++) {
    const prefix = `MessageAttributes.entry.${n}`;
    const name = p.get(`${prefix}.Name`)!;
    const dataType = p.get(`${prefix}.Value.DataType`) ?? '';
    if (!/^(String|Number|Binary)(\..+)?$/.test(dataType)) return `The message attribute '${name}' has an invalid message attribute type`;
    const value: SnsAttribute = { DataType: dataType };
    const s = p.get(`${prefix}.Value.StringValue`);
    const b = p.get(`${prefix}.Value.BinaryValue`);
    if (s !== null) value.StringValue = s;
    if (b !== null) value.BinaryValue = b;
    if (!value.StringValue && !value.BinaryValue) return `The message attribute '${name}' must contain non-empty message attribute value`;
    out[name] = value;
  }
  if (Object.keys(out).length > 10) return 'Number of message attributes exceeds the limit of 10';
  return out;
}

function matches(policy: FilterPolicy | undefined, attributes: Record<string, SnsAttribute>): boolean {
  if (!policy) return true;
  return Object.entries(policy).every(([name, rules]) => {
    const v = attributes[name]?.StringValue;
    return rules.some((r) => {
      if (typeof r === 'string') return v === r;
      if ('exists' in r) return r.exists === (v !== undefined);
      if (v === undefined) return false;
      if ('prefix' in r) return v.startsWith(r.prefix);
      const not = r['anything-but'];
      return !(Array.isArray(not) ? not : [not]).includes(v);
    });
  });
}

function toSqs(m: PublishedMessage, raw: boolean, region: string): SqsMessage {
  const body = raw
    ? m.message
    : JSON.stringify({
        Type: 'Notification',
        MessageId: m.messageId,
        TopicArn: m.topicArn,
        ...(m.subject ? { Subject: m.subject } : {}),
        Message: m.message,
        Timestamp: m.timestamp,
        SignatureVersion: '1',
        Signature: createHash('sha256').update(m.messageId).digest('base64'),
        SigningCertURL: `https://sns.${region}.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem`,
        UnsubscribeURL: `https://sns.${region}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=${m.topicArn}:${randomUUID()}`,
        MessageAttributes: Object.fromEntries(Object.entries(m.attributes).map(([k, a]) => [k, { Type: a.DataType, Value: a.StringValue ?? a.BinaryValue }])),
      });
  return { MessageId: randomUUID(), ReceiptHandle: randomUUID(), MD5OfBody: createHash('md5').update(body).digest('hex'), Body: body };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
