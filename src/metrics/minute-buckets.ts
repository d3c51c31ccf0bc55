// Per-app request figures in rolling one-minute buckets: a fixed few numbers a
// minute, never a row per request, so an hour of a busy app is a few kilobytes.

/** Upper bounds (ms) of the latency histogram; one more bucket holds everything slower. */
export const LATENCY_BOUNDS_MS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000] as const;
export const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;
export type StatusClass = (typeof STATUS_CLASSES)[number];
/** Minutes kept, the current one included. */
export const WINDOW_MINUTES = 60;

export interface MinuteBucket {
  /** Minutes since the epoch. */
  minute: number;
  requests: number;
  /** Counts by STATUS_CLASSES index. */
  status: number[];
  /** Counts by LATENCY_BOUNDS_MS index, the last one past the highest bound. */
  latency: number[];
  latencyMsSum: number;
}

/** One minute as the charts show it. Latencies are null in a minute without requests. */
export interface MinutePoint {
  minute: number;
  requests: number;
  /** Requests a second: over the seconds of the minute gone by, for the current one. */
  perSecond: number;
  errors5xx: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

export function statusClass(status: number): number {
  const i = Math.floor(status / 100) - 1;
  return i >= 0 && i < STATUS_CLASSES.length ? i : 3; // anything odd counts as a client-side failure
}

export function latencyBucket(ms: number): number {
  for (let i = 0; i < LATENCY_BOUNDS_MS.length; i++) if (ms <= LATENCY_BOUNDS_MS[i]!) return i;
  return LATENCY_BOUNDS_MS.length;
}

function emptyBucket(minute: number): MinuteBucket {
  return { minute, requests: 0, status: STATUS_CLASSES.map(() => 0), latency: [...LATENCY_BOUNDS_MS, 0].map(() => 0), latencyMsSum: 0 };
}

/**
 * The q-quantile of a histogram, interpolated inside its bucket (as Prometheus'
 * histogram_quantile does); the overflow bucket answers its lower bound.
 */
export function quantile(counts: readonly number[], q: number): number | null {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i]!;
    if (c > 0 && seen + c >= rank) {
      const lower = i === 0 ? 0 : LATENCY_BOUNDS_MS[i - 1]!;
      if (i >= LATENCY_BOUNDS_MS.length) return lower;
      return lower + (LATENCY_BOUNDS_MS[i]! - lower) * ((rank - seen) / c);
    }
    seen += c;
  }
  return LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.length - 1]!;
}

/** The last hour of one app, oldest minute first. */
export class AppMinutes {
  private buckets: MinuteBucket[] = [];

  constructor(buckets: MinuteBucket[] = []) {
    this.buckets = buckets;
  }

  record(status: number, ms: number, nowMs: number): void {
    const minute = Math.floor(nowMs / 60_000);
    let last = this.buckets[this.buckets.length - 1];
    if (!last || last.minute !== minute) {
      last = emptyBucket(minute);
      this.buckets.push(last);
      this.prune(minute);
    }
    last.requests++;
    last.status[statusClass(status)]!++;
    last.latency[latencyBucket(ms)]!++;
    last.latencyMsSum += ms;
  }

  private prune(currentMinute: number): void {
    const oldest = currentMinute - WINDOW_MINUTES + 1;
    if (this.buckets[0] && this.buckets[0].minute < oldest) this.buckets = this.buckets.filter((b) => b.minute >= oldest);
  }

  /** Buckets with requests in the window ending at nowMs. */
  kept(nowMs: number): MinuteBucket[] {
    this.prune(Math.floor(nowMs / 60_000));
    return this.buckets;
  }

  /** WINDOW_MINUTES points ending with the current minute; quiet minutes are zeros. */
  series(nowMs: number): MinutePoint[] {
    const current = Math.floor(nowMs / 60_000);
    const byMinute = new Map(this.kept(nowMs).map((b) => [b.minute, b]));
    const points: MinutePoint[] = [];
    for (let m = current - WINDOW_MINUTES + 1; m <= current; m++) {
      const b = byMinute.get(m);
      const seconds = m === current ? Math.max(1, (nowMs - m * 60_000) / 1000) : 60;
      points.push({
        minute: m,
        requests: b?.requests ?? 0,
        perSecond: (b?.requests ?? 0) / seconds,
        errors5xx: b?.status[4] ?? 0,
        p50: b ? quantile(b.latency, 0.5) : null,
        p95: b ? quantile(b.latency, 0.95) : null,
        p99: b ? quantile(b.latency, 0.99) : null,
      });
    }
    return points;
  }
}

/** Every app's minutes. */
export class MinuteBuckets {
  private readonly apps = new Map<string, AppMinutes>();

  record(app: string, status: number, ms: number, nowMs = Date.now()): void {
    let a = this.apps.get(app);
    if (!a) {
      a = new AppMinutes();
      this.apps.set(app, a);
    }
    a.record(status, ms, nowMs);
  }

  series(app: string, nowMs = Date.now()): MinutePoint[] {
    return (this.apps.get(app) ?? new AppMinutes()).series(nowMs);
  }

  /** Apps with figures, and their buckets of the last hour. */
  entries(nowMs = Date.now()): [string, MinuteBucket[]][] {
    return [...this.apps].map(([name, a]) => [name, a.kept(nowMs)] as [string, MinuteBucket[]]).filter(([, b]) => b.length > 0);
  }

  load(app: string, buckets: MinuteBucket[]): void {
    this.apps.set(app, new AppMinutes([...buckets].sort((x, y) => x.minute - y.minute)));
  }

  forget(app: string): void {
    this.apps.delete(app);
  }
}
