/**
 * pixelpipe's public library surface: the event contract for subscribers, the config loader, the
 * ports and the use cases for people wiring their own adapters.
 */
export { loadConfig, parseVariants, parseFilter, DEFAULT_VARIANTS, ENV_NAMES, type PixelpipeConfig, type VariantSpec, type Filter } from './config';
export * from './errors';
export type * from './ports';
export { buildCompletionEvent, parseCompletionEvent, completionEventId, completionEventSchema, EVENT_TYPES, DATA_SCHEMA, type CompletionEvent } from './events';
export { manifestSchema, parseManifest, type Manifest, type VariantEntry } from './manifest';
export * from './keys';
export { requestUpload, type UploadResponse } from './usecases/request-upload';
export { createInvocation, callOptions, remainingMs, childInvocation, withInvocation, newTraceId, type Invocation } from './invocation';
export { processImage, type ObjectEvent, type ProcessOutcome } from './usecases/process-image';
export { notifyCompletion, type NotifyOutcome } from './usecases/notify-completion';
export { getImageStatus } from './usecases/get-image-status';
export { handleUploadRequest, UPLOAD_PATHS, type HttpRequest, type HttpResponse } from './http/upload-http';
export { createLogger } from './logger';
export { withRetry, CircuitBreaker, defaultPolicy, resilient } from './resilience';
