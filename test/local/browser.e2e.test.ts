/**
 * The demo page in a real browser (Debian's Chromium driven by playwright-core) against the stack
 * `npm run dev` starts: three files chosen at once (two real photos and a corrupt JPEG) upload
 * straight to local S3 with real, throttled progress; a fourth is cancelled mid-upload; every variant
 * image loads with the dimensions the manifest states; the corrupt one is reported as failed with
 * its reason; the recent-images table shows the outcomes, and its delete button removes an image (the
 * cascade's deleted event marks the card and takes the row away). Leaves a screenshot in test-output/.
 *
 * Skips with a loud warning when /usr/bin/chromium is missing, except under CI=true, where it fails.
 * `PIXELPIPE_UPDATE_SCREENSHOT=1` also refreshes docs/screenshot.png (kept under 150 KB).
 */
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import sharp from 'sharp';
import { ROOT, spawnDev, type DevProcess } from './dev-process';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];

jest.setTimeout(180_000);

const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && process.env.CI === 'true') throw new Error(`${CHROMIUM} is required under CI (apt-get install chromium)`);
if (!haveChromium) console.warn(`\n*** SKIPPING the browser end-to-end test: ${CHROMIUM} is not installed (apt-get install chromium) ***\n`);
const testIf = haveChromium ? test : test.skip;

let dev: DevProcess | undefined;
let browser: Browser | undefined;
afterAll(async () => {
  await browser?.close().catch(() => undefined);
  if (dev) {
    dev.proc.kill('SIGINT');
    await Promise.race([dev.exited, new Promise((r) => setTimeout(r, 5000).unref())]);
    await dev.cleanup();
  }
});

const sample = (name: string) => join(ROOT, 'samples', name);
const card = (page: Page, filename: string) => page.locator('[data-testid="card"]', { has: page.locator('.file-name', { hasText: filename }) });

