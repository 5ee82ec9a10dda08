import { ConfigError } from '../../shared/errors';
import { loadConfig, parseFilter, parseVariants } from '../../shared/config';

const jwt = {
  PIXELPIPE_JWKS_URL: 'https://auth.example.com/.well-known/jwks.json',
  PIXELPIPE_JWT_ISSUER: 'https://auth.example.com/',
  PIXELPIPE_JWT_AUDIENCE: 'pixelpipe',
};

function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  test('defaults make a working two-bucket pipeline with 9 outputs', () => {
    const c = loadConfig(jwt);
    expect(c.buckets).toEqual({ originals: 'pixelpipe-originals', variants: 'pixelpipe-variants' });
    expect(c.singleBucket).toBe(false);
    expect(c.layout).toEqual({ originals: 'originals/', variants: 'variants/', manifests: 'manifests/', state: 'state/' });
    expect(c.variants.map((v) => v.name)).toEqual(['thumb', 'small', 'medium', 'large', 'medium-gray']);
    expect(c.variants.flatMap((v) => v.formats)).toHaveLength(9);
    expect(c.variants[0]).toMatchObject({ width: 200, height: 200, fit: 'cover', withoutEnlargement: true });
    // No quality: the per-format defaults apply.
    expect(c.variants[0].quality).toBeUndefined();
    expect(c.output.qualityTarget).toEqual({ metric: 'ssim', value: 0.97 });
    expect(c.variants[4].filter).toEqual({ type: 'grayscale' });
    expect(c.limits.allowedTypes).not.toContain('image/svg+xml');
    expect(c.upload.expirySeconds).toBeLessThanOrEqual(900);
    expect(c.upload.corsOrigins).toEqual([]);
    expect(c.auth).toEqual({
      mode: 'jwt',
      jwksUrl: jwt.PIXELPIPE_JWKS_URL,
      issuer: jwt.PIXELPIPE_JWT_ISSUER,
      audience: 'pixelpipe',
      maxTokenAgeSeconds: 86400,
    });
  });

  test('reads every kind of value', () => {
    const c = loadConfig({
      ...jwt,
      PIXELPIPE_ORIGINALS_BUCKET: 'one-bucket',
      PIXELPIPE_VARIANTS_BUCKET: 'one-bucket',
      PIXELPIPE_MAX_INPUT_PIXELS: '1000000',
      PIXELPIPE_ALLOWED_TYPES: 'image/jpeg, image/png',
      PIXELPIPE_CORS_ORIGINS: 'https://a.example.com,http://localhost:5173',
      PIXELPIPE_PLACEHOLDER: 'false',
      PIXELPIPE_VARIANTS: JSON.stringify([{ name: 'x', width: 100, formats: ['avif', 'original'], filter: 'modulate(1.2, 0.5, 90)' }]),
    });
    expect(c.singleBucket).toBe(true);
    expect(c.limits.maxInputPixels).toBe(1_000_000);
    expect(c.limits.allowedTypes).toEqual(['image/jpeg', 'image/png']);
    expect(c.upload.corsOrigins).toEqual(['https://a.example.com', 'http://localhost:5173']);
    expect(c.output.placeholder).toBe(false);
    expect(c.variants).toEqual([
      {
        name: 'x',
        width: 100,
        fit: 'inside',
        formats: ['avif', 'original'],
        withoutEnlargement: true,
        background: '#ffffff',
        filter: { type: 'modulate', brightness: 1.2, saturation: 0.5, hue: 90 },
      },
    ]);
  });

  test.each([
    [{ PIXELPIPE_MAX_INPUT_BYTES: 'lots' }, 'PIXELPIPE_MAX_INPUT_BYTES'],
    [{ PIXELPIPE_UPLOAD_EXPIRY_SECONDS: '3600' }, 'PIXELPIPE_UPLOAD_EXPIRY_SECONDS'],
    [{ PIXELPIPE_CORS_ORIGINS: '*' }, 'PIXELPIPE_CORS_ORIGINS'],
    [{ PIXELPIPE_ALLOWED_TYPES: 'image/jpeg,text/html' }, 'PIXELPIPE_ALLOWED_TYPES'],
    [{ PIXELPIPE_VARIANTS: '[{"name":"a"' }, 'PIXELPIPE_VARIANTS'],
    [{ PIXELPIPE_VARIANTS: '[{"name":"a","width":10,"fit":"cover"}]' }, 'PIXELPIPE_VARIANTS'],
    [{ PIXELPIPE_VARIANTS: '[{"name":"a","width":10,"filter":"blur(0)"}]' }, 'PIXELPIPE_VARIANTS'],
    [{ PIXELPIPE_VARIANTS: '[{"name":"a","width":10},{"name":"a","width":20}]' }, 'PIXELPIPE_VARIANTS'],
    [{ PIXELPIPE_VARIANTS: '[{"name":"a","width":10,"formats":["gif"]}]' }, 'PIXELPIPE_VARIANTS'],
    [{ PIXELPIPE_ORIGINALS_BUCKET: 'Bad_Bucket!' }, 'PIXELPIPE_ORIGINALS_BUCKET'],
    [{ PIXELPIPE_ORIGINALS_PREFIX: 'originals' }, 'PIXELPIPE_ORIGINALS_PREFIX'],
    [{ PIXELPIPE_VARIANTS_PREFIX: 'originals/thumbs/' }, 'PIXELPIPE_ORIGINALS_PREFIX'],
    [{ PIXELPIPE_AUTH_MODE: 'none' }, 'PIXELPIPE_AUTH_MODE'],
    [{ PIXELPIPE_PLACEHOLDER: 'yes' }, 'PIXELPIPE_PLACEHOLDER'],
  ])('%j is refused naming %s', (bad, variable) => {
    const err = configError({ ...jwt, ...bad });
    expect(err.variable).toBe(variable);
    expect(err.message).toContain(variable);
  });

  test('jwt mode needs the JWKS URL, issuer and audience; anonymous does not', () => {
    const err = configError({ PIXELPIPE_JWT_ISSUER: 'x' });
    expect(err.message).toContain('PIXELPIPE_JWKS_URL');
    expect(err.message).toContain('PIXELPIPE_JWT_AUDIENCE');
    expect(err.message).not.toContain('PIXELPIPE_JWT_ISSUER:');
    expect(loadConfig({ PIXELPIPE_AUTH_MODE: 'anonymous' }).auth).toEqual({ mode: 'anonymous' });
  });

  test('invocation limits: defaults, and a reserve that would leave less than half the timeout is refused', () => {
    expect(loadConfig({ ...jwt }).invocation).toEqual({ timeoutSeconds: 60, reserveMs: 5000 });
    expect(loadConfig({ ...jwt, PIXELPIPE_FUNCTION_TIMEOUT_SECONDS: '10', PIXELPIPE_DEADLINE_RESERVE_MS: '5000' }).invocation).toEqual({
      timeoutSeconds: 10,
      reserveMs: 5000,
    });
    const err = configError({ ...jwt, PIXELPIPE_FUNCTION_TIMEOUT_SECONDS: '10', PIXELPIPE_DEADLINE_RESERVE_MS: '5001' });
    expect(err.message).toContain('PIXELPIPE_DEADLINE_RESERVE_MS: must be at most half of PIXELPIPE_FUNCTION_TIMEOUT_SECONDS');
    expect(configError({ ...jwt, PIXELPIPE_FUNCTION_TIMEOUT_SECONDS: '0' }).message).toContain('PIXELPIPE_FUNCTION_TIMEOUT_SECONDS');
  });

  test('every problem is reported at once', () => {
    const err = configError({ ...jwt, PIXELPIPE_MAX_FRAMES: '0', PIXELPIPE_WEBP_EFFORT: '9' });
    expect(err.message).toContain('PIXELPIPE_MAX_FRAMES');
    expect(err.message).toContain('PIXELPIPE_WEBP_EFFORT');
  });
});

