/**
 * JSON-lines logger. One object per line with both `severity` (read by Cloud Logging) and `level`
 * (read by CloudWatch Logs Insights / Powertools conventions), so one format serves both clouds.
 */
import type { Logger } from './ports';

const ORDER = { debug: 10, info: 20, warn: 30, error: 40 } as const;
const SEVERITY = { debug: 'DEBUG', info: 'INFO', warn: 'WARNING', error: 'ERROR' } as const;
type Level = keyof typeof ORDER;

/** Where lines go; defaults to stdout so the platform's log agent picks them up. */
export type LineSink = (line: string) => void;

/** Creates a structured logger. Errors in `fields.err` are flattened to name/message/code (no stack for client-facing text). */
export function createLogger(options: { level?: Level; sink?: LineSink; fields?: Record<string, unknown> } = {}): Logger {
  const min = ORDER[options.level ?? 'info'];
  const sink = options.sink ?? ((line: string) => process.stdout.write(`${line}\n`));
  const base = options.fields ?? {};
  const write = (level: Level, message: string, fields?: Record<string, unknown>): void => {
    if (ORDER[level] < min) return;
    const entry: Record<string, unknown> = { severity: SEVERITY[level], level, message, time: new Date().toISOString(), ...base };
    if (fields) for (const [k, v] of Object.entries(fields)) entry[k] = k === 'err' ? serializeError(v) : v;
    // Cloud Logging correlates lines with a trace only under this exact key.
    if (typeof entry.traceId === 'string' && typeof entry.gcpProject === 'string') {
      entry['logging.googleapis.com/trace'] = `projects/${entry.gcpProject}/traces/${entry.traceId}`;
    }
    sink(safeStringify(entry));
  };
  return {
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
    child: (fields) => createLogger({ level: options.level, sink, fields: { ...base, ...fields } }),
  };
}

function serializeError(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  const e = err as Error & { code?: unknown; retryable?: unknown };
  return { name: e.name, message: e.message, code: e.code, retryable: e.retryable, stack: e.stack?.split('\n').slice(0, 6).join('\n') };
}

function safeStringify(v: unknown): string {
  try {
    return JSON.stringify(v, (_k, val: unknown) => (typeof val === 'bigint' ? val.toString() : val));
  } catch {
    return JSON.stringify({ severity: 'ERROR', level: 'error', message: 'unserialisable log entry' });
  }
}

/** A logger that drops everything (tests that do not assert on logs). */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => silentLogger };
