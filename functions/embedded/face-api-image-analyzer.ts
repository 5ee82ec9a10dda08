/**
 * The embedded {@link ImageAnalyzer}: face detection with `@vladmandic/face-api` on TensorFlow.js's
 * WebAssembly SIMD backend. The model weights and the `.wasm` binaries are files of npm packages, read
 * from disk: nothing is downloaded at install or run time, and no native TensorFlow is needed.
 *
 * It lives outside `shared/` because it loads a heavy runtime (≈ 2.4 MB of minified JavaScript, a 0.4 MB
 * wasm module and the weights); the runtime (`face-api-runtime.ts`) is loaded on the first `analyze`, so a
 * cold start pays nothing for it.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { AnalysisKind, AnalysisPixels, AnalysisResult, CallOptions, DetectedFace, ImageAnalyzer } from '../../shared/ports';
import { TransientError } from '../../shared/errors';

/** Which face-api detector to run, chosen by measurement (see `DEFAULT_FACE_DETECTOR`). */
export type FaceDetectorSpec =
  | {
      model: 'tiny';
      /** Network input size: a multiple of 32; larger finds smaller faces and costs about quadratically more. */
      inputSize: number;
      minScore: number;
    }
  | { model: 'ssd'; minScore: number };

/**
 * TinyFaceDetector at input size 448 with a 0.4 threshold, chosen by measurement (`npm run bench`, section
 * "Face analysis": ≤ 640 px rungs of the 13 reference photos in `samples/`, one core). It found all 24
 * reference faces for ≈ 100–130 ms CPU per image (≈ 15 % of the default 12 MP render); its one false positive
 * is a dog's face in `portrait-exif6.jpg`, which a subject crop keeps anyway. At 0.5 it found 22 (none
 * false); input size 512 found 23 for ≈ 20 % more time; 416 found 21 plus a false positive. SsdMobilenetv1
 * found all 24 but took ≈ 4× as long (≈ 50 % of the render, past the 20 % budget) and took both dogs for
 * faces. Thirteen photos are a small sample: the bench re-measures the alternatives on every run.
 */
export const DEFAULT_FACE_DETECTOR: FaceDetectorSpec = { model: 'tiny', inputSize: 448, minScore: 0.4 };

export interface FaceApiAnalyzerOptions {
  /** Directory holding face-api's `*-weights_manifest.json` and `.bin` files. */
  modelDir: string;
  /** Directory holding `tfjs-backend-wasm-simd.wasm` (and its siblings). */
  wasmDir: string;
  detector?: FaceDetectorSpec;
  /** Boxes beyond this many (lowest scores) are dropped; a crowd does not need every face to crop well. */
  maxFaces?: number;
  /**
   * `PIXELPIPE_FACE_DESCRIPTORS=true`: each face also gets its 128-d FaceNet-style descriptor from
   * face-api's `faceRecognitionNet`, on a crop aligned by 68 landmarks (`landmarks`, default
   * {@link DEFAULT_DESCRIPTOR_LANDMARKS}). Those two nets are loaded on the first image only when this is set.
   */
  descriptors?: boolean | { landmarks: DescriptorLandmarks };
}

/** Which 68-point landmark net aligns faces for the recognition net. */
export type DescriptorLandmarks = 'tiny' | 'full';

/**
 * The full 68-point landmark net (357 KB, against the tiny net's 77 KB), chosen by measurement
 * (`node scripts/ts.mjs scripts/bench/face-descriptors.ts`, 8 sample photos, 24 faces, one core): it costs
 * ≈ 3 ms more per face (44 against 41 ms CPU for landmarks + descriptor) and separates people better: the
 * closest pair of different faces was 0.49 apart against 0.43 with the tiny net, and 17 rather than 19 of
 * 276 different-face pairs fell under face-api's customary 0.6 match threshold. The same person (a portrait
 * against its mirrored, rescaled copy) came out at 0.19–0.20 with either.
 */
export const DEFAULT_DESCRIPTOR_LANDMARKS: DescriptorLandmarks = 'full';

/** Length of a face descriptor. */
export const FACE_DESCRIPTOR_LENGTH = 128;

/** What loading the runtime found, for logs and the bench. */
export interface FaceApiRuntimeInfo {
  backend: string;
  simd: boolean;
  tfjs: string;
  faceApi: string;
  /** Time to load the runtime and the detector's weights (0 when they were already loaded). */
  loadMs: number;
}

type FaceApi = typeof import('@vladmandic/face-api');
type Tfjs = typeof import('@tensorflow/tfjs');
/** What `face-api-runtime.ts` exports. */
type RuntimeModule = typeof import('./face-api-runtime');
interface Runtime {
  faceapi: FaceApi;
  tf: Tfjs;
  simd: boolean;
}

/**
 * Where the assets are: beside a bundle when `npm run build` copied them there (`<bundle>/face-api/`),
 * else in the installed npm packages.
 */
