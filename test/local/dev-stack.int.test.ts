/**
 * `npm run dev` as a user runs it: the command starts, prints its URLs, serves the page, the API and
 * the event stream, runs an image through the whole pipeline (signed POST to s3rver → process → notify
 * → event channel → SSE), and on SIGINT exits 0 within a few seconds leaving no process behind and
 * every port free. Run once per event channel: embedded, and the real Pub/Sub emulator. A taken
 * port makes it exit non-zero naming the port.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { pubsubEmulatorUnavailable } from '../../functions/local/pubsub-emulator-process';
import { DEFAULT_PUBSUB_EMULATOR_BIN } from '../../functions/local/dev-options';
import { alive, canBind, openEvents, ROOT, spawnDev, type DevProcess } from './dev-process';

jest.setTimeout(120_000);

const missing = pubsubEmulatorUnavailable(DEFAULT_PUBSUB_EMULATOR_BIN, { path: process.env.PATH ?? '', javaHome: process.env.JAVA_HOME });
if (missing && process.env.CI === 'true') throw new Error(`the Pub/Sub emulator is required under CI: ${missing}`);
if (missing) console.warn(`\n*** SKIPPING the dev stack's Pub/Sub emulator mode: ${missing} ***\n`);

// Ctrl-C in a terminal signals the whole foreground group (launcher and dev process at once); a
// supervisor signals the launcher only, which forwards it. One mode each.
const modes: Array<{ name: string; env: Record<string, string>; skip: boolean; banner: RegExp; sigint: 'group' | 'launcher' }> = [
  { name: 'embedded event channel', env: { PIXELPIPE_DEV_EVENTS: 'embedded' }, skip: false, banner: /Events\s+embedded in-process channel/, sigint: 'group' },
  {
    name: 'Pub/Sub emulator',
    env: { PIXELPIPE_DEV_EVENTS: 'pubsub' },
    skip: missing !== null,
    banner: /Events\s+Pub\/Sub emulator 127\.0\.0\.1:\d+ \(started by the dev stack\)/,
    sigint: 'launcher',
  },
];

/** The promise's value, or null after `ms` (the timer is cleared either way, so jest can exit). */
async function within<T>(p: Promise<T>, ms: number): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<null>((r) => (timer = setTimeout(() => r(null), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

let dev: DevProcess | undefined;
afterEach(async () => {
  await dev?.cleanup();
  dev = undefined;
});

describe.each(modes)('npm run dev with the $name', ({ env, skip, banner, sigint }) => {
  (skip ? test.skip : test)(`starts, serves, processes an upload end to end, and stops cleanly on SIGINT (to the ${sigint})`, async () => {
    const t0 = Date.now();
    dev = await spawnDev(env);
    const urls = await dev.ready();
    console.log(`dev stack (${env.PIXELPIPE_DEV_EVENTS}) ready ${Date.now() - t0} ms after spawn`);
    const origin = new URL(urls.page).origin;
    expect(urls.page).toBe(`http://127.0.0.1:${dev.ports.page}/`);
    expect(urls.storage).toBe(`http://127.0.0.1:${dev.ports.s3}`);
    expect(dev.output()).toMatch(banner);
    expect(dev.output()).toMatch(/AUTH DISABLED/);

    // The page and its scripts.
    const page = await fetch(urls.page);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain(`img-src 'self' data: ${urls.storage}`);
    expect(await page.text()).toContain('data-testid="file-input"');
    for (const asset of ['app.js', 'upload.js', 'style.css']) expect((await fetch(new URL(asset, urls.page))).status).toBe(200);
    expect((await fetch(new URL('../package.json', urls.page))).status).toBe(404);
    expect((await fetch(new URL('%2e%2e/package.json', urls.page))).status).toBe(404);

    // The read API, empty at first.
    expect(await (await fetch(urls.images)).json()).toEqual({ images: [] });
    expect((await fetch(`${urls.images}/6f1c2a4e-8b3d-4c5e-9f70-1a2b3c4d5e6f`)).status).toBe(404);

    const sse = await openEvents(urls.events);
    expect(sse.first).toContain(': connected');
    try {
      // The upload API, as the browser helper calls it.
      const photo = readFileSync(join(ROOT, 'samples', 'landscape.jpg'));
      const res = await fetch(urls.uploads, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin },
        body: JSON.stringify({ contentType: 'image/jpeg', size: photo.length, filename: 'landscape.jpg' }),
      });
      expect(res.status).toBe(201);
      expect(res.headers.get('access-control-allow-origin')).toBe(origin);
      const ticket = (await res.json()) as { id: string; statusUrl: string; upload: { method: string; url: string; fields: Record<string, string> } };
      expect(ticket.upload.method).toBe('POST');
      expect(ticket.upload.url).toBe(`${urls.storage}/pixelpipe-originals`);
      expect(ticket.statusUrl).toBe(`${urls.images}/${ticket.id}`);
      // Signed is not stored: the images API lists what storage holds.
      expect(await (await fetch(urls.images)).json()).toEqual({ images: [] });

      // Straight to storage, cross-origin from the page, like the browser does.
      const form = new FormData();
      for (const [k, v] of Object.entries(ticket.upload.fields)) form.append(k, v);
      form.append('file', new Blob([new Uint8Array(photo)], { type: 'image/jpeg' }), 'landscape.jpg');
      const stored = await fetch(ticket.upload.url, { method: 'POST', body: form, headers: { origin } });
      expect(stored.status).toBe(204);
      expect(stored.headers.get('access-control-allow-origin')).toBe(origin);

      const event = await sse.waitFor((e) => e.subject === ticket.id, 30_000);
      expect(event).toMatchObject({
        specversion: '1.0',
        type: 'pixelpipe.image.processed.v1',
        source: '//pixelpipe/dev',
        data: { status: 'processed', source: { filename: 'landscape.jpg', width: 1600, height: 1065 } },
      });
      const thumb = (event.data.variants as Array<{ name: string; format: string; url: string; width: number }>).find(
        (v) => v.name === 'thumb' && v.format === 'webp',
      )!;
      expect(thumb.url).toBe(`${urls.storage}/pixelpipe-variants/variants/${ticket.id}/thumb.webp`);
      const img = await fetch(thumb.url);
      expect(img.status).toBe(200);
      expect(img.headers.get('content-type')).toBe('image/webp');

      const status = await fetch(ticket.statusUrl);
      expect(status.status).toBe(200);
      expect(await status.json()).toMatchObject({ id: ticket.id, status: 'processed' });
      const rows = ((await (await fetch(urls.images)).json()) as { images: Array<{ id: string; manifest?: { variants: unknown[] } }> }).images;
      expect(rows[0]).toMatchObject({ id: ticket.id, status: 'processed', bytes: photo.length, manifest: { source: { filename: 'landscape.jpg' } } });
      expect(rows[0].manifest?.variants).toHaveLength(9);

      // Delete through the images API: 202, then the cascade's deleted event, then nothing is left.
      const del = await fetch(`${urls.images}/${ticket.id}`, { method: 'DELETE', headers: { origin } });
      expect(del.status).toBe(202);
      expect(del.headers.get('access-control-allow-origin')).toBe(origin);
      const deleted = await sse.waitFor((e) => e.subject === ticket.id && e.type === 'pixelpipe.image.deleted.v1', 30_000);
      expect(deleted.data).toMatchObject({ id: ticket.id, status: 'deleted' });
      expect(await (await fetch(urls.images)).json()).toEqual({ images: [] });
      expect((await fetch(ticket.statusUrl)).status).toBe(404);
      expect((await fetch(`${urls.images}/${ticket.id}`, { method: 'DELETE' })).status).toBe(404);
      // s3rver checks no signatures: list the image's prefixes directly.
      for (const [bucket, prefix] of [
        ['pixelpipe-originals', `originals/`],
        ['pixelpipe-variants', `variants/${ticket.id}/`],
        ['pixelpipe-variants', `manifests/${ticket.id}`],
        ['pixelpipe-variants', `state/${ticket.id}/`],
      ]) {
        const listing = await (await fetch(`${urls.storage}/${bucket}?list-type=2&prefix=${encodeURIComponent(prefix)}`)).text();
        expect([bucket, prefix, listing.includes('<Key>')]).toEqual([bucket, prefix, false]);
      }

      // The example profile: listed for the page's selector, pinned at upload, applied by the processor.
      expect(await (await fetch(new URL('/api/profiles', urls.page))).json()).toEqual({ profiles: ['default', 'avatar'], default: 'default' });
      const asAvatar = await fetch(urls.uploads, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin },
        body: JSON.stringify({ contentType: 'image/jpeg', size: photo.length, profile: 'avatar' }),
      });
      expect(asAvatar.status).toBe(201);
      const avatarTicket = (await asAvatar.json()) as { id: string; upload: { url: string; fields: Record<string, string> } };
      expect(avatarTicket.upload.fields['x-amz-meta-pixelpipe-profile']).toBe('avatar');
      const avatarForm = new FormData();
      for (const [k, v] of Object.entries(avatarTicket.upload.fields)) avatarForm.append(k, v);
      avatarForm.append('file', new Blob([new Uint8Array(photo)], { type: 'image/jpeg' }), 'me.jpg');
      expect((await fetch(avatarTicket.upload.url, { method: 'POST', body: avatarForm, headers: { origin } })).status).toBe(204);
      const avatarEvent = await sse.waitFor((e) => e.subject === avatarTicket.id, 30_000);
      const avatarData = avatarEvent.data as { profile: string; variants: Array<{ name: string; format: string; width: number; height: number }> };
      expect([avatarData.profile, avatarData.variants.map((v) => `${v.name}.${v.format} ${v.width}x${v.height}`)]).toEqual([
        'avatar',
        ['avatar.jpeg 256x256', 'avatar.webp 256x256', 'avatar-small.webp 64x64'],
      ]);
    } finally {
      sse.close();
    }

    // Shut down: exit 0 within a few seconds, no descendant left, every port free again.
    const tree = dev.tree();
    if (env.PIXELPIPE_DEV_EVENTS === 'pubsub') expect(tree.some((p) => /java/.test(p.command))).toBe(true);
    expect(tree.length).toBeGreaterThan(0);
    const t1 = Date.now();
    if (sigint === 'group') process.kill(-dev.proc.pid!, 'SIGINT');
    else dev.proc.kill('SIGINT');
    const exit = await within(dev.exited, 8000);
    const stopMs = Date.now() - t1;
    console.log(`dev stack (${env.PIXELPIPE_DEV_EVENTS}) stopped ${stopMs} ms after SIGINT`);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(stopMs).toBeLessThan(5000);
    expect(dev.output()).toMatch(/stopped\./);
    // Nothing but the stack's own lines: no Node warning and no SDK notice (e.g. the AWS SDK's Node 20 one) greets the user.
    expect(dev.output()).not.toMatch(/\(node:\d+\)|Warning:/);
    // The launcher waited for its child, which waited for the emulator: nothing may still run.
    const leftovers: string[] = [];
    for (let i = 0; i < 40; i++) {
      leftovers.length = 0;
      for (const p of tree) if (alive(p.pid)) leftovers.push(`${p.pid} ${p.command}`);
      if (leftovers.length === 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(leftovers).toEqual([]);
    for (const port of [dev.ports.page, dev.ports.s3, dev.ports.pubsub]) expect(await canBind(port)).toBe(true);
  });
});

(missing ? test.skip : test)('Ctrl-C while the Pub/Sub emulator is still starting: exit 0, nothing left behind', async () => {
  dev = await spawnDev({ PIXELPIPE_DEV_EVENTS: 'pubsub' });
  let tree: Array<{ pid: number; command: string }> = [];
  for (let i = 0; i < 400 && !tree.some((p) => /java/.test(p.command)); i++) {
    await new Promise((r) => setTimeout(r, 25));
    tree = dev.tree();
  }
  expect(tree.some((p) => /java/.test(p.command))).toBe(true);
  process.kill(-dev.proc.pid!, 'SIGINT');
  expect(await within(dev.exited, 10_000)).toEqual({ code: 0, signal: null });
  expect(dev.output()).not.toMatch(/stack ready in/);
  for (let i = 0; i < 40 && tree.some((p) => alive(p.pid)); i++) await new Promise((r) => setTimeout(r, 50));
  expect(tree.filter((p) => alive(p.pid))).toEqual([]);
  for (const port of [dev.ports.page, dev.ports.s3, dev.ports.pubsub]) expect(await canBind(port)).toBe(true);
});

describe('npm run dev with a port taken', () => {
  let blocker: Server | undefined;
  afterEach(async () => {
    await new Promise<void>((r) => (blocker ? blocker.close(() => r()) : r()));
    blocker = undefined;
  });

  const occupy = (port: number) =>
    new Promise<Server>((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => resolve(s));
    });

  test.each([
    ['PIXELPIPE_DEV_PORT', 'page' as const],
    ['PIXELPIPE_DEV_S3_PORT', 's3' as const],
  ])('exits non-zero naming the port and %s', async (variable, which) => {
    const { freePort } = await import('./dev-process');
    const port = await freePort();
    blocker = await occupy(port);
    dev = await spawnDev({ PIXELPIPE_DEV_EVENTS: 'embedded', [variable]: String(port) });
    expect(dev.ports[which]).not.toBe(port); // the helper's own choice was overridden
    const exit = await within(dev.exited, 20_000);
    expect(exit).not.toBeNull();
    expect(exit!.code).toBe(1);
    expect(dev.output()).toContain(`port ${port} is already in use (set ${variable})`);
    expect(dev.output()).not.toMatch(/stack ready in/);
  });
});
