/**
 * Test harness for scripts/deploy-gcp.sh and scripts/teardown-gcp.sh: a temporary "world" with a fake
 * `gcloud` first on PATH (test/deploy/fake-gcloud.cjs, stateful), fake function bundles, and helpers to
 * read what the scripts asked gcloud to do.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const REPO = path.resolve(__dirname, '..', '..');
export const DEPLOY = path.join(REPO, 'scripts', 'deploy-gcp.sh');
export const TEARDOWN = path.join(REPO, 'scripts', 'teardown-gcp.sh');
const FAKE = path.join(__dirname, 'fake-gcloud.cjs');

export const PROJECT = 'pp-test-proj';
export const REGION = 'europe-west1';
export const ORIGINS = ['https://app.example', 'https://admin.example:8443'];
export const SA = {
  upload: `pixelpipe-upload@${PROJECT}.iam.gserviceaccount.com`,
  process: `pixelpipe-process@${PROJECT}.iam.gserviceaccount.com`,
  notify: `pixelpipe-notify@${PROJECT}.iam.gserviceaccount.com`,
  cascade: `pixelpipe-cascade@${PROJECT}.iam.gserviceaccount.com`,
  images: `pixelpipe-images@${PROJECT}.iam.gserviceaccount.com`,
  trigger: `pixelpipe-trigger@${PROJECT}.iam.gserviceaccount.com`,
};
export const ORIGINALS = `${PROJECT}-pixelpipe-originals`;
export const VARIANTS = `${PROJECT}-pixelpipe-variants`;

export interface Call {
  argv: string[];
  command: string | null;
  files: Record<string, string | null>;
  exit: number;
}

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
  calls: Call[];
}

/** One IAM binding as the fake gcloud stores it. */
export interface Binding {
  role: string;
  members: string[];
  condition?: { title?: string; expression?: string };
}

/** A resource's IAM policy in the fake's state. */
export interface Policy {
  bindings: Binding[];
}

/** A project-level custom role as the fake keeps it (`deleted` while it can still be undeleted). */
export interface CustomRole {
  title: string;
  description: string;
  includedPermissions: string[];
  stage: string;
  deleted?: boolean;
}

/** The parts of the fake gcloud's project state (test/deploy/fake-gcloud.cjs) the tests read. */
export interface FakeGcloudState {
  enabledServices: string[];
  projectIam: Policy;
  buckets: Record<
    string,
    {
      iam: Policy;
      cors: Array<{ origin: string[]; method: string[] }>;
      notifications: Array<{ id: string; [field: string]: unknown }>;
      lifecycle: { rule: unknown[] };
    }
  >;
  topics: Record<string, { iam: Policy }>;
  subscriptions: Record<string, { iam: Policy; deadLetterPolicy?: { deadLetterTopic?: string; maxDeliveryAttempts?: number } }>;
  serviceAccounts: Record<string, { iam: Policy }>;
  customRoles: Record<string, CustomRole>;
  runServices: Record<string, { iam: Policy; annotations?: Record<string, string> }>;
  functions: Record<string, unknown>;
  triggers: Record<string, unknown>;
}

export interface World {
  dir: string;
  sourceDir: string;
  statePath: string;
  run(script: string, args: string[], extraEnv?: Record<string, string>): RunResult;
  state(): FakeGcloudState;
  stateText(): string;
  writeState(state: unknown): void;
  cleanup(): void;
}

/** Arguments every deploy in the tests needs (JWT settings are mandatory, the build is skipped). */
export function deployArgs(world: World, extra: string[] = []): string[] {
  return [
    '--project',
    PROJECT,
    '--region',
    REGION,
    '--skip-build',
    '--source-dir',
    world.sourceDir,
    '--cors-origins',
    ORIGINS.join(','),
    '--jwks-url',
    'https://id.example/.well-known/jwks.json',
    '--jwt-issuer',
    'https://id.example/',
    '--jwt-audience',
    'pixelpipe-test',
    ...extra,
  ];
}

/**
 * mode "fake": a stateful fake gcloud. mode "forbidden": a gcloud that records that it was called
 * and fails (for --dry-run and argument validation tests).
 */
