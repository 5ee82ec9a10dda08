/**
 * Static checks of the deployment files: Knative services, Dockerfile, .dockerignore, infra/gcp JSON,
 * and the scripts themselves (syntax, executable bit, shellcheck when installed).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { REPO } from './helpers';

const FUNCTIONS = {
  upload: { signature: 'http', memory: '256Mi', timeout: 10, maxScale: '20' },
  process: { signature: 'cloudevent', memory: '1Gi', timeout: 120, maxScale: '20' },
  notify: { signature: 'cloudevent', memory: '256Mi', timeout: 30, maxScale: '10' },
  images: { signature: 'http', memory: '256Mi', timeout: 10, maxScale: '20' },
  cascade: { signature: 'cloudevent', memory: '256Mi', timeout: 60, maxScale: '10' },
} as const;
type Fn = keyof typeof FUNCTIONS;

const knativeDir = path.join(REPO, 'infra', 'knative');
const knativeFiles = fs
  .readdirSync(knativeDir)
  .filter((f) => /\.ya?ml$/.test(f))
  .sort();

/** The parts of a Knative Service these tests read; a missing part fails the assertion that reads it. */
interface KnativeContainer {
  image: string;
  env?: Array<{ name: string; value: string }>;
  resources: { limits: { memory: string; cpu?: string } };
}
interface KnativeService {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec: {
    template: {
      metadata: { annotations: Record<string, string> };
      spec: { containers: KnativeContainer[]; timeoutSeconds: number; containerConcurrency?: number };
    };
  };
}

function loadKnative(file: string): KnativeService[] {
  const docs = parseAllDocuments(fs.readFileSync(path.join(knativeDir, file), 'utf8'));
  for (const d of docs) expect(d.errors).toEqual([]);
  return docs.map((d) => d.toJS() as KnativeService);
}

const envOf = (container: KnativeContainer): Record<string, string> => Object.fromEntries((container.env ?? []).map((e) => [e.name, e.value]));

describe('infra/knative', () => {
  test('has one service file per deployed function', () => {
    expect(knativeFiles).toEqual(['service-cascade.yaml', 'service-images.yaml', 'service-notify.yaml', 'service-process.yaml', 'service-upload.yaml']);
    // The same five functions deploy-gcp.sh deploys, each with its own bundle.
    const deploy = fs.readFileSync(path.join(REPO, 'scripts', 'deploy-gcp.sh'), 'utf8');
    for (const fn of Object.keys(FUNCTIONS)) {
      expect(deploy).toMatch(new RegExp(`deploy_function ${fn} `));
    }
  });

  test.each(knativeFiles)('%s is a Knative Serving v1 Service for its function', (file) => {
    const docs = loadKnative(file);
    expect(docs).toHaveLength(1);
    const svc = docs[0];
    expect(svc.apiVersion).toBe('serving.knative.dev/v1');
    expect(svc.kind).toBe('Service');
    const fn = /^service-(\w+)\.yaml$/.exec(file)![1] as Fn;
    const spec = FUNCTIONS[fn];
    expect(svc.metadata.name).toBe(`pixelpipe-${fn}`);
    const tmpl = svc.spec.template;
    expect(tmpl.spec.containers).toHaveLength(1);
    const c = tmpl.spec.containers[0];
    expect(c.image).toBe('IMAGE');
    const env = envOf(c);
    expect(env.FUNCTION_TARGET).toBe(fn);
    expect(env.FUNCTION_SIGNATURE_TYPE).toBe(spec.signature);
    expect(env.PIXELPIPE_AUTH_MODE).toBe('jwt');
    expect(Object.values(env).every((v) => typeof v === 'string')).toBe(true);
    expect(env.PORT).toBeUndefined(); // reserved on Cloud Run; the platform sets it
    expect(c.resources.limits.memory).toBe(spec.memory);
    expect(c.resources.limits.cpu).toBeDefined();
    expect(tmpl.spec.timeoutSeconds).toBe(spec.timeout);
    expect(env.PIXELPIPE_FUNCTION_TIMEOUT_SECONDS).toBe(String(spec.timeout));
    expect(tmpl.metadata.annotations['autoscaling.knative.dev/maxScale']).toBe(spec.maxScale);
    expect(JSON.stringify(svc)).not.toMatch(/allUsers|allAuthenticatedUsers/);
  });

  test('process handles one event per instance and keeps malloc arenas low', () => {
    const [svc] = loadKnative('service-process.yaml');
    expect(svc.spec.template.spec.containerConcurrency).toBe(1);
    expect(envOf(svc.spec.template.spec.containers[0]).MALLOC_ARENA_MAX).toBe('2');
  });

  test('upload and images sign with their own service accounts; notify and cascade know their project', () => {
    const [upload] = loadKnative('service-upload.yaml');
    expect(envOf(upload.spec.template.spec.containers[0]).PIXELPIPE_SIGNER_SERVICE_ACCOUNT).toBe('pixelpipe-upload@PROJECT.iam.gserviceaccount.com');
    const [images] = loadKnative('service-images.yaml');
    expect(envOf(images.spec.template.spec.containers[0]).PIXELPIPE_SIGNER_SERVICE_ACCOUNT).toBe('pixelpipe-images@PROJECT.iam.gserviceaccount.com');
    const [cascade] = loadKnative('service-cascade.yaml');
    expect(envOf(cascade.spec.template.spec.containers[0]).GOOGLE_CLOUD_PROJECT).toBe('PROJECT');
    const [notify] = loadKnative('service-notify.yaml');
    expect(envOf(notify.spec.template.spec.containers[0]).GOOGLE_CLOUD_PROJECT).toBe('PROJECT');
  });

  test('README explains the IMAGE placeholder and the trigger wiring', () => {
    const readme = fs.readFileSync(path.join(knativeDir, 'README.md'), 'utf8');
    for (const s of [
      'IMAGE',
      'eventarc triggers create',
      'google.cloud.storage.object.v1.finalized',
      'google.cloud.storage.object.v1.deleted',
      'google.cloud.pubsub.topic.v1.messagePublished',
      '--no-invoker-iam-check',
      'Knative Eventing',
    ]) {
      expect(readme).toContain(s);
    }
  });
});

