/**
 * A local Amazon Rekognition for tests: the JSON 1.1 protocol the SDK speaks (`POST /`,
 * `Content-Type: application/x-amz-json-1.1`, `X-Amz-Target: RekognitionService.<Operation>`) for
 * `DetectFaces`, `DetectLabels` and `DetectModerationLabels` with inline `Image.Bytes`, answering in
 * the response shapes of the API reference, and with its error responses (`{"__type": …, "Message": …}`
 * plus `x-amzn-ErrorType`, the statuses Rekognition uses).
 *
 * What it finds is what the test put in the scene (faces, labels, moderation labels as fractions and
 * percentages), so results are deterministic; it decodes the image it is sent (sharp) and refuses what
 * Rekognition refuses (undecodable → `InvalidImageFormatException`, > 5 MB → `ImageTooLargeException`),
 * and applies `MinConfidence`/`MaxLabels` the way the service does. Faults are queued per test.
 *
 * Binds 127.0.0.1 on a random port. SigV4 is checked for presence and shape, not recomputed (the SDK's
 * signer is the well-tested part; what the test must prove is that the adapter's requests are signed).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { decodeImage, ScriptedFake, type DecodedImage } from './scripted-fake';

/** One thing in the picture, in the units Rekognition reports (box fractions, confidence in percent). */
export interface FakeFace {
  box: { left: number; top: number; width: number; height: number };
  confidence: number;
}
export interface FakeLabel {
  name: string;
  confidence: number;
}
export interface FakeModerationLabel {
  name: string;
  parentName?: string;
  confidence: number;
}

/** What the fake "sees" in every image (or computes from the decoded size). */
export interface RekognitionScene {
  faces?: FakeFace[];
  labels?: FakeLabel[];
  moderation?: FakeModerationLabel[];
}

/** A request as the fake received it. */
export interface RekognitionRequest {
  operation: string;
  headers: IncomingMessage['headers'];
  body: Record<string, unknown>;
  /** The decoded inline image, when it decoded. */
  image?: DecodedImage;
}

/** An injected failure for the next matching request. */
export type RekognitionFault =
  | { kind: 'error'; type: string; status: number; message?: string }
  | { kind: 'malformed' }
  /** Never answers; the request is held until the client gives up (abort tests). */
  | { kind: 'hang' };

/** Rekognition's throttling answers, as the service sends them. */
export const THROTTLING: RekognitionFault = { kind: 'error', type: 'ThrottlingException', status: 400, message: 'Rate exceeded' };
export const PROVISIONED_THROUGHPUT: RekognitionFault = {
  kind: 'error',
  type: 'ProvisionedThroughputExceededException',
  status: 400,
  message: 'Provisioned rate exceeded',
};
export const INTERNAL_SERVER_ERROR: RekognitionFault = { kind: 'error', type: 'InternalServerError', status: 500, message: 'Internal server error' };

const OPERATIONS = new Set(['DetectFaces', 'DetectLabels', 'DetectModerationLabels']);
const MAX_IMAGE_BYTES = 5 * 1024 * 1024;

export class RekognitionFake extends ScriptedFake<RekognitionScene, RekognitionRequest, RekognitionFault> {
  constructor() {
    super(() => ({}));
  }

  protected async handle(req: IncomingMessage, raw: Buffer, res: ServerResponse): Promise<void> {
    const target = String(req.headers['x-amz-target'] ?? '');
    const operation = target.startsWith('RekognitionService.') ? target.slice('RekognitionService.'.length) : '';
    if (req.method !== 'POST' || req.url !== '/' || !OPERATIONS.has(operation)) {
      return error(res, 400, 'UnknownOperationException', `unsupported ${req.method} ${req.url} ${target}`);
    }
    if (req.headers['content-type'] !== 'application/x-amz-json-1.1') return error(res, 400, 'SerializationException', 'expected application/x-amz-json-1.1');
    if (
      !/^AWS4-HMAC-SHA256 Credential=[^/]+\/\d{8}\/[a-z0-9-]+\/rekognition\/aws4_request, SignedHeaders=[^,]+, Signature=[0-9a-f]{64}$/.test(
        String(req.headers.authorization),
      )
    ) {
      return error(res, 400, 'MissingAuthenticationTokenException', 'request is not signed with SigV4 for rekognition');
    }
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
    } catch {
      return error(res, 400, 'SerializationException', 'body is not JSON');
    }
    const request: RekognitionRequest = { operation, headers: req.headers, body };
    this.requests.push(request);

    const fault = this.takeFault(operation);
    if (fault) {
      if (fault.kind === 'hang') return this.hold(res);
      if (fault.kind === 'malformed') {
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' }).end('{"FaceDetails": [');
        return;
      }
      return error(res, fault.status, fault.type, fault.message ?? fault.type);
    }

    const b64 = (body.Image as { Bytes?: unknown } | undefined)?.Bytes;
    if (typeof b64 !== 'string' || b64 === '') return error(res, 400, 'InvalidParameterException', 'Image.Bytes is required (this fake reads no S3Object)');
    const bytes = Buffer.from(b64, 'base64');
    if (bytes.length > MAX_IMAGE_BYTES) return error(res, 400, 'ImageTooLargeException', 'Image size is too large.');
    const image = await decodeImage(bytes);
    if (image?.format !== 'jpeg' && image?.format !== 'png') return error(res, 400, 'InvalidImageFormatException', 'Request has invalid image format');
    request.image = image;
    ok(res, this.answer(operation, body));
  }

  private answer(operation: string, body: Record<string, unknown>): unknown {
    if (operation === 'DetectFaces') {
      return {
        FaceDetails: (this.scene.faces ?? []).map((f) => ({
          BoundingBox: { Width: f.box.width, Height: f.box.height, Left: f.box.left, Top: f.box.top },
          Confidence: f.confidence,
          // DEFAULT attributes: landmarks, pose, quality (values are placeholders; the adapter reads none).
          Landmarks: [{ Type: 'eyeLeft', X: f.box.left + f.box.width * 0.3, Y: f.box.top + f.box.height * 0.4 }],
          Pose: { Roll: 0, Yaw: 0, Pitch: 0 },
          Quality: { Brightness: 50, Sharpness: 50 },
        })),
      };
    }
    if (operation === 'DetectLabels') {
      const min = typeof body.MinConfidence === 'number' ? body.MinConfidence : 55;
      const max = typeof body.MaxLabels === 'number' ? body.MaxLabels : 1000;
      const labels = (this.scene.labels ?? [])
        .filter((l) => l.confidence >= min)
        .sort((a, b) => b.confidence - a.confidence)
        .slice(0, max);
      return {
        Labels: labels.map((l) => ({ Name: l.name, Confidence: l.confidence, Instances: [], Parents: [], Aliases: [], Categories: [] })),
        LabelModelVersion: '3.0',
      };
    }
    const min = typeof body.MinConfidence === 'number' ? body.MinConfidence : 50;
    return {
      ModerationLabels: (this.scene.moderation ?? [])
        .filter((l) => l.confidence >= min)
        .map((l) => ({ Name: l.name, ParentName: l.parentName ?? '', Confidence: l.confidence, TaxonomyLevel: l.parentName ? 2 : 1 })),
      ModerationModelVersion: '7.0',
    };
  }
}

function ok(res: ServerResponse, body: unknown): void {
  res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': 'fake-request' }).end(JSON.stringify(body));
}

function error(res: ServerResponse, status: number, type: string, message: string): void {
  res
    .writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-errortype': `${type}:`, 'x-amzn-requestid': 'fake-request' })
    .end(JSON.stringify({ __type: type, Message: message, Code: type }));
}
