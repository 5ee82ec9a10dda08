import { PixelpipeError, TransientError } from '../../shared/errors';
import { callOptions, childInvocation, createInvocation } from '../../shared/invocation';
import { silentLogger } from '../../shared/logger';
import { CircuitBreaker, defaultPolicy, resilient, withRetry, withTimeout } from '../../shared/resilience';

describe('withRetry', () => {
  const noSleep = { sleep: () => Promise.resolve(), random: () => 1 };

  test('retries transient errors with growing, capped, jittered delays', async () => {
    const delays: number[] = [];
    let calls = 0;
    const result = await withRetry(() => (++calls < 4 ? Promise.reject(new TransientError('storage_unavailable', '503')) : Promise.resolve('ok')), {
      attempts: 5,
      baseDelayMs: 100,
      maxDelayMs: 250,
      ...noSleep,
      random: () => 0.999,
      onRetry: (_e, _a, d) => delays.push(d),
    });
    expect(result).toBe('ok');
    expect(calls).toBe(4);
    expect(delays).toEqual([99, 199, 249]);
  });

  test('full jitter can pick any delay below the cap', async () => {
    const delays: number[] = [];
    await withRetry((a) => (a < 3 ? Promise.reject(new TransientError('storage_timeout', 't')) : Promise.resolve()), {
      attempts: 3,
      baseDelayMs: 1000,
      maxDelayMs: 10_000,
      sleep: () => Promise.resolve(),
      random: () => 0.25,
      onRetry: (_e, _a, d) => delays.push(d),
    });
    expect(delays).toEqual([250, 500]);
  });

  test('permanent errors are not retried', async () => {
    let calls = 0;
    const err = new PixelpipeError('not_found_object', 'gone', { retryable: false });
    await expect(
      withRetry(
        () => {
          calls++;
          return Promise.reject(err);
        },
        { attempts: 5, baseDelayMs: 1, maxDelayMs: 1, ...noSleep },
      ),
    ).rejects.toBe(err);
    expect(calls).toBe(1);
  });

  test('gives up after the attempts or before the deadline', async () => {
    let calls = 0;
    const fail = () => {
      calls++;
      return Promise.reject(new TransientError('storage_unavailable', '503'));
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
        sleep: (ms) => {
          now += ms;
          return Promise.resolve();
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
      b.run(() => {
        calls++;
        return Promise.reject(new TransientError('storage_unavailable', '503'));
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
    await expect(b.run(() => Promise.resolve('up'))).resolves.toBe('up');
    expect(b.state).toBe('closed');
  });

  test('permanent errors do not count against the downstream', async () => {
    const b = new CircuitBreaker('gcs', { failureThreshold: 1, openMs: 1000 });
    await expect(b.run(() => Promise.reject(new PixelpipeError('not_found_object', '404', { retryable: false })))).rejects.toBeDefined();
    expect(b.state).toBe('closed');
  });
});

describe('deadlines and cancellation (fake clock)', () => {
  const T0 = new Date('2026-03-10T12:00:00Z').getTime();
  beforeEach(() => jest.useFakeTimers({ now: T0 }));
  afterEach(() => jest.useRealTimers());

  interface Attempt {
    startedAt: number;
    endedAt?: number;
    signal: AbortSignal;
  }

  /** An attempt that answers only when its signal aborts, then takes `windDownMs` to close (a socket closing). */
  function hangingCall(attempts: Attempt[], windDownMs = 0) {
    return (signal: AbortSignal): Promise<never> => {
      const a: Attempt = { startedAt: Date.now(), signal };
      attempts.push(a);
      return new Promise<never>((_, reject) => {
        const end = (): void => {
          a.endedAt = Date.now();
          reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
        };
        signal.addEventListener('abort', () => (windDownMs ? setTimeout(end, windDownMs) : end()), { once: true });
      });
    };
  }

  async function settle<T>(p: Promise<T>): Promise<{ error?: unknown; at: number }> {
    let done: { error?: unknown; at: number } | undefined;
    p.then(
      () => (done = { at: Date.now() }),
      (error: unknown) => (done = { error, at: Date.now() }),
    );
    for (let i = 0; !done && i < 2000; i++) await jest.advanceTimersByTimeAsync(100);
    if (!done) throw new Error('did not settle within 200 s of fake time');
    return done;
  }

  const policy = (overrides: Parameters<typeof defaultPolicy>[1] = {}) => defaultPolicy('test', { random: () => 1, ...overrides });

  test('each attempt gets the policy timeout cut to what is left, and the call ends by the deadline', async () => {
    const attempts: Attempt[] = [];
    const out = await settle(resilient(policy(), 'GET k', hangingCall(attempts), { deadline: T0 + 30_000 }));
    expect(out.error).toMatchObject({ code: 'storage_timeout', retryable: true });
    expect(attempts).toHaveLength(2);
    expect(attempts[0].endedAt).toBe(T0 + 20_000);
    // The second attempt started after a 100 ms backoff with 9.9 s left, and was cut to that.
    expect(attempts[1].startedAt).toBe(T0 + 20_100);
    expect(attempts[1].endedAt).toBe(T0 + 30_000);
    expect(out.at).toBeLessThanOrEqual(T0 + 30_000);
  });

  test('no attempt starts with less than minAttemptMs left', async () => {
    const attempts: Attempt[] = [];
    const out = await settle(resilient(policy({ minAttemptMs: 50 }), 'GET k', hangingCall(attempts), { deadline: T0 + 40 }));
    expect(out.error).toMatchObject({ code: 'deadline_exceeded', retryable: true });
    expect(attempts).toHaveLength(0);
  });

  test('no backoff sleep is started that would end past the deadline: the last error is rethrown at once', async () => {
    let calls = 0;
    const fail = (): Promise<never> => {
      calls++;
      return Promise.reject(new TransientError('storage_unavailable', '503'));
    };
    // Backoff 1 s, but only 500 ms are left after the first failure.
    const out = await settle(resilient(policy({ baseDelayMs: 1000 }), 'GET k', fail, { deadline: T0 + 500 }));
    expect(out.error).toMatchObject({ code: 'storage_unavailable' });
    expect(calls).toBe(1);
    expect(out.at).toBe(T0);
  });

  test('the outer signal aborts the attempt in flight and no retry follows', async () => {
    const attempts: Attempt[] = [];
    const outer = new AbortController();
    setTimeout(() => outer.abort(new Error('invocation ended')), 5000);
    const out = await settle(resilient(policy(), 'PUT k', hangingCall(attempts), { signal: outer.signal, deadline: T0 + 60_000 }));
    expect(out.error).toMatchObject({ code: 'deadline_exceeded', retryable: true });
    expect(attempts).toHaveLength(1);
    expect(attempts[0].signal.aborted).toBe(true);
    expect(attempts[0].endedAt).toBe(T0 + 5000);
    expect(out.at).toBe(T0 + 5000);
  });

  test('the outer signal cuts a backoff sleep short', async () => {
    let calls = 0;
    const outer = new AbortController();
    setTimeout(() => outer.abort(), 300);
    const fail = (): Promise<never> => {
      calls++;
      return Promise.reject(new TransientError('storage_unavailable', '503'));
    };
    const out = await settle(resilient(policy({ baseDelayMs: 10_000, maxDelayMs: 10_000 }), 'GET k', fail, { signal: outer.signal }));
    expect(out.error).toMatchObject({ code: 'deadline_exceeded' });
    expect(calls).toBe(1);
    expect(out.at).toBe(T0 + 300);
  });

  test('no overlap: a retry starts only after the timed-out attempt has wound down', async () => {
    const attempts: Attempt[] = [];
    const out = await settle(resilient(policy({ attempts: 3, timeoutMs: 1000 }), 'PUT k', hangingCall(attempts, 400)));
    expect(out.error).toMatchObject({ code: 'storage_timeout' });
    expect(attempts).toHaveLength(3);
    for (let i = 1; i < attempts.length; i++) expect(attempts[i].startedAt).toBeGreaterThanOrEqual(attempts[i - 1].endedAt!);
    expect(attempts[0].endedAt).toBe(T0 + 1400);
  });

  test('withTimeout waits for an aborted attempt at most settleMs, then rejects', async () => {
    let aborted = false;
    const ignoresAbort = (signal: AbortSignal): Promise<never> => {
      signal.addEventListener('abort', () => (aborted = true));
      return new Promise<never>(() => {});
    };
    const out = await settle(withTimeout(ignoresAbort, 1000, 'GET k', undefined, 2000));
    expect(aborted).toBe(true);
    expect(out.error).toMatchObject({ code: 'storage_timeout' });
    expect(out.at).toBe(T0 + 3000);
  });

  test('createInvocation aborts its signal at the deadline; callOptions keep the reserve back', async () => {
    const inv = createInvocation({ deadline: T0 + 10_000, traceId: 't', logger: silentLogger });
    expect(callOptions(inv, 2000)).toEqual({ signal: inv.signal, deadline: T0 + 8000 });
    await jest.advanceTimersByTimeAsync(9999);
    expect(inv.signal.aborted).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    expect(inv.signal.aborted).toBe(true);
    inv.dispose();
  });

  test('childInvocation ends at its own timeout or the parent deadline, and with the parent', () => {
    const parent = createInvocation({ deadline: T0 + 10_000, traceId: 't', logger: silentLogger });
    expect(childInvocation(parent, { timeoutMs: 3000 }).deadline).toBe(T0 + 3000);
    const long = childInvocation(parent, { timeoutMs: 60_000 });
    expect(long.deadline).toBe(T0 + 10_000);
    const parentAbort = new AbortController();
    const run = createInvocation({ deadline: Number.POSITIVE_INFINITY, traceId: 't', logger: silentLogger, signal: parentAbort.signal });
    const child = childInvocation(run, { timeoutMs: 60_000 });
    parentAbort.abort();
    expect(child.signal.aborted).toBe(true);
    for (const i of [parent, long, run, child]) i.dispose();
  });
});
