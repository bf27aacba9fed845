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
}

function stamp(d: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())},${p(d.getMilliseconds(), 3)}`;
}

export function createLogger(level: LogLevel = 'warning', write: (line: string) => void = (l) => process.stderr.write(l), processName = 'MainProcess'): Logger {
  const logger: Logger = {
    level,
    isEnabled: (l) => RANK[l] >= RANK[logger.level],
    debug: (m) => emit('debug', m),
    info: (m) => emit('info', m),
    warning: (m) => emit('warning', m),
    error: (m) => emit('error', m),
    critical: (m) => emit('critical', m),
  };
  function emit(l: LogLevel, msg: string): void {
    if (RANK[l] < RANK[logger.level]) return;
    write(`[${stamp(new Date())}: ${l.toUpperCase()}/${processName}] ${msg}\n`);
  }
  return logger;
}

/** Mask the password in a URL for banners, logs and errors. */
export function maskUrl(url: string): string {
  // Within one URL: never across whitespace, so text after a URL in a message stays as it is.
  return url.replace(/(\/\/[^:/@;\s]*:)([^@/;\s]*)@/g, '$1**@');
}
