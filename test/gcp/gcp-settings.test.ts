/**
 * The GCP-only settings: `PIXELPIPE_VISION_ENDPOINT` accepts Google's global and regional Vision hosts
 * and loopback servers only (the process function sends its access token there), and errors name it.
 */
import { loadGcpSettings } from '../../functions/gcp/gcp-settings';
import { ConfigError } from '../../shared/errors';

describe('PIXELPIPE_VISION_ENDPOINT', () => {
  test.each([
    ['https://vision.googleapis.com', 'https://vision.googleapis.com'],
    ['https://eu-vision.googleapis.com/', 'https://eu-vision.googleapis.com'],
    ['https://us-vision.googleapis.com', 'https://us-vision.googleapis.com'],
    ['http://127.0.0.1:40123', 'http://127.0.0.1:40123'],
    ['http://localhost:8080/', 'http://localhost:8080'],
    ['http://[::1]:9000', 'http://[::1]:9000'],
  ])('%s is accepted (as %s)', (value, expected) => {
    expect(loadGcpSettings({ PIXELPIPE_VISION_ENDPOINT: value }).visionEndpoint).toBe(expected);
  });

  test('absent or empty: no override (the adapter uses https://vision.googleapis.com)', () => {
    expect(loadGcpSettings({})).not.toHaveProperty('visionEndpoint');
    expect(loadGcpSettings({ PIXELPIPE_VISION_ENDPOINT: '' })).not.toHaveProperty('visionEndpoint');
  });

  test.each([
    'http://vision.googleapis.com', // a bearer token in clear text
    'https://vision.googleapis.com.evil.test',
    'https://evil.test/vision.googleapis.com',
    'https://user@vision.googleapis.com',
    'https://vision.googleapis.com/v1',
    'http://10.0.0.5:8080',
    'http://127.0.0.1', // a loopback fake always has its own port
    'vision.googleapis.com',
  ])('%s is refused, naming the variable', (value) => {
    let err: unknown;
    try {
      loadGcpSettings({ PIXELPIPE_VISION_ENDPOINT: value });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect(String((err as Error).message)).toContain('PIXELPIPE_VISION_ENDPOINT');
  });
});
