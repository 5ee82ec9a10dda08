/**
 * A log sink for people at a terminal: the functions' JSON lines (the same ones Cloud Logging and
 * CloudWatch parse) rendered as one short line each. `PIXELPIPE_DEV_LOG=json` keeps the raw lines.
 */
import type { LineSink } from '../../shared/logger';

const HIDDEN = new Set(['severity', 'level', 'message', 'time', 'fn', 'logging.googleapis.com/trace']);
/** Detail that matters in production logs but drowns a terminal; shown again for warnings and errors. */
const QUIET = new Set(['bucket', 'key', 'generation', 'traceId', 'encodeMs', 'peakRssBytes', 'messageId', 'batchItemFailures']);
const COLORS: Record<string, string> = { debug: '\x1b[90m', info: '\x1b[36m', warn: '\x1b[33m', error: '\x1b[31m' };

/** A sink writing pretty lines to `write` (colours only when `color`). */
export function prettySink(write: (text: string) => void, color: boolean): LineSink {
  return (line) => write(`${formatLine(line, color)}\n`);
}

/** One JSON log line as `12:00:01 INFO  process  message key=value …`; non-JSON lines pass unchanged. */
export function formatLine(line: string, color = false): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const level = typeof entry.level === 'string' ? entry.level : 'info';
  const time = typeof entry.time === 'string' ? entry.time.slice(11, 19) : '';
  const fn = typeof entry.fn === 'string' ? entry.fn : 'dev';
  const quiet = level === 'debug' || level === 'info';
  const fields = Object.entries(entry)
    .filter(([k, v]) => !HIDDEN.has(k) && !(quiet && QUIET.has(k)) && v !== undefined && !(Array.isArray(v) && v.length === 0))
    .map(([k, v]) => `${k}=${formatValue(k, v)}`);
  const tag = level.toUpperCase().padEnd(5);
  const coloured = color ? `${COLORS[level] ?? ''}${tag}\x1b[0m` : tag;
  return [time, coloured, fn.padEnd(7), formatMessage(entry.message), ...fields].filter(Boolean).join(' ');
}

function formatValue(key: string, v: unknown): string {
  if (key === 'err' && v && typeof v === 'object') {
    const e = v as { name?: string; message?: string; code?: string };
    return JSON.stringify(`${e.name ?? 'Error'}${e.code ? `(${e.code})` : ''}: ${e.message ?? ''}`);
  }
  if (key === 'outcomes' && Array.isArray(v)) {
    return v.map((o: { status?: string; reason?: string; key?: string }) => `${o.status ?? '?'}${o.reason ? `:${o.reason}` : ''}`).join(',');
  }
  const text = typeof v === 'string' ? (/[\s"=]/.test(v) ? JSON.stringify(v) : v) : JSON.stringify(v);
  return text.length > 160 ? `${text.slice(0, 157)}...` : text;
}

/** Messages are strings; anything else a library logged is shown as JSON rather than "[object Object]". */
function formatMessage(message: unknown): string {
  if (message === undefined || message === null) return '';
  return typeof message === 'string' ? message : JSON.stringify(message);
}
