import { parse as parseYaml } from 'yaml';
import {
  DEPLOY,
  ORIGINALS,
  ORIGINS,
  PROJECT,
  REGION,
  SA,
  VARIANTS,
  allPolicies,
  callsOf,
  deployArgs,
  flag,
  flagValues,
  functionDeploy,
  grantsOf,
  hasFlag,
  makeWorld,
  mutating,
  type RunResult,
  type World,
} from './helpers';

jest.setTimeout(180_000);

const STORAGE_AGENT = 'serviceAccount:service-123456789012@gs-project-accounts.iam.gserviceaccount.com';
const PUBSUB_AGENT = 'serviceAccount:service-123456789012@gcp-sa-pubsub.iam.gserviceaccount.com';
/** The storage.objects permissions of the predefined roles the deployment binds on buckets (Google's role reference). */
const PREDEFINED: Record<string, string[]> = {
  'roles/storage.objectViewer': ['storage.objects.get', 'storage.objects.list'],
  'roles/storage.objectCreator': ['storage.objects.create'],
};

describe('scripts/deploy-gcp.sh against a stateful fake gcloud', () => {
  let world: World;
  let first: RunResult;
  let second: RunResult;
  let stateAfterFirst: string;
  let stateAfterSecond: string;

  beforeAll(() => {
    world = makeWorld('fake');
    first = world.run(DEPLOY, deployArgs(world));
    stateAfterFirst = first.status === 0 ? world.stateText() : '';
    second = world.run(DEPLOY, deployArgs(world));
    stateAfterSecond = second.status === 0 ? world.stateText() : '';
  });

  afterAll(() => world.cleanup());

  test('first run succeeds, every gcloud call succeeds, and it prints the upload URL', () => {
    expect(first.stderr).not.toMatch(/^error:/m);
    expect(first.status).toBe(0);
    expect(first.calls.filter((c) => c.exit !== 0 && !/describe|list/.test(c.command ?? ''))).toEqual([]);
    expect(first.stdout).toContain('Upload URL:       https://pixelpipe-upload-fake-europe-west1.a.run.app');
    expect(callsOf(first.calls, 'functions describe').some((c) => flag(c, 'format') === 'value(serviceConfig.uri)')).toBe(true);
    expect(first.stdout).toMatch(/gcloud pubsub subscriptions create .* --topic=pixelpipe-events/);
  });

  test('every gcloud call names the project explicitly', () => {
    for (const c of first.calls) {
      const named = flag(c, 'project') === PROJECT || (c.argv[0] === 'projects' && c.argv[2] === PROJECT);
      expect({ argv: c.argv, named }).toEqual({ argv: c.argv, named: true });
    }
  });

  test('enables the needed APIs', () => {
    const enabled = world.state().enabledServices;
    for (const s of ['cloudfunctions', 'run', 'eventarc', 'pubsub', 'storage', 'iam', 'cloudbuild', 'artifactregistry', 'iamcredentials']) {
      expect(enabled).toContain(`${s}.googleapis.com`);
    }
    // Analysis is off by default: the Vision API stays disabled.
    expect(enabled).not.toContain('vision.googleapis.com');
    // storage was already enabled in the fake project: only the missing ones are enabled
    const enable = callsOf(first.calls, 'services enable');
    expect(enable).toHaveLength(1);
    expect(enable[0].argv).not.toContain('storage.googleapis.com');
  });

  test('deploys five gen-2 nodejs22 functions with their entry points, sources and own service accounts', () => {
    for (const fn of ['upload', 'images', 'process', 'notify', 'cascade'] as const) {
      const c = functionDeploy(first.calls, `pixelpipe-${fn}`);
      expect(c.argv).toContain('--gen2');
      expect(flag(c, 'runtime')).toBe('nodejs22');
      expect(flag(c, 'region')).toBe(REGION);
      expect(flag(c, 'entry-point')).toBe(fn);
      expect(flag(c, 'source')).toBe(`${world.sourceDir}/${fn}`);
      expect(flag(c, 'service-account')).toBe(SA[fn]);
      expect(hasFlag(c, 'env-vars-file')).toBe(true);
      expect(hasFlag(c, 'set-env-vars')).toBe(false);
      expect(c.argv).toContain('--no-allow-unauthenticated');
      expect(c.argv).not.toContain('--allow-unauthenticated');
    }
  });

  test('process: storage finalized trigger on the originals bucket, sizing, retry', () => {
    const c = functionDeploy(first.calls, 'pixelpipe-process');
    expect(flagValues(c, 'trigger-event-filters').sort()).toEqual([`bucket=${ORIGINALS}`, 'type=google.cloud.storage.object.v1.finalized']);
    expect(flag(c, 'trigger-location')).toBe(REGION);
    expect(flag(c, 'trigger-service-account')).toBe(SA.trigger);
    expect(flag(c, 'memory')).toBe('1Gi');
    expect(flag(c, 'cpu')).toBe('1');
    expect(flag(c, 'timeout')).toBe('120s');
    expect(flag(c, 'concurrency')).toBe('1');
    expect(flag(c, 'max-instances')).toBe('20');
    expect(c.argv).toContain('--retry');
    expect(hasFlag(c, 'trigger-http')).toBe(false);
    expect(hasFlag(c, 'trigger-topic')).toBe(false);
  });

  test('cascade: storage deleted trigger on the originals bucket, sizing, retry', () => {
    const c = functionDeploy(first.calls, 'pixelpipe-cascade');
    expect(flagValues(c, 'trigger-event-filters').sort()).toEqual([`bucket=${ORIGINALS}`, 'type=google.cloud.storage.object.v1.deleted']);
    expect(flag(c, 'trigger-location')).toBe(REGION);
    expect(flag(c, 'trigger-service-account')).toBe(SA.trigger);
    expect(flag(c, 'memory')).toBe('256Mi');
    expect(flag(c, 'timeout')).toBe('60s');
    expect(flag(c, 'max-instances')).toBe('10');
    expect(flag(c, 'ingress-settings')).toBe('internal-only');
    expect(c.argv).toContain('--retry');
    expect(hasFlag(c, 'trigger-http')).toBe(false);
  });

  test('notify: triggered by the manifests topic, sizing, retry', () => {
    const c = functionDeploy(first.calls, 'pixelpipe-notify');
    expect(flag(c, 'trigger-topic')).toBe('pixelpipe-manifests');
    expect(flag(c, 'trigger-service-account')).toBe(SA.trigger);
    expect(flag(c, 'memory')).toBe('256Mi');
    expect(flag(c, 'timeout')).toBe('30s');
    expect(flag(c, 'max-instances')).toBe('10');
    expect(c.argv).toContain('--retry');
    expect(hasFlag(c, 'trigger-event-filters')).toBe(false);
  });

  test('upload: HTTP, sizing, no retry, reachable through --no-invoker-iam-check instead of allUsers', () => {
    const c = functionDeploy(first.calls, 'pixelpipe-upload');
    expect(c.argv).toContain('--trigger-http');
    expect(flag(c, 'memory')).toBe('256Mi');
    expect(flag(c, 'timeout')).toBe('10s');
    expect(flag(c, 'max-instances')).toBe('20');
    expect(c.argv).not.toContain('--retry');
    const update = callsOf(first.calls, 'run services update');
    expect(update.map((u) => u.argv[3])).toEqual(['pixelpipe-upload', 'pixelpipe-images']);
    for (const u of update) {
      expect(u.argv).toContain('--no-invoker-iam-check');
      expect(flag(u, 'region')).toBe(REGION);
    }
    expect(world.state().runServices['pixelpipe-upload'].annotations).toEqual({ 'run.googleapis.com/invoker-iam-disabled': 'true' });
  });

  test('images: HTTP, sizing, no retry, deployed before upload (whose statusUrl points at it), reachable without allUsers', () => {
    const c = functionDeploy(first.calls, 'pixelpipe-images');
    expect(c.argv).toContain('--trigger-http');
    expect(flag(c, 'memory')).toBe('256Mi');
    expect(flag(c, 'timeout')).toBe('10s');
    expect(flag(c, 'max-instances')).toBe('20');
    expect(c.argv).not.toContain('--retry');
    expect(first.calls.indexOf(c)).toBeLessThan(first.calls.indexOf(functionDeploy(first.calls, 'pixelpipe-upload')));
    expect(world.state().runServices['pixelpipe-images'].annotations).toEqual({ 'run.googleapis.com/invoker-iam-disabled': 'true' });
    expect(world.state().runServices['pixelpipe-images'].iam.bindings).toEqual([]);
  });

  test('no allUsers / allAuthenticatedUsers anywhere: not in any argument, file or resulting policy', () => {
    const everything = JSON.stringify(first.calls) + JSON.stringify(second.calls) + stateAfterSecond + first.stdout;
    expect(everything).not.toMatch(/allUsers|allAuthenticatedUsers/);
    for (const p of allPolicies(world.state())) {
      for (const b of p.bindings) expect(b.members.filter((m) => /^all/.test(m))).toEqual([]);
    }
  });

  test('functions get their configuration through --env-vars-file', () => {
    const env = (fn: string) => {
      const c = functionDeploy(first.calls, `pixelpipe-${fn}`);
      return parseYaml(c.files['--env-vars-file'] as string) as Record<string, string>;
    };
    for (const fn of ['upload', 'images', 'process', 'notify', 'cascade']) {
      const e = env(fn);
      expect(e).toMatchObject({
        NODE_ENV: 'production',
        GOOGLE_CLOUD_PROJECT: PROJECT,
        PIXELPIPE_ORIGINALS_BUCKET: ORIGINALS,
        PIXELPIPE_VARIANTS_BUCKET: VARIANTS,
        PIXELPIPE_TOPIC: 'pixelpipe-events',
        PIXELPIPE_AUTH_MODE: 'jwt',
        PIXELPIPE_JWKS_URL: 'https://id.example/.well-known/jwks.json',
        PIXELPIPE_JWT_ISSUER: 'https://id.example/',
        PIXELPIPE_JWT_AUDIENCE: 'pixelpipe-test',
        PIXELPIPE_CORS_ORIGINS: ORIGINS.join(','),
        PIXELPIPE_ORIGINALS_PREFIX: 'originals/',
        PIXELPIPE_MANIFESTS_PREFIX: 'manifests/',
      });
      for (const v of Object.values(e)) expect(typeof v).toBe('string');
    }
    expect(env('upload').PIXELPIPE_SIGNER_SERVICE_ACCOUNT).toBe(SA.upload);
    expect(env('images').PIXELPIPE_SIGNER_SERVICE_ACCOUNT).toBe(SA.images);
    // statusUrl in upload responses: the images function's URL.
    const imagesUri = `https://pixelpipe-images-fake-${REGION}.a.run.app`;
    expect(env('upload').PIXELPIPE_STATUS_URL_BASE).toBe(`${imagesUri}/images`);
    expect(env('upload').PIXELPIPE_STATUS_URL_BASE).toMatch(/^https:\/\/.+\/images$/);
    expect(env('process').MALLOC_ARENA_MAX).toBe('2');
    expect(env('notify').MALLOC_ARENA_MAX).toBeUndefined();
    // Each function's deadline is its own --timeout.
    for (const fn of ['upload', 'images', 'process', 'notify', 'cascade']) {
      expect(`${env(fn).PIXELPIPE_FUNCTION_TIMEOUT_SECONDS}s`).toBe(flag(functionDeploy(first.calls, `pixelpipe-${fn}`), 'timeout'));
    }
    expect(env('process').PIXELPIPE_FUNCTION_TIMEOUT_SECONDS).toBe('120');
  });

  test('buckets are private with CORS limited to the given origins and lifecycle rules', () => {
    const state = world.state();
    for (const b of [ORIGINALS, VARIANTS]) {
      expect(state.buckets[b]).toMatchObject({ ubla: true, pap: true, location: REGION });
    }
    const corsFiles = first.calls.flatMap((c) => (c.files['--cors-file'] !== undefined ? [c.files['--cors-file'] as string] : []));
    expect(corsFiles).toHaveLength(2);
    for (const text of corsFiles) {
      expect(text).not.toContain('*');
      const rules = JSON.parse(text) as Array<{ origin: string[] }>;
      for (const r of rules) expect(r.origin).toEqual(ORIGINS);
    }
    expect(state.buckets[ORIGINALS].cors[0].method).toEqual(['PUT']);
    expect(state.buckets[VARIANTS].cors[0].method.sort()).toEqual(['GET', 'HEAD']);
    const variantsRules = state.buckets[VARIANTS].lifecycle.rule;
    expect(variantsRules).toContainEqual({ action: { type: 'Delete' }, condition: { age: 30, matchesPrefix: ['state/'] } });
    expect(variantsRules).toContainEqual({ action: { type: 'AbortIncompleteMultipartUpload' }, condition: { age: 1 } });
    expect(state.buckets[ORIGINALS].lifecycle.rule).toContainEqual({ action: { type: 'AbortIncompleteMultipartUpload' }, condition: { age: 1 } });
  });

  test('topics, dead-letter topics and their holding subscriptions exist', () => {
    const state = world.state();
    for (const t of [
      'pixelpipe-events',
      'pixelpipe-manifests',
      'pixelpipe-events-dlq',
      'pixelpipe-manifests-dlq',
      'pixelpipe-originals-dlq',
      'pixelpipe-deletions-dlq',
    ]) {
      expect(state.topics[t]).toBeDefined();
    }
    for (const t of ['pixelpipe-events-dlq', 'pixelpipe-manifests-dlq', 'pixelpipe-originals-dlq', 'pixelpipe-deletions-dlq']) {
      expect(state.subscriptions[`${t}-hold`]).toMatchObject({ topic: t });
    }
  });

  test('the trigger subscriptions dead-letter to their DLQ topics', () => {
    const state = world.state();
    const subs = Object.entries(state.subscriptions).filter(([name]) => name.startsWith('eventarc-'));
    expect(subs).toHaveLength(3);
    const byTopic: Record<string, number | undefined> = Object.fromEntries(
      subs.map(([, s]) => [s.deadLetterPolicy?.deadLetterTopic ?? '', s.deadLetterPolicy?.maxDeliveryAttempts]),
    );
    expect(byTopic).toEqual({
      [`projects/${PROJECT}/topics/pixelpipe-originals-dlq`]: 10,
      [`projects/${PROJECT}/topics/pixelpipe-manifests-dlq`]: 10,
      [`projects/${PROJECT}/topics/pixelpipe-deletions-dlq`]: 10,
    });
    for (const [, s] of subs) {
      expect(s.iam.bindings).toEqual([{ role: 'roles/pubsub.subscriber', members: [PUBSUB_AGENT] }]);
    }
  });

  test('GCS notification: variants bucket, manifests/ prefix, OBJECT_FINALIZE only, to the manifests topic', () => {
    const create = callsOf(first.calls, 'storage buckets notifications create');
    expect(create).toHaveLength(1);
    expect(create[0].argv[4]).toBe(`gs://${VARIANTS}`);
    expect(flag(create[0], 'object-prefix')).toBe('manifests/');
    expect(flag(create[0], 'event-types')).toBe('OBJECT_FINALIZE');
    expect(flag(create[0], 'topic')).toBe(`projects/${PROJECT}/topics/pixelpipe-manifests`);
    expect(flag(create[0], 'payload-format')).toBe('json');
    expect(world.state().buckets[VARIANTS].notifications).toEqual([
      expect.objectContaining({
        object_name_prefix: 'manifests/',
        event_types: ['OBJECT_FINALIZE'],
        topic: `//pubsub.googleapis.com/projects/${PROJECT}/topics/pixelpipe-manifests`,
      }),
    ]);
    expect(world.state().buckets[ORIGINALS].notifications).toEqual([]);
  });

  test('upload SA: objectCreator on originals/ only, and signBlob (token creator) on itself only', () => {
    const state = world.state();
    expect(grantsOf(state, `serviceAccount:${SA.upload}`)).toEqual([
      [`bucket:${ORIGINALS}`, 'roles/storage.objectCreator', 'pixelpipe-originals-prefix-only'],
      [`serviceAccount:${SA.upload}`, 'roles/iam.serviceAccountTokenCreator', ''],
    ]);
    const creator = state.buckets[ORIGINALS].iam.bindings.find((b) => b.role === 'roles/storage.objectCreator');
    expect(creator?.condition?.expression).toBe(`resource.name.startsWith("projects/_/buckets/${ORIGINALS}/objects/originals/")`);
    // No other token creator grant for the upload SA, and none on any account but upload, images (each on itself) and trigger.
    for (const p of allPolicies(state)) {
      for (const b of p.bindings.filter((x) => x.role === 'roles/iam.serviceAccountTokenCreator')) {
        expect([`serviceAccount:${SA.upload}`, `serviceAccount:${SA.images}`, `serviceAccount:${SA.trigger}`]).toContain(p.resource);
        if (p.resource === `serviceAccount:${SA.upload}`) expect(b.members).toEqual([`serviceAccount:${SA.upload}`]);
      }
    }
  });

  /** Full name of one of the deployment's custom roles (infra/gcp/iam.json: customRoles). */
  const role = (id: string) => `projects/${PROJECT}/roles/pixelpipe.${id}`;

  test('custom roles: exactly the permissions each function needs, stage GA, no wildcard', () => {
    const roles = world.state().customRoles;
    expect(Object.fromEntries(Object.entries(roles).map(([id, r]) => [id, r.includedPermissions]))).toEqual({
      'pixelpipe.derivedRemover': ['storage.objects.delete', 'storage.objects.get'],
      'pixelpipe.objectLister': ['storage.objects.list'],
      'pixelpipe.originalsDeleter': ['storage.objects.delete'],
      'pixelpipe.outputWriter': ['storage.objects.create', 'storage.objects.delete', 'storage.objects.get'],
    });
    for (const r of Object.values(roles)) {
      expect(r.stage).toBe('GA');
      expect(r.deleted).toBeUndefined();
      expect(r.title).toMatch(/^pixelpipe pixelpipe: /);
    }
    const creates = callsOf(first.calls, 'iam roles create');
    expect(creates.map((c) => c.argv[3]).sort()).toEqual(Object.keys(roles).sort());
    // Every custom role is created before the first binding that names it.
    const firstCustomBinding = first.calls.findIndex(
      (c) => /add-iam-policy-binding/.test(c.command ?? '') && flagValues(c, 'role').some((r) => r.includes('/roles/pixelpipe.')),
    );
    const lastCreate = Math.max(...creates.map((c) => first.calls.indexOf(c)));
    expect(firstCustomBinding).toBeGreaterThan(lastCreate);
  });

  test('process SA: read originals/, create/read/replace only variants/ manifests/ state/ (custom role), nothing at project level', () => {
    expect(grantsOf(world.state(), `serviceAccount:${SA.process}`)).toEqual([
      [`bucket:${ORIGINALS}`, 'roles/storage.objectViewer', 'pixelpipe-originals-prefix-only'],
      [`bucket:${VARIANTS}`, role('outputWriter'), 'pixelpipe-manifests-prefix-only'],
      [`bucket:${VARIANTS}`, role('outputWriter'), 'pixelpipe-state-prefix-only'],
      [`bucket:${VARIANTS}`, role('outputWriter'), 'pixelpipe-variants-prefix-only'],
    ]);
    // Conditioned on object names, so storage.objects.list (bucket-level) is not granted at all.
    const own = world.state().buckets[VARIANTS].iam.bindings.filter((b) => b.members.includes(`serviceAccount:${SA.process}`));
    expect(own.map((b) => b.condition?.expression).sort()).toEqual(
      ['manifests/', 'state/', 'variants/'].map((p) => `resource.name.startsWith("projects/_/buckets/${VARIANTS}/objects/${p}")`),
    );
    // Nothing on the originals bucket lets it delete (objectViewer is get/list only).
    expect(
      world
        .state()
        .buckets[ORIGINALS].iam.bindings.filter((b) => b.members.includes(`serviceAccount:${SA.process}`))
        .map((b) => b.role),
    ).toEqual(['roles/storage.objectViewer']);
  });

  test('images SA: reads manifests/ and variants/ (signed reads, signBlob on itself), lists originals, may only delete (custom role) under originals/', () => {
    const grants = grantsOf(world.state(), `serviceAccount:${SA.images}`);
    expect(grants).toEqual([
      [`bucket:${ORIGINALS}`, role('objectLister'), ''],
      [`bucket:${ORIGINALS}`, role('originalsDeleter'), 'pixelpipe-originals-prefix-only'],
      [`bucket:${VARIANTS}`, 'roles/storage.objectViewer', 'pixelpipe-manifests-prefix-only'],
      [`bucket:${VARIANTS}`, 'roles/storage.objectViewer', 'pixelpipe-variants-prefix-only'],
      [`serviceAccount:${SA.images}`, 'roles/iam.serviceAccountTokenCreator', ''],
    ]);
    const deleter = world.state().buckets[ORIGINALS].iam.bindings.find((b) => b.role === role('originalsDeleter'));
    expect(deleter?.condition?.expression).toBe(`resource.name.startsWith("projects/_/buckets/${ORIGINALS}/objects/originals/")`);
    const signer = allPolicies(world.state()).find((p) => p.resource === `serviceAccount:${SA.images}`);
    expect(signer?.bindings.flatMap((b) => b.members)).toEqual([`serviceAccount:${SA.images}`]);
  });

  test('notify SA: reads manifests/ and originals/ (does the original still exist?), publishes to the events topic only', () => {
    const grants = grantsOf(world.state(), `serviceAccount:${SA.notify}`);
    expect(grants).toEqual([
      [`bucket:${ORIGINALS}`, 'roles/storage.objectViewer', 'pixelpipe-originals-prefix-only'],
      [`bucket:${VARIANTS}`, 'roles/storage.objectViewer', 'pixelpipe-manifests-prefix-only'],
      ['topic:pixelpipe-events', 'roles/pubsub.publisher', ''],
    ]);
    expect(grants.filter(([, r]) => r === 'roles/pubsub.publisher').map(([r]) => r)).toEqual(['topic:pixelpipe-events']);
  });

  test('cascade SA: reads originals/ (never deletes them), lists the variants bucket, reads and deletes (never creates) its three prefixes, publishes to the events topic only', () => {
    const state = world.state();
    const grants = grantsOf(state, `serviceAccount:${SA.cascade}`);
    expect(grants).toEqual([
      [`bucket:${ORIGINALS}`, 'roles/storage.objectViewer', 'pixelpipe-originals-prefix-only'],
      [`bucket:${VARIANTS}`, role('derivedRemover'), 'pixelpipe-manifests-prefix-only'],
      [`bucket:${VARIANTS}`, role('derivedRemover'), 'pixelpipe-state-prefix-only'],
      [`bucket:${VARIANTS}`, role('derivedRemover'), 'pixelpipe-variants-prefix-only'],
      [`bucket:${VARIANTS}`, role('objectLister'), ''],
      ['topic:pixelpipe-events', 'roles/pubsub.publisher', ''],
    ]);
    // Who can delete what, from the permissions the bindings actually grant.
    const perms = (r: string): string[] => state.customRoles[r.replace(`projects/${PROJECT}/roles/`, '')]?.includedPermissions ?? PREDEFINED[r];
    const deleters = (bucket: string) =>
      state.buckets[bucket].iam.bindings
        .filter((b) => {
          const p = perms(b.role);
          if (!p) throw new Error(`test does not know the permissions of ${b.role}`);
          return p.includes('storage.objects.delete');
        })
        .flatMap((b) => b.members.map((m) => `${m} ${b.condition?.title ?? 'whole bucket'}`))
        .sort();
    // Originals: only the images API, only under originals/.
    expect(deleters(ORIGINALS)).toEqual([`serviceAccount:${SA.images} pixelpipe-originals-prefix-only`]);
    // Derived objects: the cascade, and the processor only because replacing an object needs delete.
    expect(deleters(VARIANTS)).toEqual(
      [SA.cascade, SA.process].flatMap((sa) => ['manifests', 'state', 'variants'].map((p) => `serviceAccount:${sa} pixelpipe-${p}-prefix-only`)).sort(),
    );
    // Nobody but the upload function can create originals.
    const creators = state.buckets[ORIGINALS].iam.bindings.filter((b) => (perms(b.role) ?? []).includes('storage.objects.create'));
    expect(creators.flatMap((b) => b.members)).toEqual([`serviceAccount:${SA.upload}`]);
  });

  test('trigger SA: eventReceiver on the project and run.invoker on process, notify and cascade only', () => {
    expect(grantsOf(world.state(), `serviceAccount:${SA.trigger}`)).toEqual([
      ['project', 'roles/eventarc.eventReceiver', ''],
      ['runService:pixelpipe-cascade', 'roles/run.invoker', ''],
      ['runService:pixelpipe-notify', 'roles/run.invoker', ''],
      ['runService:pixelpipe-process', 'roles/run.invoker', ''],
    ]);
    expect(world.state().runServices['pixelpipe-upload'].iam.bindings).toEqual([]);
  });

  test('service agents: storage publishes to the manifests topic (+ project for Eventarc), Pub/Sub only where needed', () => {
    const state = world.state();
    expect(grantsOf(state, STORAGE_AGENT)).toEqual([
      ['project', 'roles/pubsub.publisher', ''],
      ['topic:pixelpipe-manifests', 'roles/pubsub.publisher', ''],
    ]);
    const pubsub = grantsOf(state, PUBSUB_AGENT).map(([r, role]) => `${r} ${role}`);
    expect(pubsub.filter((g) => !g.startsWith('subscription:eventarc-'))).toEqual([
      `serviceAccount:${SA.trigger} roles/iam.serviceAccountTokenCreator`,
      'topic:pixelpipe-deletions-dlq roles/pubsub.publisher',
      'topic:pixelpipe-events-dlq roles/pubsub.publisher',
      'topic:pixelpipe-manifests-dlq roles/pubsub.publisher',
      'topic:pixelpipe-originals-dlq roles/pubsub.publisher',
    ]);
  });

  test('second run is idempotent: state byte-identical, only `functions deploy` (create-or-update) changes anything', () => {
    expect(second.status).toBe(0);
    expect(stateAfterFirst).not.toBe('');
    expect(stateAfterSecond).toBe(stateAfterFirst);
    const changes = mutating(second.calls).map((c) => `${c.command} ${c.argv[2]}`);
    expect(changes).toEqual([
      'functions deploy pixelpipe-images',
      'functions deploy pixelpipe-upload',
      'functions deploy pixelpipe-process',
      'functions deploy pixelpipe-notify',
      'functions deploy pixelpipe-cascade',
    ]);
    expect(callsOf(second.calls, 'storage buckets notifications list')).toHaveLength(1);
    expect(second.stderr).toMatch(/notification gs:\/\/.*-variants -> pixelpipe-manifests: exists/);
  });

  test('a third run repairs drift: a removed binding, a widened CORS, a lost dead-letter policy', () => {
    const state = world.state();
    const events = state.topics['pixelpipe-events'];
    events.iam.bindings = [];
    state.buckets[VARIANTS].cors = [{ origin: ['*'], method: ['GET'] }];
    const sub = Object.keys(state.subscriptions).find((s) => s.startsWith('eventarc-') && s.includes('notify')) as string;
    delete state.subscriptions[sub].deadLetterPolicy;
    state.runServices['pixelpipe-upload'].annotations = {};
    // someone else's notification to the same topic: left alone, reported, not mistaken for ours
    state.buckets[VARIANTS].notifications.push({
      id: '99',
      topic: `//pubsub.googleapis.com/projects/${PROJECT}/topics/pixelpipe-manifests`,
      event_types: ['OBJECT_DELETE'],
      object_name_prefix: 'manifests/',
      payload_format: 'JSON_API_V1',
    });
    world.writeState(state);

    const third = world.run(DEPLOY, deployArgs(world));
    expect(third.status).toBe(0);
    const changes = mutating(third.calls)
      .filter((c) => c.command !== 'functions deploy')
      .map((c) => c.argv.slice(0, 4).join(' '));
    expect(changes.sort()).toEqual(
      [
        `storage buckets update gs://${VARIANTS}`,
        // Two publishers lost their grant: notify and cascade.
        'pubsub topics add-iam-policy-binding pixelpipe-events',
        'pubsub topics add-iam-policy-binding pixelpipe-events',
        `pubsub subscriptions update ${sub}`,
        'run services update pixelpipe-upload',
      ].sort(),
    );
    expect(third.stderr).toContain(`projects/_/buckets/${VARIANTS}/notificationConfigs/99`);
    const repaired = world.state();
    repaired.buckets[VARIANTS].notifications = repaired.buckets[VARIANTS].notifications.filter((n) => n.id !== '99');
    expect(repaired).toEqual(JSON.parse(stateAfterFirst));
  });
});

