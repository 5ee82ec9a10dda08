import { PixelpipeError, TransientError } from '../../shared/errors';
import { CircuitBreaker, withRetry, withTimeout } from '../../shared/resilience';

describe('withRetry', () => {
  const noSleep = { sleep: async () => {}, random: () => 1 };

  test('retries transient errors with growing, capped, jittered delays', async () => {
    const delays: number[] = [];
    let calls = 0;
    const result = await withRetry(
      async () => {
        if (++calls < 4) throw new TransientError('storage_unavailable', '503');
        return 'ok';
      },
      { attempts: 5, baseDelayMs: 100, maxDelayMs: 250, ...noSleep, random: () => 0.999, onRetry: (_e, _a, d) => delays.push(d) },
    );
    expect(result).toBe('ok');
    expect(calls).toBe(4);
    expect(delays).toEqual([99, 199, 249]);
  });

  test('full jitter can pick any delay below the cap', async () => {
    const delays: number[] = [];
    await withRetry(
      async (a) => {
        if (a < 3) throw new TransientError('storage_timeout', 't');
      },
      { attempts: 3, baseDelayMs: 1000, maxDelayMs: 10_000, sleep: async () => {}, random: () => 0.25, onRetry: (_e, _a, d) => delays.push(d) },
    );
    expect(delays).toEqual([250, 500]);
  });

  test('permanent errors are not retried', async () => {
    let calls = 0;
    const err = new PixelpipeError('not_found_object', 'gone', { retryable: false });
    await expect(
      withRetry(
        async () => {
          calls++;
          throw err;
        },
        { attempts: 5, baseDelayMs: 1, maxDelayMs: 1, ...noSleep },
      ),
    ).rejects.toBe(err);
    expect(calls).toBe(1);
  });

  test('gives up after the attempts or before the deadline', async () => {
    let calls = 0;
    const fail = async () => {
      calls++;
      throw new TransientError('storage_unavailable', '503');
    };
    await expect(withRetry(fail, { attempts: 3, baseDelayMs: 1, maxDelayMs: 1, ...noSleep })).rejects.toBeInstanceOf(TransientError);
    expect(calls).toBe(3);
    calls = 0;
    let now = 0;
    await expect(
      withRetry(fail, {
        attempts: 10,
        baseDelayMs: 1000,
        maxDelayMs: 1000,
        random: () => 0.5,
        now: () => now,
        sleep: async (ms) => {
          now += ms;
        },
        deadline: 1200,
      }),
    ).rejects.toBeInstanceOf(TransientError);
    expect(calls).toBe(3);
  });
});

test('withTimeout turns a hang into a retryable timeout', async () => {
  const err = await withTimeout(() => new Promise(() => {}), 20, 'GET x').catch((e: unknown) => e);
  expect(err).toBeInstanceOf(TransientError);
  expect((err as TransientError).code).toBe('storage_timeout');
});

describe('CircuitBreaker', () => {
  test('opens after consecutive failures, fails fast, then lets one trial through', async () => {
    let now = 0;
    const b = new CircuitBreaker('gcs', { failureThreshold: 3, openMs: 1000, now: () => now });
    let calls = 0;
    const failing = () =>
      b.run(async () => {
        calls++;
        throw new TransientError('storage_unavailable', '503');
      });
    for (let i = 0; i < 3; i++) await expect(failing()).rejects.toMatchObject({ code: 'storage_unavailable' });
    expect(b.state).toBe('open');
    await expect(failing()).rejects.toMatchObject({ code: 'circuit_open', retryable: true });
    expect(calls).toBe(3);
    now = 1000;
    expect(b.state).toBe('half-open');
    await expect(failing()).rejects.toMatchObject({ code: 'storage_unavailable' });
    expect(b.state).toBe('open');
    now = 2000;
    await expect(b.run(async () => 'up')).resolves.toBe('up');
    expect(b.state).toBe('closed');
  });

  test('permanent errors do not count against the downstream', async () => {
    const b = new CircuitBreaker('gcs', { failureThreshold: 1, openMs: 1000 });
    await expect(
      b.run(async () => {
        throw new PixelpipeError('not_found_object', '404', { retryable: false });
      }),
    ).rejects.toBeDefined();
    expect(b.state).toBe('closed');
  });
});
