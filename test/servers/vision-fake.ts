/**
 * A local Google Cloud Vision for tests: `POST /v1/images:annotate` with inline `image.content`
 * (base64) and the FACE_DETECTION, LABEL_DETECTION and SAFE_SEARCH_DETECTION features, answering in
 * the REST reference's shapes (`responses[].faceAnnotations[].boundingPoly/fdBoundingPoly.vertices`
 * in pixels of the image sent, with zero coordinates omitted as the JSON mapping of proto3 does;
 * `labelAnnotations`; `safeSearchAnnotation` likelihood names), Google's error body
 * (`{"error": {"code", "message", "status"}}`), and per-image errors inside a 200.
 *
 * What it finds is the test's scene (boxes as fractions, turned into pixel vertices of the decoded
 * image), so answers are deterministic and only the requested features are answered. It requires a
 * bearer token and records the quota-project header. Binds 127.0.0.1 on a random port.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { decodeImage, ScriptedFake, type DecodedImage } from './scripted-fake';

export interface VisionFakeFace {
  /** The tight face box (fdBoundingPoly) as fractions; boundingPoly is answered 20 % larger, as Vision's is. */
  box: { left: number; top: number; width: number; height: number };
  confidence: number;
}

/** What the fake "sees" in every image. */
export interface VisionScene {
  faces?: VisionFakeFace[];
  labels?: { description: string; score: number }[];
  safeSearch?: Partial<Record<'adult' | 'spoof' | 'medical' | 'violence' | 'racy', string>>;
  /** Answer this per-image error (inside an HTTP 200) instead of annotations. */
  imageError?: { code: number; message: string };
}

/** A request as the fake received it. */
export interface VisionRequest {
  headers: IncomingMessage['headers'];
  features: { type: string; maxResults?: number }[];
  /** The decoded inline image. */
  image?: DecodedImage;
}

export type VisionFault =
  | { kind: 'http'; status: number; rpcStatus: string; message?: string }
  | { kind: 'malformed' }
  /** Never answers; held until the client gives up. */
  | { kind: 'hang' };

export const QUOTA_EXCEEDED: VisionFault = { kind: 'http', status: 429, rpcStatus: 'RESOURCE_EXHAUSTED', message: 'Quota exceeded for quota metric' };
export const UNAVAILABLE: VisionFault = { kind: 'http', status: 503, rpcStatus: 'UNAVAILABLE', message: 'The service is currently unavailable.' };

const FEATURES = new Set(['FACE_DETECTION', 'LABEL_DETECTION', 'SAFE_SEARCH_DETECTION']);

export class VisionFake extends ScriptedFake<VisionScene, VisionRequest, VisionFault> {
  constructor() {
    super(() => ({}));
  }

  protected async handle(req: IncomingMessage, raw: Buffer, res: ServerResponse): Promise<void> {
    if (req.method !== 'POST' || req.url !== '/v1/images:annotate') return googleError(res, 404, 'NOT_FOUND', `no route ${req.method} ${req.url}`);
    if (!/^Bearer \S+$/.test(String(req.headers.authorization))) {
      return googleError(res, 401, 'UNAUTHENTICATED', 'Request is missing required authentication credential.');
    }
    let body: { requests?: { image?: { content?: unknown }; features?: { type: string; maxResults?: number }[] }[] };
    try {
      body = JSON.parse(raw.toString('utf8')) as typeof body;
    } catch {
      return googleError(res, 400, 'INVALID_ARGUMENT', 'Invalid JSON payload received.');
    }
    const one = body.requests?.[0];
    const features = one?.features ?? [];
    const request: VisionRequest = { headers: req.headers, features };
    this.requests.push(request);
    if (body.requests?.length !== 1) return googleError(res, 400, 'INVALID_ARGUMENT', 'this fake expects exactly one AnnotateImageRequest');
    if (features.length === 0 || features.some((f) => !FEATURES.has(f.type)))
      return googleError(res, 400, 'INVALID_ARGUMENT', 'No feature specified or unknown feature.');

    const fault = this.takeFault();
    if (fault?.kind === 'hang') return this.hold(res);
    if (fault?.kind === 'malformed') {
      res.writeHead(200, { 'content-type': 'application/json; charset=UTF-8' }).end('{"responses": [{"faceAnnot');
      return;
    }
    if (fault?.kind === 'http') return googleError(res, fault.status, fault.rpcStatus, fault.message ?? fault.rpcStatus);

    // Bad image data is a per-image error inside a 200, as Vision answers it.
    const content = one?.image?.content;
    if (typeof content !== 'string' || content === '') return answer(res, { error: { code: 3, message: 'Bad image data.' } });
    request.image = await decodeImage(Buffer.from(content, 'base64'));
    if (!request.image) return answer(res, { error: { code: 3, message: 'Bad image data.' } });
    const { width, height } = request.image;
    if (this.scene.imageError) return answer(res, { error: this.scene.imageError });

    const out: Record<string, unknown> = {};
    for (const f of features) {
      if (f.type === 'FACE_DETECTION') {
        const faces = (this.scene.faces ?? []).slice(0, f.maxResults ?? 10);
        if (faces.length) {
          out.faceAnnotations = faces.map((face) => ({
            boundingPoly: { vertices: poly(grow(face.box, 0.2), width, height) },
            fdBoundingPoly: { vertices: poly(face.box, width, height) },
            detectionConfidence: face.confidence,
            landmarkingConfidence: 0.5,
            joyLikelihood: 'VERY_UNLIKELY',
          }));
        }
      } else if (f.type === 'LABEL_DETECTION') {
        const labels = (this.scene.labels ?? []).slice(0, f.maxResults ?? 10);
        if (labels.length)
          out.labelAnnotations = labels.map((l, i) => ({ mid: `/m/fake${i}`, description: l.description, score: l.score, topicality: l.score }));
      } else {
        out.safeSearchAnnotation = {
          adult: 'VERY_UNLIKELY',
          spoof: 'VERY_UNLIKELY',
          medical: 'VERY_UNLIKELY',
          violence: 'VERY_UNLIKELY',
          racy: 'VERY_UNLIKELY',
          ...this.scene.safeSearch,
        };
      }
    }
    answer(res, out);
  }
}

function grow(b: VisionFakeFace['box'], by: number): VisionFakeFace['box'] {
  return { left: b.left - (b.width * by) / 2, top: b.top - (b.height * by) / 2, width: b.width * (1 + by), height: b.height * (1 + by) };
}

/** Four vertices in pixels, clockwise from top-left; Vision drops zero coordinates (proto3 JSON) and may reach past the frame. */
function poly(b: VisionFakeFace['box'], width: number, height: number): { x?: number; y?: number }[] {
  const l = Math.round(b.left * width);
  const t = Math.round(b.top * height);
  const r = Math.round((b.left + b.width) * width);
  const btm = Math.round((b.top + b.height) * height);
  return [
    [l, t],
    [r, t],
    [r, btm],
    [l, btm],
  ].map(([x, y]) => ({ ...(x !== 0 ? { x } : {}), ...(y !== 0 ? { y } : {}) }));
}

function answer(res: ServerResponse, one: unknown): void {
  res.writeHead(200, { 'content-type': 'application/json; charset=UTF-8' }).end(JSON.stringify({ responses: [one] }));
}

function googleError(res: ServerResponse, code: number, status: string, message: string): void {
  res.writeHead(code, { 'content-type': 'application/json; charset=UTF-8' }).end(JSON.stringify({ error: { code, message, status } }));
}
