/**
 * The dev stack on an already running Pub/Sub emulator (`PUBSUB_EMULATOR_HOST`), with the example
 * subscriber (`scripts/subscriber.ts`) pulling from the same topic: it prints each completion event
 * once, drops a redelivered duplicate by event id, and exits after `--max` events. Stopping the dev
 * stack leaves the external emulator running and removes the stack's own subscription.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PubSub } from '@google-cloud/pubsub';
import { pubsubEmulatorMissing, startPubsubEmulator, type PubsubEmulator } from '../servers/pubsub-emulator';
import { openEvents, ROOT, spawnDev, uploadViaApi, type DevProcess } from './dev-process';

process.env.METADATA_SERVER_DETECTION = 'none';
jest.setTimeout(120_000);

const missing = pubsubEmulatorMissing();
const describeIf = missing && process.env.CI !== 'true' ? describe.skip : describe;

let emulator: PubsubEmulator | null = null;
let dev: DevProcess | undefined;
beforeAll(async () => {
  if (describeIf === describe.skip) return;
  // Warns loudly and returns null when it cannot run here; throws under CI.
  emulator = await startPubsubEmulator({ projectId: 'pixelpipe-dev' });
}, 90_000);
afterAll(async () => {
  await dev?.cleanup();
  await emulator?.stop();
});

describeIf('dev stack on PUBSUB_EMULATOR_HOST + example subscriber', () => {
  test('the subscriber prints each event once and drops the duplicate', async () => {
    dev = await spawnDev({ PUBSUB_EMULATOR_HOST: emulator!.host, PIXELPIPE_DEV_EVENTS: 'auto' });
    const urls = await dev.ready();
    expect(dev.output()).toContain(`Pub/Sub emulator ${emulator!.host} (PUBSUB_EMULATOR_HOST), topic projects/pixelpipe-dev/topics/pixelpipe-events`);

    const sub = spawn(process.execPath, ['scripts/ts.mjs', 'scripts/subscriber.ts', '--json', '--max', '2'], {
      cwd: ROOT,
      env: { ...process.env, PUBSUB_EMULATOR_HOST: emulator!.host, PUBSUB_PROJECT_ID: 'pixelpipe-dev' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    sub.stdout.on('data', (b: Buffer) => (stdout += b.toString('utf8')));
    sub.stderr.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
    const subExit = new Promise<number | null>((r) => sub.once('exit', (code) => r(code)));
    const until = async (what: () => boolean, label: string, ms = 30_000) => {
      const deadline = Date.now() + ms;
      while (!what()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${label}\nstdout:\n${stdout}\nstderr:\n${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const ps = new PubSub({ projectId: 'pixelpipe-dev', apiEndpoint: emulator!.host, emulatorMode: true });
    const sse = await openEvents(urls.events);
    try {
      await until(() => /listening on/.test(stderr), 'the subscriber to listen');

      const photo = await uploadViaApi(urls, 'landscape.jpg', readFileSync(join(ROOT, 'samples', 'landscape.jpg')));
      const first = await sse.waitFor((e) => e.subject === photo.id, 30_000);
      await until(() => stdout.split('\n').filter(Boolean).length === 1, 'the first event');

      // At-least-once delivery: the same CloudEvent again, under a new Pub/Sub message id.
      await ps.topic('pixelpipe-events').publishMessage({
        data: Buffer.from(JSON.stringify(first)),
        attributes: { type: String(first.type), imageId: String(first.subject), owner: 'anonymous', status: 'processed' },
      });
      await until(() => stderr.includes(`duplicate event ${String(first.id)}`), 'the duplicate to be dropped');

      const corrupt = await uploadViaApi(urls, 'corrupt.jpg', readFileSync(join(ROOT, 'samples', 'corrupt.jpg')));
      const code = await subExit;
      expect(code).toBe(0);
      const printed = stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { id: string; subject: string; type: string; data: { reason?: { code: string } } });
      expect(printed.map((e) => [e.subject, e.type])).toEqual([
        [photo.id, 'pixelpipe.image.processed.v1'],
        [corrupt.id, 'pixelpipe.image.failed.v1'],
      ]);
      expect(printed[0].id).toBe(first.id);
      expect(printed[1].data.reason?.code).toBe('corrupt_image');
    } finally {
      sse.close();
      if (sub.exitCode === null) sub.kill('SIGKILL');
    }

    dev.proc.kill('SIGINT');
    expect(await dev.exited).toEqual({ code: 0, signal: null });
    // The external emulator keeps running; the stack removed its own subscription, the example's stays.
    const [subs] = await ps.topic('pixelpipe-events').getSubscriptions();
    expect(subs.map((s) => s.name.split('/').pop())).toEqual(['pixelpipe-subscriber-example']);
    await ps.close();
  });
});
