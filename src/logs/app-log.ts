import fs from 'node:fs';
import fsp, { type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { EventEmitter } from 'node:events';
import { linesBackwards } from './lines-backwards.js';

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
  /** Counts rotations, so a tail can tell that the files were renamed while it opened them. */
  private rotations = 0;

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
    this.rotations++;
  }

  /**
   * The last n lines across the current and rotated files, oldest first. Read
   * from the end backwards, a block at a time, until n lines matched: the event
   * loop never waits on the whole 30 MB.
   */
  async tail(n: number, filter?: (line: string) => boolean): Promise<string[]> {
    // Asking for none reads nothing.
    if (n <= 0) return [];
    this.flush();
    const newestFirst: string[] = [];
    const files = await this.openNewestFirst();
    try {
      for (const file of files) {
        if (!file) continue;
        for await (const line of linesBackwards(file)) {
          if (line.length === 0 || (filter && !filter(line))) continue;
          newestFirst.push(line);
          if (newestFirst.length >= n) return newestFirst.reverse();
        }
      }
      return newestFirst.reverse();
    } finally {
      await Promise.all(files.map((f) => f?.close()));
    }
  }

  /** The current and rotated files, newest first (null: not there), opened with no rotation in between. */
  private async openNewestFirst(): Promise<(FileHandle | null)[]> {
    const names = [this.file, ...Array.from({ length: KEEP_FILES - 1 }, (_, i) => `${this.file}.${i + 1}`)];
    for (;;) {
      const before = this.rotations;
      const files = await Promise.all(names.map((f) => fsp.open(f, 'r').catch(() => null)));
      // A rotation between two opens would show one file twice, or skip one.
      if (this.rotations === before) return files;
      await Promise.all(files.map((f) => f?.close()));
    }
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
