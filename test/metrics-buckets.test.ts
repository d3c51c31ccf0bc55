// Per-app minute buckets: the figures the charts draw, kept small and carried
// across a restart in a compact file.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BucketFile } from '../src/metrics/bucket-file.js';
import { LATENCY_BOUNDS_MS, MinuteBuckets, WINDOW_MINUTES, quantile, statusClass } from '../src/metrics/minute-buckets.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pxmb-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const T0 = Date.UTC(2025, 0, 1, 12, 0, 0);
const min = (n: number) => n * 60_000;

describe('minute buckets', () => {
  it('counts requests, status classes and latency per minute; percentiles come from the histogram', () => {
    const b = new MinuteBuckets();
    // 100 requests in one minute: 90 fast (≤5 ms), 9 at 300 ms, 1 at 20 s; 5 of them 5xx.
    for (let i = 0; i < 90; i++) b.record('web', i < 5 ? 503 : 200, 4, T0 + 1000);
    for (let i = 0; i < 9; i++) b.record('web', 200, 300, T0 + 2000);
    b.record('web', 404, 20_000, T0 + 3000);
    const points = b.series('web', T0 + min(1) + 30_000);
    expect(points).toHaveLength(WINDOW_MINUTES);
    const p = points[points.length - 2]!;
    expect([p.requests, p.errors5xx, p.perSecond]).toEqual([100, 5, 100 / 60]);
    expect(p.p50).toBeGreaterThan(2);
    expect(p.p50).toBeLessThanOrEqual(5);
    expect(p.p95).toBeGreaterThan(250);
    expect(p.p95).toBeLessThanOrEqual(500);
    // The slowest request is past the last bound: p99 lands between 250 and 500 ms, the overflow bucket answers its lower bound.
    expect(quantile([...LATENCY_BOUNDS_MS.map(() => 0), 3], 0.5)).toBe(LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.length - 1]);
    // The current minute has seen 30 s: nothing yet, and a quiet minute has no latency.
    expect(points[points.length - 1]).toMatchObject({ requests: 0, perSecond: 0, p50: null });
    expect(b.series('other', T0)).toHaveLength(WINDOW_MINUTES);
  });

  it('the current minute rates over the seconds gone by; minutes older than the hour are dropped', () => {
    const b = new MinuteBuckets();
    for (let i = 0; i < 10; i++) b.record('web', 200, 1, T0 + 1000);
    expect(b.series('web', T0 + 10_000).at(-1)!.perSecond).toBe(1);
    b.record('web', 200, 1, T0 + min(WINDOW_MINUTES - 1));
    const points = b.series('web', T0 + min(WINDOW_MINUTES - 1));
    expect(points[0]!.requests).toBe(10);
    b.record('web', 200, 1, T0 + min(WINDOW_MINUTES));
    expect(b.entries(T0 + min(WINDOW_MINUTES)).map(([, list]) => list.map((x) => x.requests))).toEqual([[1, 1]]);
  });

  it('sorts odd statuses into classes', () => {
    expect([101, 200, 304, 499, 502, 0, 600].map(statusClass)).toEqual([0, 1, 2, 3, 4, 3, 3]);
  });
});

describe('the bucket file', () => {
  it('keeps the last hour across a restart, for apps that still exist, in a few kilobytes', () => {
    const file = path.join(dir, 'metrics.json');
    const before = new MinuteBuckets();
    for (let m = 0; m < 90; m++) for (let i = 0; i < 1000; i++) before.record('busy', i % 50 ? 200 : 500, i % 300, T0 + min(m));
    before.record('gone', 200, 1, T0 + min(89));
    const now = T0 + min(89) + 5000;
    // A destroyed app's figures are not written, and not read back from an older file.
    new BucketFile(file).save(before, new Set(['busy']), now);
    expect(Object.keys(JSON.parse(fs.readFileSync(file, 'utf8')).apps)).toEqual(['busy']);
    new BucketFile(file).save(before, new Set(['busy', 'gone']), now);
    const size = fs.statSync(file).size;
    expect(size).toBeLessThan(8 * 1024);
    expect((fs.statSync(file).mode & 0o777).toString(8)).toBe('600');

    const after = new MinuteBuckets();
    // Read 10 minutes later: the 10 oldest saved minutes are out of the window now.
    const read = new BucketFile(file).load(after, new Set(['busy']), now + min(10));
    expect(read).toBe(WINDOW_MINUTES - 10);
    const points = after.series('busy', now + min(10));
    expect(points.filter((p) => p.requests === 1000)).toHaveLength(WINDOW_MINUTES - 10);
    expect(points.find((p) => p.requests)!.errors5xx).toBe(20);
    expect(after.series('gone', now).every((p) => p.requests === 0)).toBe(true);
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('starts empty from a missing, torn or foreign file', () => {
    const file = path.join(dir, 'bad.json');
    const into = new MinuteBuckets();
    expect(new BucketFile(path.join(dir, 'missing.json')).load(into, new Set(['a']), T0)).toBe(0);
    fs.writeFileSync(file, '{"v":1,"bounds":[1,2');
    expect(new BucketFile(file).load(into, new Set(['a']), T0)).toBe(0);
    fs.writeFileSync(file, JSON.stringify({ v: 1, bounds: [1, 2, 3], apps: { a: [[Math.floor(T0 / 60_000), 1, 1, 0, 1, 0, 0, 0]] } }));
    expect(new BucketFile(file).load(into, new Set(['a']), T0)).toBe(0);
    // Rows of the wrong shape or with junk are skipped, good rows are kept.
    const good = [Math.floor(T0 / 60_000), 2, 3, 0, 2, 0, 0, 0, ...LATENCY_BOUNDS_MS.map(() => 0), 2];
    fs.writeFileSync(file, JSON.stringify({ v: 1, bounds: LATENCY_BOUNDS_MS, apps: { a: [good, [1, 2], [...good.slice(0, -1), -5]] } }));
    expect(new BucketFile(file).load(into, new Set(['a']), T0)).toBe(1);
    expect(into.series('a', T0).at(-1)!.requests).toBe(2);
  });
});
