import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { main } from '../../functions/cli/main';
import { formatProgress } from '../../functions/cli/progress';

const samples = join(__dirname, '..', '..', 'samples');

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = jest.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
  const e = jest.spyOn(process.stderr, 'write').mockImplementation((s) => ((err += String(s)), true));
  try {
    return { code: await main(args), out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

test('process prints one manifest per file and writes the outputs', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pixelpipe-cli-'));
  const config = join(dir, 'config.json');
  writeFileSync(
    config,
    JSON.stringify({ variants: [{ name: 'card', width: 300, height: 200, fit: 'cover', formats: ['webp', 'avif'] }], PIXELPIPE_WEBP_EFFORT: 2 }),
  );
  const r = await run(['process', join(samples, 'landscape.jpg'), join(samples, 'corrupt.jpg'), '--json', '--config', config, '--out', join(dir, 'out')]);
  expect(r.code).toBe(1); // one file failed
  const lines = r.out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { status: string; variants: Array<{ format: string; width: number; height: number }> });
  expect(lines).toHaveLength(2);
  expect(lines[0]).toMatchObject({ status: 'processed', source: { width: 1600, height: 1065 } });
  expect(lines[0].variants.map((v) => [v.format, v.width, v.height])).toEqual([
    ['avif', 300, 200],
    ['webp', 300, 200],
  ]);
  expect(lines[1]).toMatchObject({ status: 'failed', reason: { code: 'corrupt_image' } });
  const files = readdirSync(join(dir, 'out', 'landscape')).sort();
  expect(files).toEqual(['card.avif', 'card.webp', 'manifest.json']);
  const meta = await sharp(readFileSync(join(dir, 'out', 'landscape', 'card.webp'))).metadata();
  expect([meta.format, meta.width, meta.height]).toEqual(['webp', 300, 200]);
});

test('usage errors exit 2 with the usage text; bad config names the setting', async () => {
  expect((await run([])).code).toBe(2);
  expect((await run(['nope'])).err).toContain('usage:');
  expect((await run(['process'])).code).toBe(2);
  const dir = mkdtempSync(join(tmpdir(), 'pixelpipe-cli-'));
  writeFileSync(join(dir, 'c.json'), JSON.stringify({ PIXELPIPE_MAX_FRAMES: 'many' }));
  const bad = await run(['process', join(samples, 'landscape.jpg'), '--config', join(dir, 'c.json')]);
  expect(bad.code).toBe(1);
  expect(bad.err).toContain('PIXELPIPE_MAX_FRAMES');
  expect((await run(['backfill', '--store', 'ftp'])).code).toBe(2);
  expect((await run(['reprocess', '--store', 's3'])).err).toContain('image ids or --failed');
});

test.each([['--help'], ['-h'], ['help'], ['process', '--help'], ['backfill', '--help'], ['reprocess', '-h'], ['backfill', '--store', 's3', '--help']])(
  '%j prints the usage on stdout and exits 0 without doing any work',
  async (...args) => {
    const r = await run(args);
    expect(r).toEqual({ code: 0, out: expect.stringContaining('usage:') as string, err: '' });
    for (const command of ['process', 'backfill', 'reprocess']) expect(r.out).toContain(`pixelpipe ${command} `);
  },
);

test('an unknown option is a usage error (exit 2 with the usage), not a crash', async () => {
  const r = await run(['backfill', '--stor', 's3']);
  expect(r.code).toBe(2);
  expect(r.err).toMatch(/Unknown option '--stor'[\s\S]*usage:/);
  expect(r.out).toBe('');
});

test('progress line shows rate and ETA', () => {
  expect(formatProgress({ listed: 10, skipped: 2, processed: 3, failed: 1, errors: 0, queued: 4 }, 2000, 10)).toBe(
    '[#####-----] 4/8 2.0 img/s ETA 2s (listed 10, skipped 2, failed 1, errors 0)',
  );
});

test('process --profile applies that profile (pinned as an upload would pin it); an unknown one is a usage error naming the profiles', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pixelpipe-cli-'));
  const config = join(dir, 'config.json');
  writeFileSync(
    config,
    JSON.stringify({
      variants: [{ name: 'card', width: 300, formats: ['jpeg'] }],
      PIXELPIPE_PROFILES: { avatar: { variants: [{ name: 'square', width: 96, height: 96, fit: 'cover', formats: ['webp'] }] } },
      PIXELPIPE_ANALYZER: 'none',
    }),
  );
  const r = await run(['process', join(samples, 'landscape.jpg'), '--json', '--config', config, '--profile', 'avatar']);
  expect(r.code).toBe(0);
  const m = JSON.parse(r.out.trim()) as { profile: string; recipe: string; variants: Array<{ name: string; format: string; width: number; height: number }> };
  expect([m.profile, m.variants.map((v) => [v.name, v.format, v.width, v.height])]).toEqual(['avatar', [['square', 'webp', 96, 96]]]);
  expect(m.recipe).toMatch(/^r\d+-[0-9a-f]{24}$/);
  const plain = await run(['process', join(samples, 'landscape.jpg'), '--json', '--config', config]);
  expect((JSON.parse(plain.out.trim()) as { profile: string }).profile).toBe('default');
  const bad = await run(['process', join(samples, 'landscape.jpg'), '--config', config, '--profile', 'banner']);
  expect(bad.code).toBe(2);
  expect(bad.err).toContain('--profile must be one of: default, avatar (got "banner")');
});

test('backfill option combinations that make no sense are usage errors before any store is built', async () => {
  for (const [args, message] of [
    [['--apply'], '--apply only goes with --prune'],
    [['--prune', '--stale'], 'run --stale first, on its own'],
    [['--prune', '--dry-run'], '--prune is a dry run unless --apply'],
    [['--stale', '--force'], '--force already reprocesses everything'],
  ] as const) {
    const r = await run(['backfill', '--store', 's3', ...args]);
    expect([args, r.code, r.err]).toEqual([args, 2, expect.stringContaining(message) as string]);
  }
});
