/**
 * The deploy and teardown scripts' gcloud commands against the REAL Cloud SDK. The deploy tests run
 * the scripts against a fake gcloud written alongside them (test/deploy/fake-gcloud.cjs), which keeps
 * state and checks idempotency but can share the scripts' misreading of gcloud's flags. Here every
 * distinct command the scripts issued through the fake (first deploy, idempotent redeploy, drift
 * repair, sizing overrides, teardown, teardown with buckets) is replayed through the installed
 * `gcloud` with an empty configuration and no account, offline. Each must get as far as needing
 * credentials: a failure in argument parsing (unknown flag, invalid choice, bad value) fails the test.
 *
 * Files the scripts pass (--cors-file, --lifecycle-file, --env-vars-file) are deleted when the scripts
 * exit; the fake captured their contents, which are written back to temporary files for the replay.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEPLOY, PROJECT, REGION, TEARDOWN, VARIANTS, deployArgs, makeWorld, type Call } from '../deploy/helpers';

/** gcloud starts a Python interpreter per call (≈1 s of CPU, several seconds on a busy machine). */
const POOL = 4;
const CALL_TIMEOUT_MS = 90_000;
jest.setTimeout(15 * 60_000);

const gcloud = spawnSync('bash', ['-c', 'command -v gcloud'], { encoding: 'utf8' }).stdout.trim();
const missing = gcloud ? undefined : 'the Google Cloud SDK (gcloud) is not installed';
if (missing && process.env.CI !== 'true') console.warn(`\n*** SKIPPING real-gcloud replay: ${missing} ***\n`);
const suite = missing && process.env.CI !== 'true' ? describe.skip : describe;

/** The credentials error every replayed command must end in. */
const NEEDS_CREDENTIALS =
  /You do not currently have an active account selected|gcloud auth login|Reauthentication required|could not find default credentials/i;
/** What argparse and gcloud's flag types print for arguments they reject. */
const ARGUMENT_ERROR =
  /unrecognized arguments|argument [-\w ]+: |Invalid choice|invalid choice|Invalid value for|[Bb]ad value|is not a valid|must be specified|one of the arguments|ERROR: \(gcloud[^)]*\) argument|Expected type|Failed to parse|cannot be specified|(?:is|are) required/;

interface Replay {
  call: Call;
  status: number | null;
  stderr: string;
}

/** The parts of the fake's emulated project that the drift below edits. */
interface DriftableState {
  topics: Record<string, { iam: { bindings: unknown[] } }>;
  buckets: Record<string, { cors: unknown }>;
  subscriptions: Record<string, { deadLetterPolicy?: unknown }>;
  runServices: Record<string, { annotations: Record<string, string> }>;
  customRoles: Record<string, { includedPermissions: string[]; deleted?: boolean }>;
}

/** Runs the scripts through the fake and returns every distinct gcloud call they made. */
function recordCalls(): Call[] {
  const world = makeWorld('fake');
  try {
    const calls: Call[] = [];
    const run = (script: string, args: string[], env: Record<string, string> = {}) => {
      const r = world.run(script, args, env);
      if (r.status !== 0) throw new Error(`${path.basename(script)} ${args.join(' ')} failed against the fake:\n${r.stderr}`);
      calls.push(...r.calls);
    };
    run(DEPLOY, deployArgs(world));
    run(DEPLOY, deployArgs(world));
    // Drift, as in deploy-gcp.test.ts, so the repair commands are replayed too.
    const state = world.state() as DriftableState;
    state.topics['pixelpipe-events'].iam.bindings = [];
    state.buckets[VARIANTS].cors = [{ origin: ['*'], method: ['GET'] }];
    const sub = Object.keys(state.subscriptions).find((s) => s.startsWith('eventarc-') && s.includes('notify'));
    if (sub) delete state.subscriptions[sub].deadLetterPolicy;
    state.runServices['pixelpipe-upload'].annotations = {};
    // Custom role drift, so `iam roles update` and `iam roles undelete` are replayed too.
    state.customRoles['pixelpipe.originalsDeleter'].includedPermissions.push('storage.objects.get');
    state.customRoles['pixelpipe.objectLister'].deleted = true;
    world.writeState(state);
    run(DEPLOY, deployArgs(world));
    run(DEPLOY, [...deployArgs(world), '--process-memory', '2Gi', '--notify-max-instances=3'], { DEPLOY_PROCESS_TIMEOUT: '300s' });
    run(TEARDOWN, ['--project', PROJECT, '--region', REGION]);
    run(TEARDOWN, ['--project', PROJECT, '--region', REGION, '--delete-buckets']);
    const distinct = new Map<string, Call>();
    for (const c of calls) distinct.set(JSON.stringify([c.argv, c.files]), c);
    return [...distinct.values()];
  } finally {
    world.cleanup();
  }
}

