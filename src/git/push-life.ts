/**
 * The life of one deploying push. It spans two git hooks (two processes, two
 * control connections) and holds the app's deploy lock from the first to the
 * last, so where it can end is written down here, once:
 *
 *   waiting ──lock──► preparing ──built──► parked ──post-receive──► promoting ──► promoted
 *                       │    │               │                          └──switch threw──► failed
 *                       │    └─pusher gone─► abandoned ◄─ push ended, no post-receive
 *                       │                                 in time, branch not updated
 *                       └─stale branch or failed build──► refused
 *
 * Every way from `preparing` to an end gives the lock back exactly once; a
 * parked release is either promoted or discarded, never left running.
 */

export type PushState = 'waiting' | 'preparing' | 'parked' | 'promoting' | 'promoted' | 'refused' | 'abandoned' | 'failed';

const NEXT: Record<PushState, readonly PushState[]> = {
  waiting: ['preparing'],
  preparing: ['parked', 'refused', 'abandoned'],
  parked: ['promoting', 'abandoned'],
  promoting: ['promoted', 'failed'],
  promoted: [],
  refused: [],
  abandoned: [],
  failed: [],
};

/** A release pre-receive built and started, waiting for its switch. */
export interface ParkedRelease {
  app: string;
  /** The commit it was built from: post-receive must report a deploy branch moved to it. */
  commit: string;
  promote(write: (line: string) => void): Promise<void>;
  discard(why: string): Promise<void>;
}

export interface PushLifeOptions {
  /** How long a parked release waits for post-receive before it is discarded. */
  abandonAfterMs: number;
  /** Called once, on reaching an end state. */
  onEnd?: (state: PushState) => void;
}

export class PushLife {
  private current: PushState = 'waiting';
  private unlock: (() => void) | null = null;
  private release: ParkedRelease | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly o: PushLifeOptions) {}

  get state(): PushState {
    return this.current;
  }

  /** The parked release, while there is one. */
  get parked(): ParkedRelease | null {
    return this.current === 'parked' ? this.release : null;
  }

  /** waiting → preparing: the app's deploy lock is ours. */
  locked(unlock: () => void): void {
    this.to('preparing');
    this.unlock = unlock;
  }

  /** preparing → refused: the branch moved or the build failed; nothing was parked. */
  refuse(): void {
    this.to('refused');
    this.settle();
  }

  /** preparing → parked, or → abandoned (the release discarded) when the pusher is gone already. */
  async park(release: ParkedRelease, pusherConnected: boolean): Promise<PushState> {
    this.release = release;
    if (!pusherConnected) {
      await this.discard('the pusher went away before the switch');
      return this.current;
    }
    this.to('parked');
    this.timer = setTimeout(() => void this.abandon('no post-receive arrived'), this.o.abandonAfterMs);
    this.timer.unref();
    return this.current;
  }

  /** parked → promoting → promoted (or failed, when the switch throws: the error is passed on). */
  async promote(write: (line: string) => void): Promise<void> {
    this.to('promoting');
    this.stopTimer();
    try {
      await this.release!.promote(write);
      this.to('promoted');
    } catch (err) {
      this.to('failed');
      throw err;
    } finally {
      this.settle();
    }
  }

  /** parked → abandoned: the push ended, timed out or did not move the branch. Ignored in any other state. */
  async abandon(why: string): Promise<void> {
    if (this.current !== 'parked') return;
    this.stopTimer();
    await this.discard(why);
  }

  private async discard(why: string): Promise<void> {
    // The state changes first, so an abandon arriving while the release stops finds nothing to do;
    // the lock goes back once it has stopped.
    this.to('abandoned');
    try {
      await this.release!.discard(why);
    } finally {
      this.settle();
    }
  }

  /** At an end: the lock goes back, once. */
  private settle(): void {
    this.unlock?.();
    this.unlock = null;
    this.o.onEnd?.(this.current);
  }

  private stopTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private to(next: PushState): void {
    if (!NEXT[this.current].includes(next)) throw new Error(`push cannot go from ${this.current} to ${next}`);
    this.current = next;
  }
}
