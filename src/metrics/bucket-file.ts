import fs from 'node:fs';
import { writeFileAtomic } from '../state/atomic-file.js';
import { LATENCY_BOUNDS_MS, STATUS_CLASSES, WINDOW_MINUTES, type MinuteBucket, type MinuteBuckets } from './minute-buckets.js';

// One row of numbers a minute: [minute, requests, latencyMsSum, ...status, ...latency].
type Row = number[];
interface BucketFileV1 {
  v: 1;
  /** The histogram bounds the rows were counted with: rows of other bounds are not read. */
  bounds: number[];
  apps: Record<string, Row[]>;
}

const ROW_LENGTH = 3 + STATUS_CLASSES.length + LATENCY_BOUNDS_MS.length + 1;

function toRow(b: MinuteBucket): Row {
  return [b.minute, b.requests, Math.round(b.latencyMsSum), ...b.status, ...b.latency];
}

function fromRow(r: unknown): MinuteBucket | null {
  if (!Array.isArray(r) || r.length !== ROW_LENGTH || !r.every((n) => Number.isInteger(n) && n >= 0)) return null;
  const s = 3 + STATUS_CLASSES.length;
  return { minute: r[0], requests: r[1], latencyMsSum: r[2], status: r.slice(3, s), latency: r.slice(s) };
}

/**
 * The minute buckets in a small file in the data folder, so a restart keeps the
 * last hour of charts. Written atomically; a missing, torn or foreign file starts empty.
 */
export class BucketFile {
  constructor(private readonly file: string) {}

  save(buckets: MinuteBuckets, apps: ReadonlySet<string>, nowMs = Date.now()): void {
    const out: BucketFileV1 = { v: 1, bounds: [...LATENCY_BOUNDS_MS], apps: {} };
    for (const [app, list] of buckets.entries(nowMs)) if (apps.has(app)) out.apps[app] = list.map(toRow);
    writeFileAtomic(this.file, JSON.stringify(out));
  }

  /** Reads what is still inside the window into buckets; returns the number of minutes read. */
  load(buckets: MinuteBuckets, apps: ReadonlySet<string>, nowMs = Date.now()): number {
    let parsed: Partial<BucketFileV1>;
    try {
      parsed = JSON.parse(fs.readFileSync(this.file, 'utf8')) as Partial<BucketFileV1>;
    } catch {
      return 0;
    }
    if (parsed.v !== 1 || JSON.stringify(parsed.bounds) !== JSON.stringify(LATENCY_BOUNDS_MS) || typeof parsed.apps !== 'object' || !parsed.apps) return 0;
    const oldest = Math.floor(nowMs / 60_000) - WINDOW_MINUTES + 1;
    let read = 0;
    for (const [app, rows] of Object.entries(parsed.apps)) {
      if (!apps.has(app) || !Array.isArray(rows)) continue;
      const kept = rows.map(fromRow).filter((b): b is MinuteBucket => b !== null && b.minute >= oldest);
      if (kept.length) buckets.load(app, kept);
      read += kept.length;
    }
    return read;
  }
}
