import type { RunSpec } from '../apprunner/types.js';
import type { HostedProcess, ProcessHost } from '../dataplane/client.js';
import type { ExitInfo } from '../dataplane/protocol.js';
import type { AppLog } from '../logs/app-log.js';
import { waitForListening } from './health-check.js';
import { restartDelayMs, HEALTHY_RESET_MS } from './backoff.js';

export type ProcessState = 'starting' | 'up' | 'crashed' | 'restarting' | 'stopping' | 'stopped';

export interface ProcessEvents {
  /** A routed (web) process started or stopped listening; the fleet re-routes. */
  onRoutable(proc: AppProcess): void;
}

const STOP_GRACE_MS = 10_000;

/**
 * One supervised app process (`web.1`, `worker.2`…). It keeps its port across
 * restarts, and after an unexpected exit restarts with growing delays. The
 * process itself runs in the data plane (its parent, which writes nothing of
 * it here but its output lines), so it can outlive this server.
 */
export class AppProcess {
  state: ProcessState = 'starting';
  restarts = 0;
  startedAt = 0;
  nextRestartAt = 0;
  lastExit: string | null = null;
  private child: HostedProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  private restartTimer: NodeJS.Timeout | null = null;
  private stopping = false;
  /** Supervision starts once the process first passed its health check; before that a crash fails the deploy. */
  private supervised = false;

  constructor(
    readonly type: string,
    readonly index: number,
    readonly port: number | null,
    readonly release: number,
    private readonly spec: RunSpec,
    private readonly host: ProcessHost,
    private readonly log: AppLog,
    private readonly events: ProcessEvents,
  ) {}

  get name(): string {
    return `${this.type}.${this.index}`;
  }

  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  /** Takes over a process a previous server started, which the data plane still runs. */
  adopt(proc: HostedProcess): void {
    this.supervised = true;
    this.state = 'up';
    this.watch(proc);
    this.startedAt = proc.startedAt;
  }

  get routable(): boolean {
    return this.state === 'up' && this.port !== null;
  }

  /** Starts the process; for web processes, resolves once it listens on PORT. */
  async start(bootTimeoutMs: number): Promise<void> {
    await this.spawnChild();
    if (this.port === null) return;
    await waitForListening(this.port, bootTimeoutMs, this);
  }

  /** Why the process is gone, or null while it runs: lets health checks fail fast. */
  exitedEarly(): string | null {
    return this.child ? null : (this.lastExit ?? 'exited');
  }

  /** The process passed its health check: it may take traffic. */
  markUp(): void {
    // It was started in the background (a deploy); from here on it serves.
    if (!this.supervised && this.child) this.host.foreground(this.child);
    this.supervised = true;
    if (this.state === 'starting') this.state = 'up';
  }

  private async spawnChild(): Promise<void> {
    // The first start is deploy work; a restart after a crash replaces a serving process.
    const meta = { app: this.spec.app, release: this.release, type: this.type, index: this.index, port: this.port };
    let proc: HostedProcess;
    try {
      proc = await this.host.spawn({ ...this.spec, background: !this.supervised }, meta);
    } catch (err) {
      this.log.write(`platform[${this.name}]`, `could not start: ${(err as Error).message}`);
      this.lastExit = `could not start (${(err as Error).message})`;
      this.child = null;
      this.exited = Promise.resolve();
      return;
    }
    this.startedAt = Date.now();
    this.watch(proc);
  }

  private watch(proc: HostedProcess): void {
    this.child = proc;
    this.exited = proc.exited.then((exit) => this.onExit(exit));
  }

  private onExit({ code, signal }: ExitInfo): void {
    // Both null: it never started (spawnChild said why in lastExit).
    if (code !== null || signal !== null) this.lastExit = signal ? `was killed by ${signal}` : `exited with code ${code}`;
    this.child = null;
    if (this.stopping) {
      this.state = 'stopped';
      return;
    }
    if (!this.supervised) {
      this.state = 'crashed';
      return;
    }
    const wasRoutable = this.routable;
    const ranMs = Date.now() - this.startedAt;
    if (ranMs >= HEALTHY_RESET_MS) this.restarts = 0;
    const delay = restartDelayMs(this.restarts);
    this.restarts++;
    this.state = 'crashed';
    this.log.write(`platform[${this.name}]`, `process ${this.lastExit}; restarting in ${Math.round(delay / 1000)}s`);
    if (wasRoutable) this.events.onRoutable(this);
    this.nextRestartAt = Date.now() + delay;
    this.restartTimer = setTimeout(() => void this.restart(), delay);
  }

  private async restart(): Promise<void> {
    this.restartTimer = null;
    if (this.stopping) return;
    this.state = 'restarting';
    await this.spawnChild();
    if (!this.child) return this.onExit({ code: null, signal: null });
    this.state = 'starting';
    try {
      if (this.port !== null) await waitForListening(this.port, 60_000, this);
      if (this.stopping || !this.child) return;
      this.state = 'up';
      this.log.write(`platform[${this.name}]`, 'process is up again');
      this.events.onRoutable(this);
    } catch {
      /* onExit already scheduled the next try */
    }
  }

  /** Status for `ps`: up, crashed, "restarting in 8s", stopped. */
  describe(): string {
    if (this.state === 'crashed' && this.restartTimer) {
      return `restarting in ${Math.max(0, Math.ceil((this.nextRestartAt - Date.now()) / 1000))}s`;
    }
    return this.state;
  }

  /** SIGTERM to the process group, SIGKILL after 10 s; resolves when it is gone. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    const child = this.child;
    if (!child) {
      this.state = 'stopped';
      return;
    }
    this.state = 'stopping';
    this.host.signal(child, 'SIGTERM');
    const timer = setTimeout(() => this.host.signal(child, 'SIGKILL'), STOP_GRACE_MS);
    // The data plane kills what the app left behind in its group once it exits.
    await this.exited;
    clearTimeout(timer);
  }
}