describe('quality', () => {
  test('a variant takes a number 1..100 or "auto"; PIXELPIPE_QUALITY_TARGET takes ssim:<value>', () => {
    expect(parseVariants([{ name: 'a', width: 10, quality: 'auto' }])[0].quality).toBe('auto');
    expect(parseVariants([{ name: 'a', width: 10, quality: 55 }])[0].quality).toBe(55);
    for (const bad of [0, 101, 50.5, 'high', 'AUTO']) expect(() => parseVariants([{ name: 'a', width: 10, quality: bad }])).toThrow(ConfigError);
    const c = loadConfig({ PIXELPIPE_AUTH_MODE: 'anonymous', PIXELPIPE_QUALITY_TARGET: 'ssim:0.99' });
    expect(c.output.qualityTarget).toEqual({ metric: 'ssim', value: 0.99 });
    for (const bad of ['0.99', 'ssim:1.2', 'ssim:0.3', 'psnr:40', 'ssim:']) {
      expect(() => loadConfig({ PIXELPIPE_AUTH_MODE: 'anonymous', PIXELPIPE_QUALITY_TARGET: bad })).toThrow(/PIXELPIPE_QUALITY_TARGET/);
    }
  });
});

describe('filters', () => {
  test.each([
    ['grayscale', { type: 'grayscale' }],
    ['greyscale', { type: 'grayscale' }],
    ['sharpen', { type: 'sharpen' }],
    ['sepia', { type: 'sepia' }],
    ['negate', { type: 'negate' }],
    ['blur(2.5)', { type: 'blur', sigma: 2.5 }],
    ['tint(#ff8800)', { type: 'tint', color: '#ff8800' }],
    [' modulate( 1, 2 ,-30 ) ', { type: 'modulate', brightness: 1, saturation: 2, hue: -30 }],
  ])('%s', (text, filter) => {
    expect(parseFilter(text)).toEqual(filter);
  });

  test.each(['blur', 'blur(x)', 'tint(red)', 'modulate(1,2)', 'sepia(1)', 'emboss', 'grayscale)('])('%s is refused', (text) => {
    expect(() => parseFilter(text)).toThrow();
  });

  test('parseVariants names the bad field', () => {
    expect(() => parseVariants([{ name: 'UPPER', width: 1 }])).toThrow(/0\.name/);
  });
});

