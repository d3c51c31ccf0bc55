import type { AppProcess } from './app-process.js';
import { readAppJson } from './health-check.js';
import { AppStartError } from '../errors.js';

/** How long a process with no port must stay up to pass, as Dokku's checks wait by default. */
export const DEFAULT_UPTIME_MS = 10_000;

/**
 * The settle time of a process type without a port (workers): Dokku's app.json
 * `healthchecks.TYPE` entry `{ "type": "uptime", "uptime": SECONDS }`, else the default.
 */
export function readUptime(dir: string, type: string): number {
  const entries = readAppJson(dir)?.healthchecks?.[type];
  if (!Array.isArray(entries)) return DEFAULT_UPTIME_MS;
  const entry = entries.find((e: { type?: unknown }) => e && e.type === 'uptime') as { uptime?: unknown } | undefined;
  return typeof entry?.uptime === 'number' && entry.uptime >= 0 && entry.uptime <= 600 ? entry.uptime * 1000 : DEFAULT_UPTIME_MS;
}

/** Passes once the process has run `ms` without exiting; fails as soon as it exits. */
export async function stayUp(proc: AppProcess, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const exit = proc.exitedEarly();
    if (exit) throw new AppStartError(`${proc.name} ${exit} within ${ms / 1000} s of starting (a process without a web port must stay up)`);
    const left = deadline - Date.now();
    if (left <= 0) return;
    await new Promise((r) => setTimeout(r, Math.min(left, 100)));
  }
}