export function faceApiAssetDirs(bundleDir: string | undefined, exists: (path: string) => boolean): Pick<FaceApiAnalyzerOptions, 'modelDir' | 'wasmDir'> {
  if (bundleDir !== undefined && exists(join(bundleDir, 'face-api', 'model'))) {
    return { modelDir: join(bundleDir, 'face-api', 'model'), wasmDir: join(bundleDir, 'face-api', 'wasm') };
  }
  // Resolved lazily so a bundle that ships the assets never needs the packages installed.
  const pkgDir = (name: string): string => join(require.resolve(`${name}/package.json`), '..');
  return { modelDir: join(pkgDir('@vladmandic/face-api'), 'model'), wasmDir: join(pkgDir('@tensorflow/tfjs-backend-wasm'), 'dist') };
}

// TensorFlow.js keeps one engine per process, so the backend is initialised once whatever the number of analyzers.
let runtime: Promise<Runtime> | undefined;

async function loadRuntime(wasmDir: string): Promise<Runtime> {
  // A separate file in built bundles (scripts/lib/face-api-assets.cjs), inlined but evaluated lazily elsewhere.
  const { tf, wasm, faceapi }: RuntimeModule = await import('./face-api-runtime');
  // Threads are off in Node anyway (tfjs issue 3830); saying so keeps a future tfjs from spawning workers on a 1-vCPU function.
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  wasm.setWasmPaths(wasmDir.endsWith('/') ? wasmDir : `${wasmDir}/`);
  const ok = await tf.setBackend('wasm');
  await tf.ready();
  const backend = tf.getBackend();
  const simd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) === true;
  // tfjs falls back to its pure-JavaScript backend, 20–25× slower, without an error: refuse to run that way.
  if (!ok || backend !== 'wasm') throw new Error(`face-api: the TensorFlow.js wasm backend did not start from ${wasmDir} (active backend: ${backend})`);
  if (!simd) throw new Error('face-api: this runtime has no WebAssembly SIMD; the non-SIMD backend is several times slower');
  return { faceapi, tf, simd };
}

function describe(spec: FaceDetectorSpec): string {
  return spec.model === 'tiny' ? `face-api/tiny_face_detector@${spec.inputSize}` : 'face-api/ssd_mobilenetv1';
}

/** Interleaved RGB, the layout face-api's tensors expect; alpha is dropped and grey is replicated. */
function toRgb(pixels: AnalysisPixels): Uint8Array {
  const { data, width, height, channels } = pixels;
  const n = width * height;
  if (data.length < n * channels) throw new RangeError(`pixels: ${data.length} bytes for ${width}×${height}×${channels}`);
  if (channels === 3) return data.subarray(0, n * 3);
  const rgb = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const s = i * channels;
    if (channels >= 3) {
      rgb[i * 3] = data[s];
      rgb[i * 3 + 1] = data[s + 1];
      rgb[i * 3 + 2] = data[s + 2];
    } else {
      rgb[i * 3] = rgb[i * 3 + 1] = rgb[i * 3 + 2] = data[s];
    }
  }
  return rgb;
}

function clamp01(v: number): number {
  return Math.min(1, Math.max(0, v));
}

/**
 * Face boxes (and, when configured, descriptors) from models shipped in an npm package; labels and
 * moderation are reported as unavailable.
 */
export class FaceApiImageAnalyzer implements ImageAnalyzer {
  readonly supports: readonly AnalysisKind[] = ['faces'];
  readonly name: string;
  private readonly detector: FaceDetectorSpec;
  private readonly maxFaces: number;
  private readonly landmarks: DescriptorLandmarks | undefined;
  private weights: Promise<number> | undefined;
  private lastLoadMs = 0;

  constructor(private readonly options: FaceApiAnalyzerOptions) {
    this.detector = options.detector ?? DEFAULT_FACE_DETECTOR;
    if (this.detector.model === 'tiny' && (this.detector.inputSize % 32 !== 0 || this.detector.inputSize < 128)) {
      throw new RangeError(`face-api: tiny detector inputSize must be a multiple of 32 and ≥ 128, got ${this.detector.inputSize}`);
    }
    this.maxFaces = options.maxFaces ?? 50;
    const d = options.descriptors;
    this.landmarks = d === true ? DEFAULT_DESCRIPTOR_LANDMARKS : d ? d.landmarks : undefined;
    this.name = describe(this.detector) + (this.landmarks ? `+face_recognition(landmark_68${this.landmarks === 'tiny' ? '_tiny' : ''})` : '');
  }

  /**
   * Loads the runtime and this detector's weights (once; later calls return at once). `analyze` calls
   * it; call it yourself to move the cost off the first image.
   */
  async load(): Promise<FaceApiRuntimeInfo> {
    const t0 = performance.now();
    const { faceapi, tf, simd } = await this.ready();
    const info = { backend: tf.getBackend(), simd, tfjs: tf.version_core, faceApi: faceapi.version, loadMs: performance.now() - t0 };
    this.lastLoadMs = info.loadMs;
    return info;
  }

