/**
 * In-flight requests and open WebSockets per backend port, so a retired
 * process is stopped only once nothing is still being served by it.
 */
export class PortLoad {
  /** Requests and WebSockets currently open to this port. */
  open = 0;
  /** How many app routes list this port; a routed port is never forgotten. */
  routes = 0;
  private idleWaiters: (() => void)[] | null = null;

  constructor(readonly port: number, private readonly forget: (load: PortLoad) => void) {}

  begin(): void {
    this.open++;
  }

  end(): void {
    if (--this.open === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = null;
      if (waiters) for (const w of waiters) w();
      if (this.routes === 0) this.forget(this);
    }
  }

  /** Calls back once open reaches 0 (at once if it is 0). */
  onIdle(cb: () => void): () => void {
    if (this.open === 0) {
      cb();
      return () => {};
    }
    (this.idleWaiters ??= []).push(cb);
    return () => {
      const i = this.idleWaiters?.indexOf(cb) ?? -1;
      if (i >= 0) this.idleWaiters!.splice(i, 1);
    };
  }
}

export class DrainTracker {
  private readonly loads = new Map<number, PortLoad>();
  private readonly forget = (load: PortLoad) => {
    if (this.loads.get(load.port) === load) this.loads.delete(load.port);
  };

  /** The load record of port, created on first use; routing and requests share it. */
  load(port: number): PortLoad {
    let load = this.loads.get(port);
    if (!load) {
      load = new PortLoad(port, this.forget);
      this.loads.set(port, load);
    }
    return load;
  }

  /** Called by the route table when a port leaves the last route that listed it. */
  unrouted(load: PortLoad): void {
    if (load.routes === 0 && load.open === 0) this.forget(load);
  }

  openCount(port: number): number {
    return this.loads.get(port)?.open ?? 0;
  }

  /** Resolves to 0 when port has nothing open, or to the number still open after timeoutMs. */
  drain(port: number, timeoutMs: number): Promise<number> {
    const load = this.loads.get(port);
    if (!load || load.open === 0) return Promise.resolve(0);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        cancel();
        resolve(load.open);
      }, Math.max(0, timeoutMs));
      const cancel = load.onIdle(() => {
        clearTimeout(timer);
        resolve(0);
      });
    });
  }
}