describe('Dockerfile', () => {
  const text = fs.readFileSync(path.join(REPO, 'Dockerfile'), 'utf8');
  // Join continuation lines, drop comments.
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const instr = (name: string) => lines.filter((l) => l.toUpperCase().startsWith(`${name} `));

  test('is multi-stage on node:22-slim with npm ci and npm run build', () => {
    expect(text).toMatch(/^ARG NODE_IMAGE=node:22-slim$/m);
    const froms = instr('FROM');
    expect(froms.length).toBeGreaterThanOrEqual(2);
    for (const f of froms) expect(f).toMatch(/^FROM \$\{NODE_IMAGE\} AS \w+$/);
    expect(instr('RUN').some((r) => r.includes('npm ci'))).toBe(true);
    expect(instr('RUN').some((r) => r.includes('npm run build'))).toBe(true);
  });

  test('the runtime stage copies only the built bundles and runtime node_modules, and runs as non-root', () => {
    const lastFrom = lines
      .map((l, i) => (l.startsWith('FROM ') ? i : -1))
      .filter((i) => i >= 0)
      .pop()!;
    const runtime = lines.slice(lastFrom);
    const copies = runtime.filter((l) => l.startsWith('COPY '));
    expect(copies.every((c) => c.includes('--from='))).toBe(true);
    expect(copies.some((c) => /\/dist\/gcp \.\/dist\/gcp$/.test(c))).toBe(true);
    expect(copies.some((c) => /node_modules \.\/node_modules$/.test(c))).toBe(true);
    const users = runtime.filter((l) => l.startsWith('USER '));
    expect(users.length).toBeGreaterThan(0);
    expect(users[users.length - 1]).not.toMatch(/^USER (root|0)(:|$)/);
  });

  test('CMD starts the Functions Framework on dist/gcp/<function> with the FUNCTION_TARGET entry point', () => {
    const cmd = instr('CMD');
    expect(cmd).toHaveLength(1);
    const argv = JSON.parse(cmd[0].slice(4)) as string[];
    const shell = argv.join(' ');
    expect(shell).toContain('functions-framework');
    expect(shell).toContain('--source="dist/gcp/${FUNCTION:-$FUNCTION_TARGET}"');
    expect(shell).toContain('--target="$FUNCTION_TARGET"');
    expect(shell).toContain('--signature-type="$FUNCTION_SIGNATURE_TYPE"');
  });

  test('every Knative FUNCTION_TARGET is a bundle the image builds and checks', () => {
    const targets = knativeFiles.map((f) => envOf(loadKnative(f)[0].spec.template.spec.containers[0]).FUNCTION_TARGET).sort();
    expect(targets).toEqual(['cascade', 'images', 'notify', 'process', 'upload']);
    for (const t of targets) expect(text).toContain(`test -f dist/gcp/${t}/index.js`);
  });

  test("the image installs exactly the bundles' runtime dependencies at their locked versions", () => {
    expect(text).toContain('scripts/lib/runtime-package.cjs');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { runtimePackage } = require(path.join(REPO, 'scripts', 'lib', 'runtime-package.cjs')) as {
      runtimePackage: (lock: unknown, dir: string, functions: string[]) => { dependencies: Record<string, string> };
    };
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixelpipe-bundles-'));
    try {
      const deps: Record<string, Record<string, string>> = { upload: {}, process: { sharp: '^0', 'heic-decode': '^2' }, notify: {} };
      for (const [fn, d] of Object.entries(deps)) {
        fs.mkdirSync(path.join(dir, fn));
        fs.writeFileSync(path.join(dir, fn, 'package.json'), JSON.stringify({ main: 'index.js', dependencies: d }));
      }
      const lock = {
        packages: {
          'node_modules/sharp': { version: '0.35.5' },
          'node_modules/heic-decode': { version: '2.1.0' },
          'node_modules/@google-cloud/functions-framework': { version: '5.0.5' },
        },
      };
      expect(runtimePackage(lock, dir, ['upload', 'process', 'notify']).dependencies).toEqual({
        '@google-cloud/functions-framework': '5.0.5',
        'heic-decode': '2.1.0',
        sharp: '0.35.5',
      });
      delete (lock.packages as Record<string, unknown>)['node_modules/sharp'];
      expect(() => runtimePackage(lock, dir, ['process'])).toThrow(/sharp is missing/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('.dockerignore keeps local builds, dependencies and secrets out of the context', () => {
    const ignore = fs
      .readFileSync(path.join(REPO, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim());
    for (const p of ['node_modules', 'dist', '.git', '.env']) expect(ignore).toContain(p);
    // what the build stage needs must stay in the context
    for (const p of ['package.json', 'package-lock.json', 'shared', 'functions', 'scripts']) expect(ignore).not.toContain(p);
  });
});

describe('infra/gcp', () => {
  const iam = JSON.parse(fs.readFileSync(path.join(REPO, 'infra', 'gcp', 'iam.json'), 'utf8')) as {
    serviceAccounts: Record<string, unknown>;
    customRoles: Record<string, { id: string; permissions: string[]; why: unknown }>;
    bindings: Array<{ member: string; role: string; why: unknown; resource: { type: string; name: string } }>;
  };

  test('iam.json: one service account per function plus the trigger identity; every reference resolves', () => {
    expect(Object.keys(iam.serviceAccounts).sort()).toEqual(['cascade', 'images', 'notify', 'process', 'trigger', 'upload']);
    for (const b of iam.bindings) {
      for (const ref of [b.member, b.resource.name].filter((r) => typeof r === 'string' && r.startsWith('sa:'))) {
        expect(iam.serviceAccounts[ref.slice(3)]).toBeDefined();
      }
      if (b.role.startsWith('custom:')) expect(iam.customRoles[b.role.slice('custom:'.length)]).toBeDefined();
      else expect(b.role).toMatch(/^roles\//);
      expect(typeof b.why).toBe('string');
    }
    // Every custom role is used, names single permissions (no wildcard) and says why it exists.
    for (const [key, role] of Object.entries(iam.customRoles)) {
      expect(iam.bindings.some((b) => b.role === `custom:${key}`)).toBe(true);
      for (const p of role.permissions) expect(p).toMatch(/^storage\.objects\.[a-z]+$/);
      expect(typeof role.why).toBe('string');
    }
    expect(JSON.stringify(iam.bindings)).not.toMatch(/allUsers|allAuthenticatedUsers|roles\/(owner|editor|viewer)"/);
  });

  test('iam.json: token creator only on a service account for itself (upload, images) or for the Pub/Sub agent (trigger)', () => {
    const tc = iam.bindings.filter((b) => b.role === 'roles/iam.serviceAccountTokenCreator');
    expect(tc.map((b) => [b.member, b.resource.type, b.resource.name])).toEqual([
      ['sa:upload', 'serviceAccount', 'sa:upload'],
      ['sa:images', 'serviceAccount', 'sa:images'],
      ['agent:pubsub', 'serviceAccount', 'sa:trigger'],
    ]);
  });

  test('the JSON helper renders the CORS template with the given origins only and rejects wildcards', () => {
    const helper = path.join(REPO, 'scripts', 'lib', 'gcp-json.cjs');
    const cors = path.join(REPO, 'infra', 'gcp', 'cors.json');
    const ok = spawnSync('node', [helper, 'cors', cors, 'originals', 'https://a.example,https://b.example'], { encoding: 'utf8' });
    expect(ok.status).toBe(0);
    const rules = JSON.parse(ok.stdout) as Array<{ origin: string[] }>;
    expect(rules[0].origin).toEqual(['https://a.example', 'https://b.example']);
    expect(ok.stdout).not.toContain('*');
    const empty = spawnSync('node', [helper, 'cors', cors, 'variants', ''], { encoding: 'utf8' });
    expect(JSON.parse(empty.stdout)).toEqual([]);
    const star = spawnSync('node', [helper, 'cors', cors, 'originals', '*'], { encoding: 'utf8' });
    expect(star.status).not.toBe(0);
  });

  test('lifecycle files are valid JSON with the expected rules', () => {
    type Lifecycle = { rule: Array<{ action: { type: string } }> };
    const read = (name: string) => JSON.parse(fs.readFileSync(path.join(REPO, 'infra', 'gcp', name), 'utf8')) as Lifecycle;
    expect(read('lifecycle-originals.json').rule.map((r) => r.action.type)).toEqual(['AbortIncompleteMultipartUpload']);
    expect(
      read('lifecycle-variants.json')
        .rule.map((r) => r.action.type)
        .sort(),
    ).toEqual(['AbortIncompleteMultipartUpload', 'Delete']);
  });
});

describe('scripts', () => {
  const scripts = ['scripts/deploy-gcp.sh', 'scripts/teardown-gcp.sh', 'scripts/lib/gcp-common.sh'];

  test.each(scripts)('%s parses (bash -n)', (s) => {
    const r = spawnSync('bash', ['-n', path.join(REPO, s)], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  test('deploy and teardown are executable and strict', () => {
    for (const s of ['scripts/deploy-gcp.sh', 'scripts/teardown-gcp.sh']) {
      const file = path.join(REPO, s);
      expect(fs.statSync(file).mode & 0o111).not.toBe(0);
      expect(fs.readFileSync(file, 'utf8')).toMatch(/^#!\/usr\/bin\/env bash\n[\s\S]*^set -euo pipefail$/m);
    }
  });

  // .ci/run installs shellcheck, so on CI a missing one is a broken setup, not a reason to skip.
  const hasShellcheck = spawnSync('shellcheck', ['--version']).status === 0;
  test('shellcheck is clean on the scripts and .ci/run (skips loudly without shellcheck; fails on CI)', () => {
    if (!hasShellcheck) {
      const msg = 'SKIPPED: shellcheck is not installed (apt-get install shellcheck): the shell scripts were not linted';
      if (process.env.CI === 'true') throw new Error(msg);
      console.warn(`\n\n!!! ${msg} !!!\n`);
      return;
    }
    const r = spawnSync('shellcheck', ['-x', ...scripts, '.ci/run'], { cwd: REPO, encoding: 'utf8' });
    expect(r.stdout).toBe('');
    expect(r.status).toBe(0);
  });
});
