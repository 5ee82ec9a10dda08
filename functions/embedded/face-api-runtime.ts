/**
 * The embedded analyzer's heavy runtime in one module: TensorFlow.js, its wasm backend and face-api
 * (≈ 2.4 MB minified). `npm run build` bundles it as a file of its own beside a function's bundle
 * (`face-api/runtime.js`, see `scripts/lib/face-api-assets.cjs`), so a cold start neither evaluates nor
 * even parses it; the analyzer requires it on first use.
 */
import * as tf from '@tensorflow/tfjs';
import * as wasm from '@tensorflow/tfjs-backend-wasm';
// face-api's node-wasm build requires the two packages above itself: these are the module instances it runs on.
import * as faceapi from '@vladmandic/face-api/dist/face-api.node-wasm.js';

export { tf, wasm, faceapi };
