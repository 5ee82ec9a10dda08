/**
 * Builds the `@google-cloud/pubsub` client. `PUBSUB_EMULATOR_HOST` (read by the library itself) points
 * it at a local emulator without credentials.
 */
import { PubSub } from '@google-cloud/pubsub';
import type { GcpSettings } from './gcp-settings';

/** One client per process: it owns the gRPC channel that warm invocations reuse. */
export function createPubSub(settings: GcpSettings): PubSub {
  return new PubSub(settings.projectId ? { projectId: settings.projectId } : {});
}
