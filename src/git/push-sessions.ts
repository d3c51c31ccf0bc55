// A git-receive-pack process we spawned, by pid. The hooks it runs report their
// parent pid, so the server knows which app and which key or token a push
// came from without trusting anything the hook itself claims.

export interface PushSession {
  app: string;
  /** Key name or token id, recorded on the release. */
  by: string;
  protocol: 'http' | 'ssh';
}

export class PushSessions {
  private readonly byPid = new Map<number, PushSession>();
  /** Sessions whose client hung up while git still runs (git learns it only when it next writes). */
  private readonly gone = new WeakSet<PushSession>();
  private readonly endListeners = new Set<(pid: number, session: PushSession) => void>();

  register(pid: number, session: PushSession): void {
    this.byPid.set(pid, session);
  }

  get(pid: number): PushSession | undefined {
    return this.byPid.get(pid);
  }

  /** The pusher's connection closed before receive-pack finished. */
  clientGone(pid: number): void {
    const session = this.byPid.get(pid);
    if (session) this.gone.add(session);
  }

  /** Whether `session` is still the live push of `pid`, its client still connected. */
  connected(pid: number, session: PushSession): boolean {
    return this.byPid.get(pid) === session && !this.gone.has(session);
  }

  /** Called when the receive-pack process exits: pending deploys of that push are abandoned. */
  end(pid: number): void {
    const session = this.byPid.get(pid);
    if (!session) return;
    this.byPid.delete(pid);
    for (const listener of this.endListeners) listener(pid, session);
  }

  onEnd(listener: (pid: number, session: PushSession) => void): void {
    this.endListeners.add(listener);
  }
}
