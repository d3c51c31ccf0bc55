import type http from 'node:http';
import type { AppLogs, LogLine } from '../logs/app-log.js';
import type { MaestroEvents, ReleaseOutcome } from '../maestro/maestro-events.js';

const MAX_STREAMS = 100;
const MAX_STREAMS_PER_SESSION = 8;
const HEARTBEAT_MS = 15_000;
/** A slow reader beyond this many buffered bytes misses lines (and is told how many). */
const MAX_BUFFERED = 256 * 1024;

interface Stream {
  res: http.ServerResponse;
  sessionKey: string;
  end(reason: string): void;
}

/**
 * The app page's live log over server-sent events: the app's log lines as they
 * are written (its output, router lines, platform events), each deploy's
 * output lines, and a note when a release goes live or fails.
 */
export class LiveLog {
  private readonly streams = new Set<Stream>();

  constructor(private readonly logs: AppLogs, private readonly events: MaestroEvents) {}

  /** Answers 429 past the limits; otherwise streams until the client leaves, the session ends or the server stops. */
  open(app: string, res: http.ServerResponse, sessionKey: string, stillLive: () => boolean): void {
    const mine = [...this.streams].filter((s) => s.sessionKey === sessionKey).length;
    if (this.streams.size >= MAX_STREAMS || mine >= MAX_STREAMS_PER_SESSION) {
      res.writeHead(429, { 'content-type': 'text/plain; charset=utf-8', 'retry-after': '30' });
      res.end('too many live logs open: close some tabs\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
    res.write('retry: 5000\n\n');
    let skipped = 0;
    // JSON.stringify escapes CR and LF, so no app text can start a field or an event of its own.
    const send = (event: string, data: unknown) => {
      if (res.writableLength > MAX_BUFFERED) {
        skipped++;
        return;
      }
      if (skipped) {
        res.write(`event: line\ndata: ${JSON.stringify({ time: new Date().toISOString(), tag: 'dashboard', text: `${skipped} lines skipped (the browser read too slowly)` })}\n\n`);
        skipped = 0;
      }
      res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    };
    const log = this.logs.get(app);
    const onLine = (l: LogLine) => send('line', l);
    // Step headers reach the app log (and so onLine) already; the lines under them only come here.
    const onOutput = (a: string, line: string) => {
      if (a === app && !line.startsWith('-----> ')) send('line', { time: new Date().toISOString(), tag: 'deploy', text: line.replace(/^ {7}/, '') });
    };
    const onRelease = (r: ReleaseOutcome) => {
      if (r.app === app) send('release', { version: r.version, outcome: r.outcome });
    };
    const heartbeat = setInterval(() => {
      if (!stillLive()) stream.end('session');
      else res.write(': ping\n\n');
    }, HEARTBEAT_MS);
    heartbeat.unref();
    const stream: Stream = {
      res, sessionKey,
      end: (reason) => {
        cleanup();
        if (!res.writableEnded) res.end(`event: end\ndata: ${JSON.stringify({ reason })}\n\n`);
      },
    };
    const cleanup = () => {
      clearInterval(heartbeat);
      log.off('line', onLine);
      this.events.off('output', onOutput);
      this.events.off('release', onRelease);
      this.streams.delete(stream);
    };
    log.on('line', onLine);
    this.events.on('output', onOutput);
    this.events.on('release', onRelease);
    this.streams.add(stream);
    res.once('close', cleanup);
  }

  /** Ends the streams of a session that logged out. */
  endSession(sessionKey: string): void {
    for (const s of [...this.streams]) if (s.sessionKey === sessionKey) s.end('logout');
  }

  closeAll(): void {
    for (const s of [...this.streams]) s.end('server stopping');
  }
}
