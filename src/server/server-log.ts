import { pino, type Logger } from 'pino';
import { UserError } from '../errors.js';

export type LogFormat = 'json' | 'text';

/** Fields a server log line may carry beside its message (in the JSON format). */
export interface LogFields {
  level?: 'info' | 'warn' | 'error';
  app?: string;
  release?: number;
  pid?: number;
  [field: string]: string | number | boolean | null | undefined;
}

/**
 * The server's own log, handed to every part that reports something:
 * `log('started hello v3')`, optionally with fields.
 */
export type ServerLog = (line: string, fields?: LogFields) => void;

export function parseLogFormat(text: string): LogFormat {
  if (text === 'json' || text === 'text') return text;
  throw new UserError(`--log-format must be 'json' or 'text', not '${text}'`);
}

/**
 * A pino logger on out. json: one object a line with level, time, msg, pid and
 * the line's fields. text: the human lines `platformx: MESSAGE` (fields stay
 * out: the message says it all).
 */
export function createServerLog(format: LogFormat, out: NodeJS.WritableStream = process.stdout): ServerLog {
  const destination = format === 'json'
    ? out
    : { write: (line: string) => void out.write(`platformx: ${(JSON.parse(line) as { msg: string }).msg}\n`) };
  const logger: Logger = pino({
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  }, destination);
  return (line, fields = {}) => {
    const { level = 'info', ...rest } = fields;
    logger[level](rest, line);
  };
}