describe('analysis', () => {
  const base = { PIXELPIPE_AUTH_MODE: 'anonymous' };
  const load = (env: Record<string, string>) => loadConfig({ ...base, ...env });
  const refusal = (env: Record<string, string>): ConfigError => configError({ ...base, ...env });

  test('defaults: no analyzer, nothing asked, moderation off, optional, 5 s budget, no descriptors, Rekognition moderation at 50 %, no blocked placeholder', () => {
    expect(load({}).analysis).toEqual({
      analyzer: 'none',
      analyses: [],
      moderation: 'off',
      required: false,
      budgetMs: 5000,
      faceDescriptors: false,
      moderationMinConfidence: 50,
      blockedPlaceholder: 'none',
    });
  });

  test('PIXELPIPE_MODERATION_MIN_CONFIDENCE is a percentage', () => {
    expect(load({ PIXELPIPE_MODERATION_MIN_CONFIDENCE: '80' }).analysis.moderationMinConfidence).toBe(80);
    expect(() => load({ PIXELPIPE_MODERATION_MIN_CONFIDENCE: '101' })).toThrow(/PIXELPIPE_MODERATION_MIN_CONFIDENCE/);
  });

  test('an analyzer alone asks for faces; a moderation policy adds moderation; the list is kept in a fixed order', () => {
    expect(load({ PIXELPIPE_ANALYZER: 'embedded' }).analysis.analyses).toEqual(['faces']);
    expect(load({ PIXELPIPE_ANALYZER: 'vision', PIXELPIPE_MODERATION: 'block' }).analysis).toMatchObject({
      analyses: ['faces', 'moderation'],
      moderation: 'block',
    });
    expect(load({ PIXELPIPE_ANALYZER: 'rekognition', PIXELPIPE_ANALYSES: 'moderation, labels', PIXELPIPE_ANALYSIS_REQUIRED: 'true' }).analysis).toMatchObject({
      analyses: ['labels', 'moderation'],
      required: true,
    });
  });

  test('block or flag with an analyzer that cannot moderate is refused, naming PIXELPIPE_MODERATION', () => {
    for (const [analyzer, policy] of [
      ['embedded', 'block'],
      ['embedded', 'flag'],
      ['none', 'block'],
    ]) {
      const err = refusal({ PIXELPIPE_ANALYZER: analyzer, PIXELPIPE_MODERATION: policy });
      expect(err.variable).toBe('PIXELPIPE_MODERATION');
      expect(err.message).toMatch(/cannot/);
    }
  });

  test('asking an analyzer for what it cannot do is refused, naming PIXELPIPE_ANALYSES', () => {
    const err = refusal({ PIXELPIPE_ANALYZER: 'embedded', PIXELPIPE_ANALYSES: 'faces,moderation' });
    expect(err.variable).toBe('PIXELPIPE_ANALYSES');
    expect(err.message).toMatch(/embedded cannot do moderation/);
    expect(refusal({ PIXELPIPE_ANALYSES: 'faces' }).message).toMatch(/none cannot do faces/);
    expect(refusal({ PIXELPIPE_ANALYZER: 'vision', PIXELPIPE_ANALYSES: 'faces,nudity' }).variable).toBe('PIXELPIPE_ANALYSES');
    expect(refusal({ PIXELPIPE_ANALYZER: 'vision', PIXELPIPE_ANALYSES: 'faces,faces' }).variable).toBe('PIXELPIPE_ANALYSES');
  });

  test('face descriptors: accepted with the embedded analyzer; refused loudly, naming the variable, with vision, rekognition and none', () => {
    expect(load({ PIXELPIPE_ANALYZER: 'embedded', PIXELPIPE_FACE_DESCRIPTORS: 'true' }).analysis.faceDescriptors).toBe(true);
    for (const analyzer of ['vision', 'rekognition', 'none']) {
      const err = refusal({ PIXELPIPE_ANALYZER: analyzer, PIXELPIPE_FACE_DESCRIPTORS: 'true' });
      expect(err.variable).toBe('PIXELPIPE_FACE_DESCRIPTORS');
      expect(err.message).toMatch(new RegExp(`biometric.*${analyzer} cannot return them`));
    }
  });

  test('bad values name their variable', () => {
    expect(refusal({ PIXELPIPE_ANALYZER: 'opencv' }).variable).toBe('PIXELPIPE_ANALYZER');
    expect(refusal({ PIXELPIPE_ANALYSIS_BUDGET_MS: '10' }).variable).toBe('PIXELPIPE_ANALYSIS_BUDGET_MS');
    expect(refusal({ PIXELPIPE_ANALYSIS_REQUIRED: 'yes' }).variable).toBe('PIXELPIPE_ANALYSIS_REQUIRED');
  });
});

