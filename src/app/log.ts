// A small logger that writes Celery's log format: [2026-11-25 19:50:01,123: INFO/MainProcess] message

export type LogLevel = 'debug' | 'info' | 'warning' | 'error' | 'critical';
const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warning: 30, error: 40, critical: 50 };

export const LOG_LEVELS = Object.keys(RANK) as LogLevel[];

export function parseLogLevel(s: string): LogLevel {
  const l = s.toLowerCase() === 'warn' ? 'warning' : (s.toLowerCase() as LogLevel);
  if (!(l in RANK)) throw new Error(`Unknown log level ${JSON.stringify(s)}: use one of ${LOG_LEVELS.join(', ')}`);
  return l;
}

export interface Logger {
  level: LogLevel;
  debug(msg: string): void;
  info(msg: string): void;
  warning(msg: string): void;
  error(msg: string): void;
  critical(msg: string): void;
  isEnabled(level: LogLevel): boolean;
  /** Python logging format (Celery's worker_log_format); null writes Celery's default. */
  format?: string | null;
}

/** The fields a worker_log_format may use, as Python's logging names them. */
const FIELDS = ['asctime', 'levelname', 'levelno', 'processName', 'process', 'name', 'message', 'created', 'msecs', 'threadName', 'thread'] as const;
type Field = (typeof FIELDS)[number];
const SPEC = /%(?:\(([A-Za-z_]\w*)\))?([-#0 +]*)(\d*)(?:\.(\d+))?([sdifrxX%])/g;

/** Why `format` can't be used as worker_log_format, or null when it can. */
export function logFormatProblem(format: string): string | null {
  for (const m of format.matchAll(SPEC)) {
    if (m[5] === '%') continue;
    if (m[1] === undefined) return `worker_log_format ${JSON.stringify(format)}: '${m[0]}' has no field name; write %(message)s style fields (${FIELDS.join(', ')})`;
    if (!(FIELDS as readonly string[]).includes(m[1])) return `worker_log_format ${JSON.stringify(format)} uses %(${m[1]})${m[5]}, which Celeriac does not fill: use ${FIELDS.join(', ')}`;
  }
  return null;
}

/** Python's %-formatting of one log record, for the fields above. */
export function formatLogRecord(format: string, values: Record<Field, string | number>): string {
  return format.replace(SPEC, (all, key: string | undefined, flags: string, width: string, precision: string | undefined, type: string) => {
    if (type === '%') return '%';
    if (key === undefined || !(key in values)) return all;
    const v = values[key as Field];
    let text: string;
    if (type === 'd' || type === 'i') text = String(Math.trunc(Number(v)));
    else if (type === 'f') text = Number(v).toFixed(precision !== undefined ? Number(precision) : 6);
    else if (type === 'x' || type === 'X') text = Math.trunc(Number(v)).toString(16)[type === 'X' ? 'toUpperCase' : 'toLowerCase']();
    else {
      text = type === 'r' ? `'${String(v)}'` : String(v);
      if (precision !== undefined) text = text.slice(0, Number(precision));
    }
    const w = Number(width || 0);
    return flags.includes('-') ? text.padEnd(w) : text.padStart(w, flags.includes('0') && type !== 's' ? '0' : ' ');
  });
}

function stamp(d: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())},${p(d.getMilliseconds(), 3)}`;
}

export function createLogger(level: LogLevel = 'warning', write: (line: string) => void = (l) => process.stderr.write(l), processName = 'MainProcess', format: string | null = null): Logger {
  const logger: Logger = {
    level,
    format,
    isEnabled: (l) => RANK[l] >= RANK[logger.level],
    debug: (m) => emit('debug', m),
    info: (m) => emit('info', m),
    warning: (m) => emit('warning', m),
    error: (m) => emit('error', m),
    critical: (m) => emit('critical', m),
  };
  function emit(l: LogLevel, msg: string): void {
    if (RANK[l] < RANK[logger.level]) return;
    const now = new Date();
    if (!logger.format) {
      write(`[${stamp(now)}: ${l.toUpperCase()}/${processName}] ${msg}\n`);
      return;
    }
    write(formatLogRecord(logger.format, {
      asctime: stamp(now), levelname: l.toUpperCase(), levelno: RANK[l], processName, process: process.pid, name: 'celeriac',
      message: msg, created: now.getTime() / 1000, msecs: now.getMilliseconds(), threadName: 'MainThread', thread: 0,
    }) + '\n');
  }
  return logger;
}

/** Mask the password in a URL for banners, logs and errors. */
export function maskUrl(url: string): string {
  // Within one URL: never across whitespace, so text after a URL in a message stays as it is.
  return url.replace(/(\/\/[^:/@;\s]*:)([^@/;\s]*)@/g, '$1**@').replace(/([?&]password=)[^&#;\s]*/gi, '$1**');
}
