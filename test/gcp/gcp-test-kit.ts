/**
 * Shared plumbing for the GCP integration tests: a throw-away service account key, the environment
 * the function entries read at module load, serving a registered function with functions-framework
 * on 127.0.0.1, and sending CloudEvents over HTTP in structured or binary mode.
 */
import { randomUUID, type KeyObject } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fakeServiceAccount } from '../support/google-fake';

export interface TestServiceAccount {
  email: string;
  publicKey: KeyObject;
  /** A key file usable as `GOOGLE_APPLICATION_CREDENTIALS` (signing happens locally with it). */
  keyFile: string;
}

/** Creates an RSA key pair and writes it as a service-account key file in a temp directory. */
export function makeServiceAccount(email = 'pixelpipe-fn@pixelpipe-test.iam.gserviceaccount.com'): TestServiceAccount {
  const sa = fakeServiceAccount(email);
  const keyFile = join(mkdtempSync(join(tmpdir(), 'pixelpipe-sa-')), 'key.json');
  writeFileSync(keyFile, JSON.stringify(sa.keyJson), { mode: 0o600 });
  return { email, publicKey: sa.publicKey, keyFile };
}

/**
 * Environment for the function entries. The metadata server is switched off and pointed at a closed
 * loopback port, so no client library ever probes a non-loopback address.
 */
export function functionEnv(opts: { storageUrl: string; pubsubHost?: string; keyFile: string; extra?: Record<string, string> }): Record<string, string> {
  return {
    METADATA_SERVER_DETECTION: 'none',
    GCE_METADATA_HOST: '127.0.0.1:9',
    GCE_METADATA_IP: '127.0.0.1:9',
    STORAGE_EMULATOR_HOST: opts.storageUrl,
    ...(opts.pubsubHost ? { PUBSUB_EMULATOR_HOST: opts.pubsubHost } : {}),
    GOOGLE_APPLICATION_CREDENTIALS: opts.keyFile,
    GOOGLE_CLOUD_PROJECT: 'pixelpipe-test',
    PIXELPIPE_ORIGINALS_BUCKET: 'pixelpipe-originals',
    PIXELPIPE_VARIANTS_BUCKET: 'pixelpipe-variants',
    PIXELPIPE_TOPIC: 'pixelpipe-events',
    PIXELPIPE_AUTH_MODE: 'anonymous',
    PIXELPIPE_LOG_LEVEL: 'error',
    PIXELPIPE_WEBP_EFFORT: '0',
    ...(opts.extra ?? {}),
  };
}

export { serve, type ServedFunction } from '../support/serve';

/**
 * Sets environment variables for the rest of a test file and returns the function that restores
 * them (call it in `afterAll`: jest reuses worker processes across files). They stay set while the
 * file runs because client libraries read some of them lazily (credentials, metadata detection).
 */
export function applyEnv(env: Record<string, string>): () => void {
  const saved: Record<string, string | undefined> = {};
  for (const k of Object.keys(env)) saved[k] = process.env[k];
  Object.assign(process.env, env);
  return () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
}

/**
 * Loads a function entry (which reads its configuration at module load) and returns its
 * functions-framework test server. `isolated` uses a fresh module registry, so the same entry can be
 * loaded again with another configuration (set the differing variables with `applyEnv` first).
 */
export function loadFunction(entry: string, name: string, isolated = false): Server {
  let server: Server | undefined;
  const load = () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require(entry);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { getTestServer } = require('@google-cloud/functions-framework/testing') as { getTestServer: (n: string) => Server };
    server = getTestServer(name);
  };
  if (isolated) jest.isolateModules(load);
  else load();
  return server!;
}

export interface CloudEventInput {
  id?: string;
  type: string;
  source: string;
  subject?: string;
  time?: string;
  data: unknown;
}

/** POSTs a CloudEvent in structured (`application/cloudevents+json`) or binary (`ce-*` headers) mode. */
export async function sendCloudEvent(url: string, event: CloudEventInput, mode: 'structured' | 'binary'): Promise<{ status: number; body: string }> {
  const id = event.id ?? randomUUID();
  const time = event.time ?? new Date().toISOString();
  const init: RequestInit =
    mode === 'structured'
      ? {
          method: 'POST',
          headers: { 'content-type': 'application/cloudevents+json; charset=utf-8' },
          body: JSON.stringify({
            specversion: '1.0',
            id,
            type: event.type,
            source: event.source,
            ...(event.subject ? { subject: event.subject } : {}),
            time,
            datacontenttype: 'application/json',
            data: event.data,
          }),
        }
      : {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'ce-specversion': '1.0',
            'ce-id': id,
            'ce-type': event.type,
            'ce-source': event.source,
            ...(event.subject ? { 'ce-subject': event.subject } : {}),
            'ce-time': time,
          },
          body: JSON.stringify(event.data),
        };
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(60_000) });
  return { status: res.status, body: await res.text() };
}

/** The Pub/Sub `messagePublished` data a GCS notification produces for an object resource. */
export function gcsNotificationData(object: { bucket: string; name: string; generation: string }, eventType = 'OBJECT_FINALIZE'): unknown {
  return {
    message: {
      data: Buffer.from(JSON.stringify({ kind: 'storage#object', ...object })).toString('base64'),
      attributes: {
        bucketId: object.bucket,
        objectId: object.name,
        objectGeneration: object.generation,
        eventType,
        eventTime: new Date().toISOString(),
        payloadFormat: 'JSON_API_V1',
        notificationConfig: `projects/_/buckets/${object.bucket}/notificationConfigs/1`,
      },
      messageId: String(Date.now()),
      publishTime: new Date().toISOString(),
    },
    subscription: 'projects/pixelpipe-test/subscriptions/manifests-to-notify',
  };
}

/** Polls `check` until it returns a value or `timeoutMs` passes. */
export async function waitFor<T>(check: () => T | undefined | Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
