import { EventEmitter } from 'node:events';
import type { ReleaseSource } from '../state/types.js';

/** A release left 'building': live, or failed (including a push abandoned before its switch). */
export interface ReleaseOutcome {
  app: string;
  version: number;
  source: ReleaseSource;
  outcome: 'succeeded' | 'failed';
  /** From the release's creation to its end. */
  seconds: number;
}

/**
 * What Maestro tells the parts above it (the dashboard, metrics): every deploy
 * output line and each release's outcome. Maestro emits and never waits; it
 * knows nothing of who listens.
 */
export class MaestroEvents extends EventEmitter<{ output: [app: string, line: string]; release: [ReleaseOutcome] }> {
  constructor() {
    super();
    this.setMaxListeners(0);
  }
}