testIf('upload, progress, cancel, live results, gallery dimensions, failure reason and the admin table', async () => {
  dev = await spawnDev();
  const urls = await dev.ready();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, timeout: 30_000 });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'light' });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
  });

  await page.goto(urls.page);
  await page.locator('[data-testid="connection"][data-state="open"]').waitFor({ timeout: 15_000 });
  await page.locator('[data-testid="recent-table"] tr.empty', { hasText: 'No images yet' }).waitFor();

  // Slow uploads down, so progress has intermediate steps to show and cancel has time to act.
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 256 * 1024 });
  // Every value each progress bar takes, observed in the page (polling would miss fast steps).
  await page.evaluate(() => {
    const seen: Record<string, number[]> = {};
    (window as unknown as { __progress: typeof seen }).__progress = seen;
    new MutationObserver(() => {
      for (const el of document.querySelectorAll<HTMLElement>('[data-testid="card"]')) {
        const name = el.querySelector('.file-name')?.textContent ?? '?';
        const value = (el.querySelector('[data-testid="progress"]') as HTMLProgressElement).value;
        const list = (seen[name] ??= []);
        if (list[list.length - 1] !== value) list.push(value);
      }
    }).observe(document.getElementById('cards')!, { subtree: true, childList: true, attributes: true, characterData: true });
  });

  await page.setInputFiles('[data-testid="file-input"]', [
    sample('landscape.jpg'),
    sample('portrait-exif6.jpg'),
    sample('corrupt.jpg'),
    join(ROOT, 'samples', 'faces', 'group-1.jpg'),
  ]);
  await page.setInputFiles('[data-testid="file-input"]', [sample('fig-gps.jpg')]);
  const cancelled = card(page, 'fig-gps.jpg');
  // The page uploads four at once: wait until this one is really sending bytes, then cancel it.
  await page.waitForFunction(
    () => {
      const p = (window as unknown as { __progress: Record<string, number[]> }).__progress['fig-gps.jpg'];
      return !!p && p.some((v) => v > 0 && v < 1);
    },
    undefined,
    { timeout: 20_000 },
  );
  await cancelled.locator('[data-testid="cancel"]').click();
  await cancelled.locator('[data-testid="card-status"]', { hasText: 'Cancelled' }).waitFor();
  expect(await cancelled.getAttribute('data-status')).toBe('cancelled');

  for (const name of ['landscape.jpg', 'portrait-exif6.jpg', 'group-1.jpg']) {
    const c = card(page, name);
    await c.and(page.locator('[data-status="processed"]')).waitFor({ timeout: 60_000 });
    expect(await c.locator('[data-testid="progress-text"]').textContent()).toBe('100%');
    expect(await c.locator('[data-testid="progress"]').evaluate((p) => (p as HTMLProgressElement).value)).toBe(1);
    await expect(c.locator('[data-testid="placeholder"]').count()).resolves.toBe(1);
  }
  const failed = card(page, 'corrupt.jpg');
  await failed.and(page.locator('[data-status="failed"]')).waitFor({ timeout: 60_000 });
  expect(await failed.locator('[data-testid="reason"]').textContent()).toBe('corrupt_image');
  expect(await failed.locator('[data-testid="progress-text"]').textContent()).toBe('100%');
  expect(await failed.locator('[data-testid="variant"]').count()).toBe(0);

  // Real progress: the throttled uploads passed through intermediate values, monotonically, up to exactly 1.
  const progress = await page.evaluate(() => (window as unknown as { __progress: Record<string, number[]> }).__progress);
  for (const name of ['landscape.jpg', 'portrait-exif6.jpg']) {
    const values = progress[name];
    expect(values[values.length - 1]).toBe(1);
    expect(values.some((v) => v > 0 && v < 1)).toBe(true);
    expect([...values].sort((a, b) => a - b)).toEqual(values);
  }

  // Every variant loads from storage with the dimensions the manifest states.
  const variants = page.locator('[data-testid="variant"]');
  const count = await variants.count();
  expect(count).toBe(27); // 9 files (5 variants, webp + jpeg, gray jpeg only) for each of the three photos
  for (let i = 0; i < count; i++) {
    const img = variants.nth(i);
    // The gallery lazy-loads: bring each into view, then wait for its pixels.
    await img.scrollIntoViewIfNeeded();
    await img.evaluate((el) => {
      const image = el as HTMLImageElement;
      return image.complete && image.naturalWidth > 0
        ? undefined
        : new Promise((resolve, reject) => {
            image.addEventListener('load', resolve, { once: true });
            image.addEventListener('error', () => reject(new Error(`failed to load ${image.src}`)), { once: true });
          });
    });
    const d = await img.evaluate((el) => {
      const image = el as HTMLImageElement;
      return {
        natural: [image.naturalWidth, image.naturalHeight],
        stated: [Number(image.dataset.width), Number(image.dataset.height)],
        src: image.src,
        name: image.dataset.variant,
      };
    });
    expect({ name: d.name, size: d.natural }).toEqual({ name: d.name, size: d.stated });
    expect(d.src.startsWith(`${urls.storage}/pixelpipe-variants/variants/`)).toBe(true);
  }
  const portrait = card(page, 'portrait-exif6.jpg');
  const dims = async (variant: string, format: string) =>
    portrait
      .locator(`[data-testid="variant"][data-variant="${variant}"][data-format="${format}"]`)
      .evaluate((el) => [(el as HTMLImageElement).naturalWidth, (el as HTMLImageElement).naturalHeight]);
  expect(await dims('thumb', 'webp')).toEqual([200, 200]);
  expect(await dims('thumb', 'jpeg')).toEqual([200, 200]);
  const [smallW, smallH] = await dims('small', 'jpeg');
  expect(smallW).toBe(480);
  expect(smallH).toBeGreaterThan(smallW); // EXIF orientation 6 applied: portrait
  expect(await dims('large', 'webp')).toEqual([1000, 1500]); // never enlarged beyond the upright original

  // The analysis overlay: the embedded analyzer's face boxes over the original, the thumb's crop, labels and verdict.
  const group = card(page, 'group-1.jpg');
  const manifest = await page.evaluate(
    async (url) => (await fetch(url)).json() as Promise<{ analysis?: { faces?: unknown[] } }>,
    `${urls.images}/${await group.getAttribute('data-image-id')}`,
  );
  const analysis = manifest.analysis;
  expect(analysis?.faces?.length).toBeGreaterThanOrEqual(3);
  const frame = group.locator('[data-testid="analysis-frame"]');
  await frame.locator('img').evaluate((el) => {
    const image = el as HTMLImageElement;
    return image.complete && image.naturalWidth > 0 ? undefined : new Promise((resolve) => image.addEventListener('load', resolve, { once: true }));
  });
  const boxes = await frame.locator('[data-testid="face-box"]').evaluateAll((els) =>
    els.map((el) => {
      const r = el.getBoundingClientRect();
      const f = el.parentElement!.getBoundingClientRect();
      return { left: (r.left - f.left) / f.width, top: (r.top - f.top) / f.height, width: r.width / f.width, height: r.height / f.height };
    }),
  );
  expect(boxes).toHaveLength(analysis!.faces!.length);
  for (const b of boxes) {
    expect(b.width).toBeGreaterThan(0.02);
    expect(b.left).toBeGreaterThanOrEqual(0);
    expect(b.left + b.width).toBeLessThanOrEqual(1.001);
  }
  expect(await frame.locator('[data-testid="crop-box"][data-variant="thumb"]').count()).toBe(1);
  expect(await group.locator('[data-testid="faces"]').textContent()).toBe(`${boxes.length} faces`);
  expect(await group.locator('[data-testid="moderation"]').textContent()).toBe('off');
  expect(await group.locator('[data-testid="labels"]').textContent()).toBe('not analysed');
  expect(await group.locator('[data-testid="variant"][data-variant="thumb"]').first().getAttribute('data-crop')).toMatch(/^\d+,\d+,\d+,\d+$/);

  // The admin table: the three uploads that reached storage, with their outcomes (the cancelled one never arrived).
  await page.locator('[data-testid="recent-row"][data-status="failed"]').waitFor();
  const rows = await page.locator('[data-testid="recent-row"]').evaluateAll((trs) =>
    trs.map((tr) => ({
      status: (tr as HTMLElement).dataset.status,
      filename: tr.querySelector('.filename')?.textContent,
      variants: tr.querySelectorAll('td')[4]?.textContent,
    })),
  );
  expect(rows.filter((r) => r.status !== 'pending')).toEqual(
    expect.arrayContaining([
      { status: 'processed', filename: 'landscape.jpg', variants: '9' },
      { status: 'processed', filename: 'portrait-exif6.jpg', variants: '9' },
      { status: 'processed', filename: 'group-1.jpg', variants: '9' },
      { status: 'failed', filename: 'corrupt.jpg', variants: '0' },
    ]),
  );
  expect(rows.some((r) => r.filename === 'fig-gps.jpg' && r.status !== 'pending')).toBe(false);

  // Delete one image from the table: the images API deletes the original, and the cascade's deleted
  // event (over SSE) marks its card and takes its row out of the list.
  const landscapeRow = page.locator('[data-testid="recent-row"]', { has: page.locator('.filename', { hasText: 'landscape.jpg' }) });
  const landscapeId = await landscapeRow.getAttribute('data-image-id');
  expect(landscapeId).toBeTruthy();
  await landscapeRow.locator('[data-testid="delete-button"]').click();
  await card(page, 'landscape.jpg').and(page.locator('[data-deleted="true"]')).waitFor({ timeout: 30_000 });
  await page.locator(`[data-testid="recent-row"][data-image-id="${landscapeId}"]`).waitFor({ state: 'detached', timeout: 30_000 });
  await page.locator('[data-testid="recent-row"][data-status="failed"]').waitFor();
  expect(await page.locator('[data-testid="recent-row"]').count()).toBe(rows.length - 1);
  // From outside the page: a 404 inside it would be logged as a console problem.
  expect((await fetch(new URL(`/api/images/${landscapeId}`, page.url()))).status).toBe(404);

  expect(problems.filter((p) => !/favicon/.test(p))).toEqual([]);

  await page.evaluate(() => window.scrollTo(0, 0));
  mkdirSync(join(ROOT, 'test-output'), { recursive: true });
  const shot = await page.screenshot({ fullPage: true });
  writeFileSync(join(ROOT, 'test-output', 'dev-page.png'), shot);
  if (process.env.PIXELPIPE_UPDATE_SCREENSHOT === '1') {
    const small = await page.screenshot({ fullPage: false });
    const png = await sharp(small).resize({ width: 960 }).png({ palette: true, colours: 96, effort: 10 }).toBuffer();
    writeFileSync(join(ROOT, 'docs', 'screenshot.png'), png);
    expect(statSync(join(ROOT, 'docs', 'screenshot.png')).size).toBeLessThanOrEqual(150 * 1024);
  }
});
