/**
 * One deploy per app at a time. A second deploy waits its turn (and is told so)
 * instead of failing.
 */
export class DeployLocks {
  private readonly tails = new Map<string, Promise<void>>();
  private readonly held = new Set<string>();

  /** Resolves with a release function once the app's lock is ours. */
  async acquire(app: string, onWait?: () => void): Promise<() => void> {
    const previous = this.tails.get(app) ?? Promise.resolve();
    if (this.held.has(app) && onWait) onWait();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => mine);
    this.tails.set(app, tail);
    await previous;
    this.held.add(app);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.held.delete(app);
      if (this.tails.get(app) === tail) this.tails.delete(app);
      release();
    };
  }
}