describe('scripts/deploy-gcp.sh custom roles: drift and deletion', () => {
  let world: World;
  let deployed: string;
  beforeAll(() => {
    world = makeWorld('fake');
    const r = world.run(DEPLOY, deployArgs(world));
    if (r.status !== 0) throw new Error(`deploy failed:\n${r.stderr}`);
    deployed = world.stateText();
  });
  afterAll(() => world.cleanup());

  test('a widened or retitled role is set back to its declared permissions; a deleted one is undeleted, not re-created', () => {
    const state = world.state();
    state.customRoles['pixelpipe.originalsDeleter'].includedPermissions = ['storage.objects.delete', 'storage.objects.get', 'storage.objects.create'];
    state.customRoles['pixelpipe.objectLister'].title = 'someone else';
    state.customRoles['pixelpipe.derivedRemover'].deleted = true;
    world.writeState(state);

    const r = world.run(DEPLOY, deployArgs(world));
    expect(r.status).toBe(0);
    const roleCalls = mutating(r.calls)
      .filter((c) => c.command?.startsWith('iam roles'))
      .map((c) => `${c.command} ${c.argv[3]}`);
    expect(roleCalls.sort()).toEqual(
      ['iam roles undelete pixelpipe.derivedRemover', 'iam roles update pixelpipe.objectLister', 'iam roles update pixelpipe.originalsDeleter'].sort(),
    );
    const update = callsOf(r.calls, 'iam roles update').find((c) => c.argv[3] === 'pixelpipe.originalsDeleter') as (typeof r.calls)[number];
    expect(flag(update, 'permissions')).toBe('storage.objects.delete');
    expect(r.stderr).toMatch(/custom role pixelpipe\.originalsDeleter: updating \(permissions\)/);
    expect(world.stateText()).toBe(deployed);
  });

  test('a role ID still reserved by a deletion stops the deploy with the reason, before any binding', () => {
    const state = world.state();
    // As after a teardown more than 7 days ago: describe finds nothing, yet the ID cannot be created.
    delete state.customRoles['pixelpipe.outputWriter'];
    state.customRoles['pixelpipe.outputWriter'] = { title: 'x', description: '', includedPermissions: ['storage.objects.get'], stage: 'GA', deleted: true };
    world.writeState(state);
    const fakeDescribeGone = world.run(DEPLOY, deployArgs(world), { FAKE_GCLOUD_HIDE_DELETED_ROLES: '1' });
    expect(fakeDescribeGone.status).not.toBe(0);
    expect(fakeDescribeGone.stderr).toMatch(/could not create custom role pixelpipe\.outputWriter .*reserved/);
    const bindingsAfterCreate = fakeDescribeGone.calls.slice(fakeDescribeGone.calls.findIndex((c) => c.command === 'iam roles create'));
    expect(bindingsAfterCreate.filter((c) => /add-iam-policy-binding/.test(c.command ?? ''))).toEqual([]);
  });
});

