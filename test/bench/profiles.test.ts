import { profilesTargets, renderProfiles, type ProfilesReport } from '../../scripts/bench/profiles';

const outputs = ['thumb.webp 200×150', 'large.jpeg 2048×1536'];
const report = (ratioCpu: number, pinned = outputs, image = 'jpeg-12mp'): ProfilesReport => ({
  kind: 'profiles',
  image,
  rounds: 5,
  variables: { wallMs: 900, cpuMs: 800 },
  pinnedDefault: { wallMs: 910, cpuMs: 800 * ratioCpu },
  ratioCpu,
  roundRatiosCpu: [ratioCpu - 0.02, ratioCpu, ratioCpu + 0.03],
  outputs: { variables: outputs, pinnedDefault: pinned },
});

describe('profiles bench section', () => {
  it('passes within ±3 % of the variables-only run, and fails outside it', () => {
    expect(profilesTargets(report(1.029))[0].pass).toBe(true);
    expect(profilesTargets(report(0.975))[0].pass).toBe(true);
    expect(profilesTargets(report(1.031))[0].pass).toBe(false);
    expect(profilesTargets(report(0.96))[0].pass).toBe(false);
  });

  it('fails when the two configurations did not write the same outputs, whatever the time', () => {
    const check = profilesTargets(report(1, ['thumb.webp 200×150']))[0];
    expect(check.pass).toBe(false);
    expect(check.measured).toContain('outputs differ');
  });

  it('does not judge the speed of a quick run (two rounds of a small photo), but still its outputs', () => {
    expect(profilesTargets(report(1.2, outputs, 'jpeg-2mp'))[0]).toMatchObject({ pass: null, measured: expect.stringContaining('not judged') as unknown });
    expect(profilesTargets(report(1, ['x'], 'jpeg-2mp'))[0].pass).toBe(false);
  });

  it('judges nothing when the section did not run', () => {
    expect(profilesTargets(undefined)).toEqual([]);
  });

  it('renders both configurations and the ratio', () => {
    const md = renderProfiles(report(1.01));
    expect(md).toContain('| variables only (no PIXELPIPE_PROFILES, unpinned object) | 800 | 900 | 2 |');
    expect(md).toContain('| 3 named profiles configured, object pinned to default | 808 | 910 | 2 |');
    expect(md).toContain('Pinned ÷ variables: 1.01×');
    expect(md).toContain('rounds 0.99–1.04×; ratio of the medians 1.01×');
  });
});
