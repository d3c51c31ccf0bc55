import http from 'node:http';
import net from 'node:net';
import { readAppJson } from './app-json.js';

export interface HealthCheck {
  path: string;
  /** Text the body must contain, from app.json `content`. */
  content: string | null;
  attempts: number;
  waitMs: number;
  timeoutMs: number;
  initialDelayMs: number;
  /** How long the process may take to listen on PORT. */
  bootTimeoutMs: number;
}

export const DEFAULT_BOOT_TIMEOUT_MS = 60_000;

/** Reads Dokku's app.json `healthchecks.web` (first entry) over the defaults. */
export function readHealthCheck(dir: string, bootTimeoutMs = DEFAULT_BOOT_TIMEOUT_MS): HealthCheck {
  const check: HealthCheck = {
    path: '/',
    content: null,
    attempts: 3,
    waitMs: 1000,
    timeoutMs: 5000,
    initialDelayMs: 0,
    bootTimeoutMs,
  };
  const entry = readAppJson(dir)?.healthchecks?.web?.find((e) => !e.type || e.type === 'startup');
  if (!entry) return check;
  const num = (v: unknown) => (typeof v === 'number' && v >= 0 ? v : null);
  if (typeof entry.path === 'string' && entry.path.startsWith('/')) check.path = entry.path;
  if (typeof entry.content === 'string') check.content = entry.content;
  check.attempts = Math.max(1, num(entry.attempts) ?? check.attempts);
  check.waitMs = (num(entry.wait) ?? check.waitMs / 1000) * 1000;
  check.timeoutMs = (num(entry.timeout) ?? check.timeoutMs / 1000) * 1000;
  check.initialDelayMs = (num(entry.initialDelay) ?? 0) * 1000;
  return check;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host: '127.0.0.1' });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

/**
 * Waits until something listens on port. Fails early when the process exits
 * (gone() turns true) instead of waiting out the boot timeout.
 */
export async function waitForListening(port: number, timeoutMs: number, gone: () => string | null): Promise<void> {
  const started = Date.now();
  const deadline = started + timeoutMs;
  for (;;) {
    const exit = gone();
    if (exit) throw new Error(`the process ${exit} before listening on PORT ${port}`);
    if (await canConnect(port)) return;
    if (Date.now() > deadline) {
      throw new Error(`the process did not listen on PORT ${port} within ${Math.round(timeoutMs / 1000)} s (it must bind process.env.PORT)`);
    }
    // A loopback connect costs well under a millisecond: probe often while most
    // apps come up (a doubling backoff saw a 150 ms boot only at 300 ms), then back off.
    await sleep(Date.now() - started < 3000 ? 10 : 250);
  }
}

function probe(port: number, check: HealthCheck): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      { host: '127.0.0.1', port, path: check.path, headers: { 'user-agent': 'platformx-healthcheck' }, agent: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          if (body.length < 65536) body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.setTimeout(check.timeoutMs, () => req.destroy(new Error(`no answer within ${check.timeoutMs / 1000} s`)));
    req.on('error', reject);
  });
}

/** GETs the health path until it answers below 500 (and holds `content`), or attempts run out. */
export async function checkHealth(port: number, check: HealthCheck, gone: () => string | null): Promise<void> {
  if (check.initialDelayMs) await sleep(check.initialDelayMs);
  let last = '';
  for (let attempt = 1; attempt <= check.attempts; attempt++) {
    const exit = gone();
    if (exit) throw new Error(`the process ${exit} during the health check`);
    try {
      const { status, body } = await probe(port, check);
      if (status < 500 && (check.content === null || body.includes(check.content))) return;
      last = status >= 500 ? `GET ${check.path} answered ${status}` : `GET ${check.path} did not contain '${check.content}'`;
    } catch (err) {
      last = `GET ${check.path} failed: ${(err as Error).message}`;
    }
    if (attempt < check.attempts) await sleep(check.waitMs);
  }
  throw new Error(`health check failed after ${check.attempts} attempts: ${last}`);
}