export function makeWorld(mode: 'fake' | 'forbidden' = 'fake'): World {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixelpipe-deploy-test-'));
  const bin = path.join(dir, 'bin');
  const sourceDir = path.join(dir, 'dist-gcp');
  fs.mkdirSync(bin);
  for (const fn of ['upload', 'images', 'process', 'notify', 'cascade']) {
    fs.mkdirSync(path.join(sourceDir, fn), { recursive: true });
    fs.writeFileSync(path.join(sourceDir, fn, 'index.js'), `exports.${fn} = () => {};\n`);
    fs.writeFileSync(path.join(sourceDir, fn, 'package.json'), JSON.stringify({ main: 'index.js' }));
  }
  const logPath = path.join(dir, 'gcloud-calls.jsonl');
  const statePath = path.join(dir, 'gcloud-state.json');
  const marker = path.join(dir, 'forbidden-gcloud-was-called');
  const gcloud = path.join(bin, 'gcloud');
  if (mode === 'fake') {
    fs.writeFileSync(gcloud, `#!/usr/bin/env bash\nexec node ${JSON.stringify(FAKE)} "$@"\n`);
  } else {
    fs.writeFileSync(gcloud, `#!/usr/bin/env bash\necho "$*" >> ${JSON.stringify(marker)}\necho "gcloud must not be called" >&2\nexit 97\n`);
  }
  fs.chmodSync(gcloud, 0o755);

  const readCalls = (): Call[] =>
    fs.existsSync(logPath)
      ? fs
          .readFileSync(logPath, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as Call)
      : [];

  return {
    dir,
    sourceDir,
    statePath,
    run(script, args, extraEnv = {}) {
      const before = readCalls().length;
      const env: NodeJS.ProcessEnv = {
        PATH: `${bin}:${process.env.PATH}`,
        HOME: dir,
        TMPDIR: dir,
        FAKE_GCLOUD_LOG: logPath,
        FAKE_GCLOUD_STATE: statePath,
        PP_RETRY_SLEEP: '0',
        PP_RETRIES: '1',
        ...extraEnv,
      };
      const res = spawnSync('bash', [script, ...args], { cwd: REPO, env, encoding: 'utf8', timeout: 170_000 });
      if (res.error) throw res.error;
      let calls = readCalls().slice(before);
      if (mode === 'forbidden' && fs.existsSync(marker)) {
        calls = fs
          .readFileSync(marker, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => ({ argv: l.split(' '), command: null, files: {}, exit: 97 }));
      }
      return { status: res.status, stdout: res.stdout, stderr: res.stderr, calls };
    },
    state: () => JSON.parse(fs.readFileSync(statePath, 'utf8')) as FakeGcloudState,
    stateText: () => fs.readFileSync(statePath, 'utf8'),
    writeState: (state) => fs.writeFileSync(statePath, JSON.stringify(state, null, 2) + '\n'),
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

const READ_ONLY = /(^| )(describe|list|get-iam-policy|service-agent)$/;

/** Calls that can change the emulated project (everything but describe/list/get-iam-policy). */
export function mutating(calls: Call[]): Call[] {
  return calls.filter((c) => !(c.command && READ_ONLY.test(c.command)));
}

export function callsOf(calls: Call[], command: string): Call[] {
  return calls.filter((c) => c.command === command);
}

/** Value(s) of --name=value flags of one call. */
export function flagValues(call: Call, name: string): string[] {
  const prefix = `--${name}=`;
  return call.argv.filter((a) => a.startsWith(prefix)).map((a) => a.slice(prefix.length));
}

export function flag(call: Call, name: string): string | undefined {
  return flagValues(call, name)[0];
}

export function hasFlag(call: Call, name: string): boolean {
  return call.argv.includes(`--${name}`) || flagValues(call, name).length > 0;
}

export function functionDeploy(calls: Call[], name: string): Call {
  const deploys = callsOf(calls, 'functions deploy').filter((c) => c.argv[2] === name);
  if (deploys.length !== 1) throw new Error(`expected one deploy of ${name}, got ${deploys.length}`);
  return deploys[0];
}

/** Every IAM policy of the emulated project, labelled by resource. */
export function allPolicies(state: FakeGcloudState): Array<{ resource: string; bindings: Binding[] }> {
  const out: Array<{ resource: string; bindings: Binding[] }> = [{ resource: 'project', bindings: state.projectIam.bindings }];
  const labelled: Array<[string, Record<string, { iam: Policy }>]> = [
    ['bucket', state.buckets],
    ['topic', state.topics],
    ['subscription', state.subscriptions],
    ['serviceAccount', state.serviceAccounts],
    ['runService', state.runServices],
  ];
  for (const [label, resources] of labelled) for (const [k, v] of Object.entries(resources)) out.push({ resource: `${label}:${k}`, bindings: v.iam.bindings });
  return out;
}

/** [resource, role, conditionTitle] of every grant to member. */
export function grantsOf(state: FakeGcloudState, member: string): Array<[string, string, string]> {
  const out: Array<[string, string, string]> = [];
  for (const p of allPolicies(state)) {
    for (const b of p.bindings) if (b.members.includes(member)) out.push([p.resource, b.role, b.condition?.title ?? '']);
  }
  return out.sort();
}