  private async ready(): Promise<Runtime> {
    // A failed load is forgotten, so a later image retries it instead of failing forever on a transient cause.
    runtime ??= loadRuntime(this.options.wasmDir).catch((err: unknown) => {
      runtime = undefined;
      throw err;
    });
    const loaded = await runtime;
    this.weights ??= this.loadWeights(loaded.faceapi).catch((err: unknown) => {
      this.weights = undefined;
      throw err;
    });
    await this.weights;
    return loaded;
  }

  private async loadWeights(faceapi: FaceApi): Promise<number> {
    const t0 = performance.now();
    const net = this.detector.model === 'tiny' ? faceapi.nets.tinyFaceDetector : faceapi.nets.ssdMobilenetv1;
    if (!net.isLoaded) await net.loadFromDisk(this.options.modelDir);
    // Only with descriptors on: the recognition net alone is 6.4 MB of weights to read and upload to wasm.
    if (this.landmarks) {
      const landmarkNet = this.landmarks === 'tiny' ? faceapi.nets.faceLandmark68TinyNet : faceapi.nets.faceLandmark68Net;
      if (!landmarkNet.isLoaded) await landmarkNet.loadFromDisk(this.options.modelDir);
      if (!faceapi.nets.faceRecognitionNet.isLoaded) await faceapi.nets.faceRecognitionNet.loadFromDisk(this.options.modelDir);
    }
    return performance.now() - t0;
  }

  async analyze(pixels: AnalysisPixels, analyses: readonly AnalysisKind[], options: CallOptions = {}): Promise<AnalysisResult> {
    const t0 = performance.now();
    const unavailable = analyses.filter((a) => !this.supports.includes(a));
    const result: AnalysisResult = { unavailable, analyzer: this.name, ms: 0 };
    if (analyses.includes('moderation')) result.moderation = { verdict: 'unavailable', categories: [] };
    if (analyses.includes('faces')) {
      this.checkTime(options);
      const rt = await this.ready();
      // Inference is synchronous WebAssembly that cannot be interrupted: the last chance to honour the deadline is here.
      this.checkTime(options);
      result.faces = await this.detect(rt, pixels);
    }
    result.ms = Math.round(performance.now() - t0);
    return result;
  }

  /** Load time of the most recent `load()` (≈ 0 once warm). */
  get loadMs(): number {
    return this.lastLoadMs;
  }

  private checkTime(options: CallOptions): void {
    if (options.signal?.aborted) throw new TransientError('deadline_exceeded', 'face analysis cancelled', options.signal.reason);
    if (options.deadline !== undefined && Date.now() >= options.deadline) throw new TransientError('deadline_exceeded', 'no time left for face analysis');
  }

  private async detect({ faceapi }: Runtime, pixels: AnalysisPixels): Promise<DetectedFace[]> {
    const { width, height } = pixels;
    const input = faceapi.tf.tensor3d(toRgb(pixels), [height, width, 3], 'int32');
    try {
      const d = this.detector;
      const opts =
        d.model === 'tiny'
          ? new faceapi.TinyFaceDetectorOptions({ inputSize: d.inputSize, scoreThreshold: d.minScore })
          : new faceapi.SsdMobilenetv1Options({ minConfidence: d.minScore, maxResults: this.maxFaces });
      const found = this.landmarks
        ? (
            await faceapi
              .detectAllFaces(input, opts)
              .withFaceLandmarks(this.landmarks === 'tiny')
              .withFaceDescriptors()
          ).map((r) => ({
            detection: r.detection,
            descriptor: r.descriptor,
          }))
        : (await faceapi.detectAllFaces(input, opts)).map((detection) => ({ detection, descriptor: undefined }));
      return found
        .map(({ detection: f, descriptor }): DetectedFace => {
          const b = f.relativeBox;
          const left = clamp01(b.x);
          const top = clamp01(b.y);
          return {
            box: { left, top, width: clamp01(b.x + b.width) - left, height: clamp01(b.y + b.height) - top },
            score: Math.round(f.score * 1000) / 1000,
            ...(descriptor ? { descriptor: Array.from(descriptor) } : {}),
          };
        })
        .filter((f) => f.box.width > 0 && f.box.height > 0)
        .sort((a, b) => b.score - a.score)
        .slice(0, this.maxFaces);
    } finally {
      input.dispose();
    }
  }
}

/**
 * The embedded analyzer as the functions build it once per cold start: assets beside the bundle
 * (`bundleDir`, normally the entry's `__dirname`) when `npm run build` put them there, else from the
 * installed packages. Nothing is loaded until the first image.
 */
export function createEmbeddedAnalyzer(bundleDir: string | undefined, options: Pick<FaceApiAnalyzerOptions, 'descriptors'> = {}): FaceApiImageAnalyzer {
  return new FaceApiImageAnalyzer({ ...faceApiAssetDirs(bundleDir, existsSync), ...options });
}
