import fs from 'node:fs';
import path from 'node:path';
import { EventEmitter } from 'node:events';

export interface LogLine {
  time: string;
  /** Heroku-style tag: app[web.1], platform[deploy], router. */
  tag: string;
  text: string;
}

const MAX_BYTES = 10 * 1024 * 1024;
const KEEP_FILES = 3;

/** One app's log: timestamped, tagged lines in a size-capped, rotated file, plus live followers. */
export class AppLog extends EventEmitter {
  private readonly file: string;
  private size: number;
  private fd: number | null = null;
  private pending = '';

  constructor(private readonly dir: string) {
    super();
    this.setMaxListeners(0);
    this.file = path.join(dir, 'app.log');
    try {
      this.size = fs.statSync(this.file).size;
    } catch {
      this.size = 0;
    }
  }

  write(tag: string, text: string): void {
    const time = isoNow();
    // The router's access lines (one per request) have no line break: no split, and no event object without a follower.
    const lines = text.includes('\n') ? text.replace(/\r?\n$/, '').split(/\r?\n/) : [text];
    const followed = this.listenerCount('line') > 0;
    let out = '';
    for (const line of lines) {
      out += `${time} ${tag}: ${line}\n`;
      if (followed) this.emit('line', { time, tag, text: line } satisfies LogLine);
    }
    this.append(out);
  }

  // Lines are batched and written every 50 ms: the router's access lines come at
  // request rate and a write syscall per request would show on the proxy's hot path.
  // One timer serves every app's log, so 100 busy apps cost one wake-up, not 100.
  private append(out: string): void {
    this.pending += out;
    if (this.pending.length > 64 * 1024) this.flush();
    else scheduleFlush(this);
  }

  flush(): void {
    if (!this.pending) return;
    const out = this.pending;
    this.pending = '';
    if (this.fd === null) {
      fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      this.fd = fs.openSync(this.file, 'a', 0o600);
    }
    const bytes = Buffer.byteLength(out);
    if (this.size + bytes > MAX_BYTES) this.rotate();
    fs.writeSync(this.fd!, out);
    this.size += bytes;
  }

  private rotate(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    for (let i = KEEP_FILES - 1; i >= 1; i--) {
      const from = i === 1 ? this.file : `${this.file}.${i - 1}`;
      try {
        fs.renameSync(from, `${this.file}.${i}`);
      } catch {
        /* nothing to rotate yet */
      }
    }
    this.fd = fs.openSync(this.file, 'a', 0o600);
    this.size = 0;
  }

  /** The last n lines across the current and rotated files, oldest first. */
  tail(n: number, filter?: (line: string) => boolean): string[] {
    // slice(-0) would be every line.
    if (n <= 0) return [];
    this.flush();
    const lines: string[] = [];
    const files = [this.file, ...Array.from({ length: KEEP_FILES - 1 }, (_, i) => `${this.file}.${i + 1}`)];
    for (const f of files) {
      let text: string;
      try {
        text = fs.readFileSync(f, 'utf8');
      } catch {
        continue;
      }
      const chunk = text.split('\n').filter((l) => l.length > 0 && (!filter || filter(l)));
      lines.unshift(...chunk);
      if (lines.length >= n) break;
    }
    return lines.slice(-n);
  }

  close(): void {
    this.flush();
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }
}

// At request rate many lines share a millisecond: format its timestamp once.
let isoMs = -1;
let isoText = '';
function isoNow(): string {
  const ms = Date.now();
  if (ms !== isoMs) {
    isoMs = ms;
    isoText = new Date(ms).toISOString();
  }
  return isoText;
}

const dirty = new Set<AppLog>();
let flushTimer: NodeJS.Timeout | null = null;

function scheduleFlush(log: AppLog): void {
  dirty.add(log);
  flushTimer ??= setTimeout(() => {
    flushTimer = null;
    const logs = [...dirty];
    dirty.clear();
    for (const l of logs) l.flush();
  }, 50).unref();
}

export function formatLine(l: LogLine): string {
  return `${l.time} ${l.tag}: ${l.text}`;
}

/** Lazily opened logs of every app. */
export class AppLogs {
  private readonly logs = new Map<string, AppLog>();
  constructor(private readonly dirOf: (app: string) => string) {}

  get(app: string): AppLog {
    let log = this.logs.get(app);
    if (!log) {
      log = new AppLog(this.dirOf(app));
      this.logs.set(app, log);
    }
    return log;
  }

  closeAll(): void {
    for (const log of this.logs.values()) log.close();
  }

  drop(app: string): void {
    this.logs.get(app)?.close();
    this.logs.delete(app);
  }
}