/** The call's argv with captured file contents written to `dir` and the paths substituted. */
function argvFor(call: Call, dir: string, n: number): string[] {
  const argv = [...call.argv];
  for (const [flagName, content] of Object.entries(call.files)) {
    if (content === null) continue;
    const file = path.join(dir, `${n}-${flagName.replace(/^-+/, '')}`);
    fs.writeFileSync(file, content);
    const i = argv.findIndex((a) => a === flagName || a.startsWith(`${flagName}=`));
    if (i < 0) throw new Error(`${flagName} captured but not in ${argv.join(' ')}`);
    if (argv[i] === flagName) argv[i + 1] = file;
    else argv[i] = `${flagName}=${file}`;
  }
  return argv;
}

function replay(call: Call, argv: string[], configDir: string): Promise<Replay> {
  return new Promise((resolve) => {
    const child = spawn(gcloud, argv, {
      env: {
        PATH: process.env.PATH,
        HOME: configDir,
        CLOUDSDK_CONFIG: configDir,
        CLOUDSDK_CORE_DISABLE_PROMPTS: '1',
        // Offline and without an account: never probe the GCE metadata server or check for updates.
        CLOUDSDK_CORE_CHECK_GCE_METADATA: 'false',
        CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK: '1',
        CLOUDSDK_CORE_DISABLE_USAGE_REPORTING: '1',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), CALL_TIMEOUT_MS);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ call, status, stderr });
    });
  });
}

suite('deploy-gcp.sh and teardown-gcp.sh commands through the real gcloud (no account, offline)', () => {
  let replays: Replay[] = [];
  let dir: string;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixelpipe-gcloud-replay-'));
    const calls = recordCalls();
    const queue = calls.map((call, n) => ({ call, argv: argvFor(call, dir, n) }));
    // One configuration directory per worker: gcloud keeps state (a sqlite cache) in it.
    const workers = Array.from({ length: POOL }, async (_, w) => {
      const configDir = fs.mkdtempSync(path.join(dir, `config-${w}-`));
      for (let next = queue.shift(); next; next = queue.shift()) replays.push(await replay(next.call, next.argv, configDir));
    });
    await Promise.all(workers);
    replays = replays.sort((a, b) => calls.indexOf(a.call) - calls.indexOf(b.call));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('the scripts issued the commands of a whole deploy, repair and teardown', () => {
    const commands = new Set(replays.map((r) => r.call.command));
    for (const c of [
      'functions deploy',
      'storage buckets create',
      'storage buckets update',
      'pubsub subscriptions update',
      'run services update',
      'functions delete',
      'storage rm',
      'iam roles describe',
      'iam roles create',
      'iam roles update',
      'iam roles undelete',
      'iam roles delete',
    ]) {
      expect(commands).toContain(c);
    }
    expect(replays.length).toBeGreaterThanOrEqual(80);
  });

  test('no command is rejected in argument parsing', () => {
    const rejected = replays
      .filter((r) => r.status === 2 || ARGUMENT_ERROR.test(r.stderr))
      .map((r) => `gcloud ${r.call.argv.join(' ')}\n  → ${r.stderr.trim().split('\n')[0]}`);
    expect(rejected).toEqual([]);
  });

  test('every command fails only for lack of credentials', () => {
    const other = replays
      .filter((r) => r.status !== 1 || !NEEDS_CREDENTIALS.test(r.stderr))
      .map((r) => `gcloud ${r.call.argv.join(' ')}\n  → exit ${r.status}: ${r.stderr.trim().split('\n').slice(0, 3).join(' | ')}`);
    expect(other).toEqual([]);
  });
});
