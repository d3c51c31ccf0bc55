import type { CouchClient } from './couch-client.js';

export interface HealthOptions {
  /** A failed probe after this many in a row marks the server down. */
  downAfter: number;
  /** Answered probes in a row that mark a down server up again. */
  upAfter: number;
  timeoutMs: number;
}

export const DEFAULT_HEALTH: HealthOptions = { downAfter: 3, upAfter: 2, timeoutMs: 1000 };

/**
 * Whether one CouchDB server answers, from probes of its welcome document.
 * A short run of failures marks it down and a short run of answers up again,
 * so one slow answer neither moves traffic nor brings it back.
 */
export class ServerHealth {
  private isUp: boolean | null = null;
  private run = 0;
  private probing: Promise<boolean> | null = null;

  constructor(readonly client: CouchClient, private readonly o: HealthOptions = DEFAULT_HEALTH) {}

  /** Up until a run of failures says otherwise; before the first probe, unknown reads as up. */
  get up(): boolean {
    return this.isUp ?? true;
  }

  /** One probe (one at a time); resolves to whether the state changed. */
  probe(): Promise<boolean> {
    this.probing ??= this.client.ping(this.o.timeoutMs).then((ok) => {
      this.probing = null;
      return this.record(ok);
    });
    return this.probing;
  }

  private record(ok: boolean): boolean {
    if (this.isUp === null) {
      // The first probe decides at once: a server that is down at start is not waited for.
      this.isUp = ok;
      return !ok;
    }
    if (ok === this.isUp) {
      this.run = 0;
      return false;
    }
    this.run++;
    if (this.run < (this.isUp ? this.o.downAfter : this.o.upAfter)) return false;
    this.isUp = ok;
    this.run = 0;
    return true;
  }
}
