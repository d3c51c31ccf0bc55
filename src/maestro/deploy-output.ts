import fs from 'node:fs';
import path from 'node:path';

/** Where a deploy's progress goes: the pusher (live), the release's build log, the app log. */
export type Sink = (line: string) => void;

/**
 * Heroku-style deploy output: `-----> Step` headers, command output indented
 * under them. Every line goes to every sink; a sink that fails (the pusher hung
 * up) is dropped, the deploy goes on.
 */
export class DeployOutput {
  private readonly sinks = new Set<Sink>();
  private readonly recent: string[] = [];
  private logFd: number | null = null;

  constructor(logFile: string | null, sinks: Sink[] = []) {
    for (const s of sinks) this.sinks.add(s);
    if (logFile) {
      fs.mkdirSync(path.dirname(logFile), { recursive: true, mode: 0o700 });
      this.logFd = fs.openSync(logFile, 'a', 0o600);
    }
  }

  addSink(sink: Sink): void {
    this.sinks.add(sink);
  }

  step(title: string): void {
    this.emit(`-----> ${title}`);
  }

  line(text: string): void {
    for (const l of text.replace(/\n$/, '').split('\n')) this.emit(`       ${l}`);
  }

  private emit(line: string): void {
    this.recent.push(line);
    if (this.recent.length > 20) this.recent.shift();
    if (this.logFd !== null) fs.writeSync(this.logFd, line + '\n');
    for (const sink of this.sinks) {
      try {
        sink(line);
      } catch {
        this.sinks.delete(sink);
      }
    }
  }

  /** The last lines written, for the one-line failure summary of a rejected push. */
  lastLines(n: number): string[] {
    return this.recent.slice(-n);
  }

  close(): void {
    if (this.logFd !== null) fs.closeSync(this.logFd);
    this.logFd = null;
  }
}