describe('PIXELPIPE_PROFILES', () => {
  const avatar = { variants: [{ name: 'square', width: 256, height: 256, fit: 'cover', formats: ['webp'] }], maxInputBytes: 5_000_000 };

  test('absent: no named profiles, the default profile is today’s variables, exactly as before', () => {
    const c = loadConfig(jwt);
    expect(c.profiles).toEqual({});
    expect(c.defaultProfile).toBe('default');
    const { profiles: _p, defaultProfile: _d, ...rest } = c;
    const { profiles: _p2, defaultProfile: _d2, ...same } = loadConfig({ ...jwt, PIXELPIPE_PROFILES: '' });
    expect(same).toEqual(rest);
  });

  test('a profile states what differs; every other field comes from the default profile’s variables', () => {
    const c = loadConfig({ ...jwt, PIXELPIPE_MAX_INPUT_PIXELS: '1000000', PIXELPIPE_PROFILES: JSON.stringify({ avatar }) });
    const p = c.profiles.avatar;
    expect(p.name).toBe('avatar');
    expect(p.variants).toEqual([{ name: 'square', width: 256, height: 256, fit: 'cover', formats: ['webp'], withoutEnlargement: true, background: '#ffffff' }]);
    expect(p.limits).toEqual({ ...c.limits, maxInputBytes: 5_000_000 });
    expect(p.limits.maxInputPixels).toBe(1_000_000);
    // The default profile's own limits are untouched.
    expect(c.limits.maxInputBytes).toBe(32 * 1024 * 1024);
  });

  test('errors name the profile and the field, one line each', () => {
    const bad = {
      avatar: { variants: [{ name: 'square', width: 0 }], maxInputBytes: -1 },
      product: { allowedTypes: ['image/bmp'], colour: 'red' },
    };
    const e = configError({ ...jwt, PIXELPIPE_PROFILES: JSON.stringify(bad) });
    expect(e.message).toContain('PIXELPIPE_PROFILES.avatar.variants[0].width: ');
    expect(e.message).toContain('PIXELPIPE_PROFILES.avatar.maxInputBytes: ');
    expect(e.message).toContain('PIXELPIPE_PROFILES.product.allowedTypes[0]: ');
    expect(e.message).toMatch(/PIXELPIPE_PROFILES\.product: .*colour/);
    expect(e.message.split('\n').filter((l) => l.includes('PIXELPIPE_PROFILES'))).toHaveLength(4);
  });

  test('profile names are [a-z0-9-]{1,32}; "default" is reserved for today’s variables; the value must be a JSON object', () => {
    for (const name of ['Avatar', 'a_b', 'a'.repeat(33), '']) {
      expect(configError({ ...jwt, PIXELPIPE_PROFILES: JSON.stringify({ [name]: avatar }) }).message).toContain('profile names are 1-32 lower-case letters');
    }
    expect(loadConfig({ ...jwt, PIXELPIPE_PROFILES: JSON.stringify({ ['a-1'.padEnd(32, 'x')]: avatar }) }).profiles).toHaveProperty(['a-1'.padEnd(32, 'x')]);
    expect(configError({ ...jwt, PIXELPIPE_PROFILES: JSON.stringify({ default: avatar }) }).message).toMatch(
      /"default" is the profile of the PIXELPIPE_VARIANTS/,
    );
    expect(configError({ ...jwt, PIXELPIPE_PROFILES: '[1]' }).message).toContain('PIXELPIPE_PROFILES');
    expect(configError({ ...jwt, PIXELPIPE_PROFILES: '{nope' }).message).toContain('PIXELPIPE_PROFILES: is not valid JSON');
  });

  test('PIXELPIPE_DEFAULT_PROFILE must name a configured profile', () => {
    expect(loadConfig({ ...jwt, PIXELPIPE_PROFILES: JSON.stringify({ avatar }), PIXELPIPE_DEFAULT_PROFILE: 'avatar' }).defaultProfile).toBe('avatar');
    const e = configError({ ...jwt, PIXELPIPE_PROFILES: JSON.stringify({ avatar }), PIXELPIPE_DEFAULT_PROFILE: 'banner' });
    expect(e.message).toContain('PIXELPIPE_DEFAULT_PROFILE: "banner" is not a profile (configured: default, avatar)');
    expect(configError({ ...jwt, PIXELPIPE_DEFAULT_PROFILE: 'Avatar' }).message).toContain('PIXELPIPE_DEFAULT_PROFILE');
  });

  test('a profile’s analysis override: moderation adds the moderation analysis; asking more than the analyzer can do is refused', () => {
    const chat = { analysis: { moderation: 'block' } };
    const c = loadConfig({ ...jwt, PIXELPIPE_ANALYZER: 'vision', PIXELPIPE_PROFILES: JSON.stringify({ chat, avatar }) });
    expect(c.profiles.chat.analysis).toEqual({ moderation: 'block', analyses: ['faces', 'moderation'] });
    expect(c.profiles.avatar.analysis).toBeUndefined();
    expect(c.analysis.moderation).toBe('off');
    const e = configError({
      ...jwt,
      PIXELPIPE_ANALYZER: 'embedded',
      PIXELPIPE_PROFILES: JSON.stringify({ chat, tags: { analysis: { analyses: ['labels'] } } }),
    });
    expect(e.message).toContain('PIXELPIPE_PROFILES.chat.analysis.moderation: needs an analyzer that can moderate; PIXELPIPE_ANALYZER=embedded cannot');
    expect(e.message).toContain('PIXELPIPE_PROFILES.tags.analysis.analyses: PIXELPIPE_ANALYZER=embedded cannot do labels');
  });
});
