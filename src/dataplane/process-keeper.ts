import { randomUUID } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import readline from 'node:readline';
import type { Apprunner } from '../apprunner/apprunner.js';
import { crashPoint } from '../crash/crash-point.js';
import type { RunSpec } from '../apprunner/types.js';
import type { ExitInfo, HostedProcessInfo, ProcessMeta } from './protocol.js';

export interface KeeperEvents {
  output(app: string, tag: string, text: string): void;
  exit(id: string, exit: ExitInfo): void;
}

/**
 * The data plane's app processes. It is their parent: it holds their output
 * pipes (so an app never writes into a closed pipe while the server restarts),
 * reaps them, and remembers how each ended until the server has heard it. Being
 * the parent is also what makes adoption safe: a listed process is one this
 * keeper spawned and has not seen exit, never a pid read back from a file.
 */
export class ProcessKeeper {
  private readonly procs = new Map<string, { child: ChildProcess; info: HostedProcessInfo }>();

  constructor(private readonly apprunner: Apprunner, private readonly events: KeeperEvents) {}

  spawn(spec: RunSpec, meta: ProcessMeta): HostedProcessInfo {
    const child = this.apprunner.spawn(spec);
    crashPoint('process-spawned');
    const pid = child.pid;
    if (pid === undefined) {
      // spawn failed synchronously (ENOENT and the like): its error event says why.
      child.once('error', () => {});
      throw new Error(`could not start ${meta.type}.${meta.index} of ${meta.app}`);
    }
    const info: HostedProcessInfo = { id: randomUUID(), pid, meta, startedAt: Date.now(), exit: null };
    this.procs.set(info.id, { child, info });
    const tag = `app[${meta.type}.${meta.index}]`;
    for (const stream of [child.stdout, child.stderr]) {
      if (stream) readline.createInterface({ input: stream, crlfDelay: Infinity }).on('line', (l) => this.events.output(meta.app, tag, l));
    }
    child.once('error', (err) => this.events.output(meta.app, `platform[${meta.type}.${meta.index}]`, `could not start: ${err.message}`));
    // 'exit', not 'close': a grandchild holding stdout open must not delay supervision.
    child.once('exit', (code, signal) => {
      // Whatever the app left behind in its sandbox or group goes with it.
      this.apprunner.signal(pid, 'SIGKILL');
      info.exit = { code, signal };
      this.events.exit(info.id, info.exit);
    });
    return info;
  }

  signal(id: string, signal: NodeJS.Signals): void {
    const p = this.procs.get(id);
    if (p && !p.info.exit) this.apprunner.signal(p.info.pid, signal);
  }

  foreground(id: string): void {
    const p = this.procs.get(id);
    if (p && !p.info.exit) this.apprunner.foreground(p.info.pid);
  }

  /** The server has seen the process end: drop it. */
  forget(id: string): void {
    if (this.procs.get(id)?.info.exit) this.procs.delete(id);
  }

  list(): HostedProcessInfo[] {
    return [...this.procs.values()].map((p) => ({ ...p.info }));
  }

  /** Stops every process: SIGTERM, SIGKILL after graceMs; resolves when all have exited. */
  async stopAll(graceMs: number): Promise<void> {
    const running = [...this.procs.values()].filter((p) => !p.info.exit);
    await Promise.all(running.map((p) => new Promise<void>((resolve) => {
      if (p.child.exitCode !== null || p.child.signalCode !== null) return resolve();
      p.child.once('exit', () => resolve());
      this.apprunner.signal(p.info.pid, 'SIGTERM');
      setTimeout(() => this.apprunner.signal(p.info.pid, 'SIGKILL'), graceMs).unref();
    })));
  }
}
