import { DEPLOY, ORIGINALS, PROJECT, REGION, SA, TEARDOWN, VARIANTS, allPolicies, callsOf, deployArgs, makeWorld, mutating, type World } from './helpers';

jest.setTimeout(180_000);

const base = ['--project', PROJECT, '--region', REGION];

describe('scripts/teardown-gcp.sh against a stateful fake gcloud', () => {
  let world: World;

  beforeAll(() => {
    world = makeWorld('fake');
    const deployed = world.run(DEPLOY, deployArgs(world));
    if (deployed.status !== 0) throw new Error(`deploy failed:\n${deployed.stderr}`);
  });
  afterAll(() => world.cleanup());

  test('removes functions, notification, topics, subscriptions and service accounts; keeps the buckets', () => {
    const r = world.run(TEARDOWN, base);
    expect(r.stderr).not.toMatch(/^error:/m);
    expect(r.status).toBe(0);
    const state = world.state();
    expect(state.functions).toEqual({});
    expect(state.runServices).toEqual({});
    expect(state.triggers).toEqual({});
    expect(state.topics).toEqual({});
    expect(state.subscriptions).toEqual({});
    expect(state.serviceAccounts).toEqual({});
    // Custom roles are deleted (GCP keeps them undeletable for 7 days), after the bindings that named them.
    expect(Object.entries(state.customRoles).map(([id, role]) => [id, role.deleted])).toEqual(
      ['pixelpipe.derivedRemover', 'pixelpipe.objectLister', 'pixelpipe.originalsDeleter', 'pixelpipe.outputWriter'].map((id) => [id, true]),
    );
    const firstRoleDelete = r.calls.findIndex((c) => c.command === 'iam roles delete');
    expect(r.calls.slice(firstRoleDelete).filter((c) => /remove-iam-policy-binding/.test(c.command ?? ''))).toEqual([]);
    expect(Object.keys(state.buckets).sort()).toEqual([ORIGINALS, VARIANTS].sort());
    expect(state.buckets[VARIANTS].notifications).toEqual([]);
    expect(callsOf(r.calls, 'storage rm')).toEqual([]);
    expect(r.stderr).toContain('kept (pass --delete-buckets');
  });

  test('leaves no bindings of the deleted service accounts behind (no "deleted:" members)', () => {
    const state = world.state();
    const members = allPolicies(state).flatMap((p) => p.bindings.flatMap((b) => b.members));
    expect(members.filter((m) => m.startsWith('deleted:'))).toEqual([]);
    for (const email of Object.values(SA)) expect(members).not.toContain(`serviceAccount:${email}`);
    expect(state.buckets[ORIGINALS].iam.bindings).toEqual([]);
    expect(state.buckets[VARIANTS].iam.bindings).toEqual([]);
  });

  test('a second teardown changes nothing', () => {
    const before = world.stateText();
    const r = world.run(TEARDOWN, base);
    expect(r.status).toBe(0);
    expect(mutating(r.calls)).toEqual([]);
    expect(world.stateText()).toBe(before);
  });

  test('--delete-buckets removes both buckets with their contents', () => {
    const r = world.run(TEARDOWN, [...base, '--delete-buckets']);
    expect(r.status).toBe(0);
    const rm = callsOf(r.calls, 'storage rm');
    expect(
      rm
        .map((c) => c.argv.filter((a) => a.startsWith('gs://')))
        .flat()
        .sort(),
    ).toEqual([`gs://${ORIGINALS}`, `gs://${VARIANTS}`].sort());
    for (const c of rm) expect(c.argv).toContain('--recursive');
    expect(world.state().buckets).toEqual({});
  });

  test('deploy works again after a full teardown, undeleting its custom roles', () => {
    const r = world.run(DEPLOY, deployArgs(world));
    expect(r.status).toBe(0);
    expect(callsOf(r.calls, 'iam roles create')).toEqual([]);
    expect(callsOf(r.calls, 'iam roles undelete')).toHaveLength(4);
    expect(Object.values(world.state().customRoles).filter((role) => role.deleted)).toEqual([]);
    expect(Object.keys(world.state().functions).sort()).toEqual([
      'pixelpipe-cascade',
      'pixelpipe-images',
      'pixelpipe-notify',
      'pixelpipe-process',
      'pixelpipe-upload',
    ]);
  });
});

describe('scripts/teardown-gcp.sh --dry-run', () => {
  let world: World;
  beforeAll(() => {
    world = makeWorld('forbidden');
  });
  afterAll(() => world.cleanup());

  test('prints the deletions without calling gcloud; buckets only with --delete-buckets', () => {
    const keep = world.run(TEARDOWN, [...base, '--dry-run']);
    expect(keep.status).toBe(0);
    expect(keep.calls).toEqual([]);
    const lines = keep.stdout.split('\n').filter(Boolean);
    for (const l of lines) expect(l).toMatch(/^(\+ |# )/);
    for (const fn of ['upload', 'images', 'process', 'notify', 'cascade']) {
      expect(lines).toContain(`+ gcloud functions delete pixelpipe-${fn} --region=${REGION} --project=${PROJECT} --quiet`);
    }
    expect(lines).toContain(`+ gcloud iam service-accounts delete ${SA.upload} --project=${PROJECT} --quiet`);
    expect(lines).toContain(`+ gcloud pubsub topics delete pixelpipe-events --project=${PROJECT} --quiet`);
    expect(lines).toContain(`+ gcloud iam roles delete pixelpipe.originalsDeleter --project=${PROJECT} --quiet`);
    expect(keep.stdout).not.toContain('gcloud storage rm');

    const all = world.run(TEARDOWN, [...base, '--dry-run', '--delete-buckets']);
    expect(all.status).toBe(0);
    expect(all.calls).toEqual([]);
    expect(all.stdout).toContain(`+ gcloud storage rm --recursive --all-versions gs://${ORIGINALS}`);
    expect(all.stdout).toContain(`+ gcloud storage rm --recursive --all-versions gs://${VARIANTS}`);
  });

  test('requires --project and --region', () => {
    const r = world.run(TEARDOWN, ['--region', REGION]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('--project is required');
    expect(r.calls).toEqual([]);
  });
});