describe('scripts/deploy-gcp.sh --dry-run', () => {
  let world: World;
  let res: RunResult;

  beforeAll(() => {
    world = makeWorld('forbidden');
    res = world.run(DEPLOY, [...deployArgs(world), '--dry-run']);
  });
  afterAll(() => world.cleanup());

  test('never invokes gcloud and succeeds', () => {
    expect(res.stderr).toBe('');
    expect(res.calls).toEqual([]);
    expect(res.status).toBe(0);
  });

  test('prints every command, one per line, prefixed "+ " (comments "# ")', () => {
    const lines = res.stdout.split('\n').filter(Boolean);
    for (const l of lines) expect(l).toMatch(/^(\+ |#)/);
    const commands = lines.filter((l) => l.startsWith('+ '));
    const expected = [
      /^\+ gcloud services enable .*cloudfunctions\.googleapis\.com/,
      /^\+ gcloud iam service-accounts create pixelpipe-upload /,
      /^\+ gcloud iam service-accounts create pixelpipe-trigger /,
      new RegExp(`^\\+ gcloud storage buckets create gs://${ORIGINALS} .*--uniform-bucket-level-access --public-access-prevention`),
      new RegExp(`^\\+ gcloud storage buckets update gs://${VARIANTS} .*--cors-file=`),
      /^\+ gcloud pubsub topics create pixelpipe-events /,
      /^\+ gcloud pubsub topics create pixelpipe-manifests-dlq /,
      /^\+ gcloud storage buckets notifications create .*--event-types=OBJECT_FINALIZE --object-prefix=manifests\//,
      /^\+ gcloud iam service-accounts add-iam-policy-binding pixelpipe-upload@.* --member=serviceAccount:pixelpipe-upload@.* --role=roles\/iam\.serviceAccountTokenCreator/,
      /^\+ gcloud functions deploy pixelpipe-upload --gen2 --runtime=nodejs22 /,
      /^\+ gcloud functions deploy pixelpipe-process --gen2 .*--retry/,
      /^\+ gcloud functions deploy pixelpipe-notify --gen2 .*--trigger-topic=pixelpipe-manifests/,
      /^\+ gcloud run services update pixelpipe-upload .*--no-invoker-iam-check/,
      /^\+ gcloud run services add-iam-policy-binding pixelpipe-process .*--role=roles\/run\.invoker/,
      /^\+ gcloud pubsub subscriptions update .*--dead-letter-topic=pixelpipe-originals-dlq/,
      /^\+ gcloud iam roles create pixelpipe\.originalsDeleter --project=pp-test-proj .*--permissions=storage\.objects\.delete --stage=GA$/,
      /^\+ gcloud storage buckets add-iam-policy-binding gs:\/\/\S+-originals .*--role=projects\/pp-test-proj\/roles\/pixelpipe\.originalsDeleter --condition=/,
    ];
    for (const re of expected) expect(commands.some((l) => re.test(l))).toBe(true);
    expect(commands.some((l) => /^\+ npm run build/.test(l))).toBe(false);
    expect(res.stdout).not.toMatch(/allUsers|allAuthenticatedUsers/);
  });

  test('without --skip-build the build is part of the plan', () => {
    const args = deployArgs(world).filter((a) => a !== '--skip-build');
    const r = world.run(DEPLOY, [...args, '--dry-run']);
    expect(r.status).toBe(0);
    expect(r.stdout.split('\n')).toContain('+ npm run build');
    expect(r.calls).toEqual([]);
  });

  test('sizing flags and environment variables override the defaults', () => {
    const r = world.run(DEPLOY, [...deployArgs(world), '--dry-run', '--process-memory', '2Gi', '--notify-max-instances=3'], {
      DEPLOY_PROCESS_TIMEOUT: '300s',
    });
    expect(r.status).toBe(0);
    const process = r.stdout.split('\n').find((l) => l.startsWith('+ gcloud functions deploy pixelpipe-process')) as string;
    expect(process).toContain('--memory=2Gi');
    expect(process).toContain('--timeout=300s');
    expect(r.stdout).toMatch(/PIXELPIPE_FUNCTION_TIMEOUT_SECONDS: "?300"?/);
    const notify = r.stdout.split('\n').find((l) => l.startsWith('+ gcloud functions deploy pixelpipe-notify')) as string;
    expect(notify).toContain('--max-instances=3');
  });
});

describe('scripts/deploy-gcp.sh argument checks (before any gcloud call)', () => {
  let world: World;
  beforeAll(() => {
    world = makeWorld('forbidden');
  });
  afterAll(() => world.cleanup());

  const withOrigins = (origins: string) => {
    const args = deployArgs(world);
    args[args.indexOf('--cors-origins') + 1] = origins;
    return args;
  };

  test.each([['*'], ['https://app.example,*'], ['https://*.example'], ['https://app.example/path'], ['ftp://app.example']])(
    'rejects CORS origin list %s',
    (origins) => {
      const r = world.run(DEPLOY, withOrigins(origins));
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(/origin/);
      expect(r.calls).toEqual([]);
    },
  );

  test('requires the JWT settings (deployments always use jwt)', () => {
    const args = deployArgs(world);
    args.splice(args.indexOf('--jwt-audience'), 2);
    const r = world.run(DEPLOY, args);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('--jwt-audience is required');
    expect(r.calls).toEqual([]);
  });

  test('requires --project and --region, rejects unknown options and bad names', () => {
    expect(world.run(DEPLOY, ['--region', REGION]).stderr).toContain('--project is required');
    expect(world.run(DEPLOY, [...deployArgs(world), '--bogus']).stderr).toContain("unknown option '--bogus'");
    expect(world.run(DEPLOY, [...deployArgs(world), '--name', 'Bad_Name']).status).not.toBe(0);
    expect(world.run(DEPLOY, [...deployArgs(world), '--process-timeout', '2m']).status).not.toBe(0);
  });

  test('--help documents the options', () => {
    const r = world.run(DEPLOY, ['--help']);
    expect(r.status).toBe(0);
    for (const opt of ['--project', '--region', '--cors-origins', '--jwks-url', '--dry-run', '--skip-build', '--process-memory']) {
      expect(r.stdout).toContain(opt);
    }
  });
});

describe('scripts/deploy-gcp.sh with the Cloud Vision analyzer', () => {
  let world: World;
  let on: RunResult;
  let off: RunResult;
  let offWorld: World;
  const ANALYSIS = { PIXELPIPE_ANALYZER: 'vision', PIXELPIPE_ANALYSES: 'faces,labels', PIXELPIPE_MODERATION: 'flag' };

  beforeAll(() => {
    world = makeWorld('fake');
    on = world.run(DEPLOY, deployArgs(world), ANALYSIS);
    offWorld = makeWorld('fake');
    off = offWorld.run(DEPLOY, deployArgs(offWorld), { PIXELPIPE_ANALYZER: 'embedded' });
  });

  afterAll(() => {
    world.cleanup();
    offWorld.cleanup();
  });

  test('enables vision.googleapis.com and passes the analysis settings to the process function', () => {
    expect(on.stderr).not.toMatch(/^error:/m);
    expect(on.status).toBe(0);
    expect(world.state().enabledServices).toContain('vision.googleapis.com');
    expect(callsOf(on.calls, 'services enable')[0].argv).toContain('vision.googleapis.com');
    const env = parseYaml(functionDeploy(on.calls, 'pixelpipe-process').files['--env-vars-file'] as string) as Record<string, string>;
    expect(env).toMatchObject(ANALYSIS);
  });

  test('grants the process service account nothing more than with analysis off (Vision needs no IAM role for inline images)', () => {
    expect(off.status).toBe(0);
    expect(grantsOf(world.state(), `serviceAccount:${SA.process}`)).toEqual(grantsOf(offWorld.state(), `serviceAccount:${SA.process}`));
    expect(JSON.stringify(allPolicies(world.state()))).not.toMatch(/vision|serviceusage/i);
  });

  test('the embedded analyzer enables no Vision API', () => {
    expect(offWorld.state().enabledServices).not.toContain('vision.googleapis.com');
  });

  test('refuses rekognition on GCP before calling gcloud', () => {
    const w = makeWorld('forbidden');
    try {
      const r = w.run(DEPLOY, deployArgs(w), { PIXELPIPE_ANALYZER: 'rekognition' });
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(/rekognition is an AWS service/);
      expect(r.calls).toEqual([]);
    } finally {
      w.cleanup();
    }
  });
});
