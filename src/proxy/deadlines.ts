// Timeouts for every open exchange from one interval, instead of a timer per
// request: an exchange moves its deadline forward as it makes progress (a
// field write), and the sweep ends the ones whose deadline passed.

/** How often deadlines are checked; timeouts fire at most this late. */
const TICK_MS = 100;

export interface Timed {
  /** Date.now() value after which timedOut() is called; Infinity for none. */
  deadline: number;
  timedOut(): void;
}

export class Deadlines {
  /** Date.now() as of the last sweep: cheap to read on every chunk, at most one tick old. */
  now = Date.now();
  private readonly watched = new Set<Timed>();
  private readonly timer: NodeJS.Timeout;

  constructor() {
    this.timer = setInterval(() => this.sweep(), TICK_MS);
    this.timer.unref();
  }

  watch(t: Timed): void {
    this.watched.add(t);
  }

  unwatch(t: Timed): void {
    this.watched.delete(t);
  }

  close(): void {
    clearInterval(this.timer);
    this.watched.clear();
  }

  private sweep(): void {
    const now = (this.now = Date.now());
    for (const t of this.watched) {
      if (t.deadline > now) continue;
      this.watched.delete(t);
      try {
        t.timedOut();
      } catch {
        // One exchange's failure to close never stops the others' timeouts.
      }
    }
  }
}
