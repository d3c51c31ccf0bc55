import http from 'node:http';
import net from 'node:net';
import { readAppText } from '../apprunner/sandbox-files.js';

import { foreignListeners } from './port-listener.js';
import { AppStartError } from '../errors.js';

/** The process a check is about: one the platform spawned. */
export interface CheckedProcess {
  /** web.1, … */
  readonly name: string;
  /** The pid the platform spawned; null once it is gone. */
  readonly pid: number | null;
  /** Why the process is gone, or null while it runs. */
  exitedEarly(): string | null;
}

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

/** Dokku's app.json, the parts the platform reads (health checks, deploy scripts). */
export interface AppJson {
  healthchecks?: Record<string, unknown>;
  scripts?: { dokku?: { predeploy?: unknown; postdeploy?: unknown } };
}

/** The release's app.json, or null without one; invalid JSON is the app's failed start. */
export function readAppJson(dir: string): AppJson | null {
  const text = readAppText(dir, 'app.json');
  if (text === null) return null;
  try {
    return JSON.parse(text) as AppJson;
  } catch (err) {
    throw new AppStartError(`app.json is not valid JSON: ${(err as Error).message}`);
  }
}

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
  const web = readAppJson(dir)?.healthchecks?.web;
  const entry = Array.isArray(web) ? (web as Array<Record<string, unknown>>).find((e) => !e.type || e.type === 'startup') : undefined;
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
 * Every listener a connect to 127.0.0.1:port could reach must be proc's (its
 * own or its children's socket): any process may bind any free port, so a
 * co-tenant could bind the one handed to a new release before it does.
 */
function checkOwnListener(port: number, proc: CheckedProcess): void {
  const pid = proc.pid;
  if (pid === null) return; // gone: the caller reports why
  const foreign = foreignListeners(port, pid);
  if (foreign.length > 0) {
    throw new AppStartError(
      `PORT ${port} of ${proc.name} is held by a process the platform did not start (uid ${foreign[0]!.uid}): nothing was switched; deploy again to get another port`,
    );
  }
}

/**
 * Waits until proc listens on port. Fails early when the process exits
 * instead of waiting out the boot timeout, and at once when another process
 * holds the port.
 */
export async function waitForListening(port: number, timeoutMs: number, proc: CheckedProcess): Promise<void> {
  const started = Date.now();
  const deadline = started + timeoutMs;
  for (;;) {
    const exit = proc.exitedEarly();
    if (exit) throw new AppStartError(`the process ${exit} before listening on PORT ${port}`);
    if (await canConnect(port)) return checkOwnListener(port, proc);
    if (Date.now() > deadline) {
      throw new AppStartError(`the process did not listen on PORT ${port} within ${Math.round(timeoutMs / 1000)} s (it must bind process.env.PORT)`);
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

/** GETs the health path of proc until it answers below 500 (and holds `content`), or attempts run out. */
export async function checkHealth(port: number, check: HealthCheck, proc: CheckedProcess): Promise<void> {
  if (check.initialDelayMs) await sleep(check.initialDelayMs);
  let last = '';
  for (let attempt = 1; attempt <= check.attempts; attempt++) {
    const exit = proc.exitedEarly();
    if (exit) throw new AppStartError(`the process ${exit} during the health check`);
    checkOwnListener(port, proc);
    try {
      const { status, body } = await probe(port, check);
      if (status < 500 && (check.content === null || body.includes(check.content))) return;
      last = status >= 500 ? `GET ${check.path} answered ${status}` : `GET ${check.path} did not contain '${check.content}'`;
    } catch (err) {
      last = `GET ${check.path} failed: ${(err as Error).message}`;
    }
    if (attempt < check.attempts) await sleep(check.waitMs);
  }
  throw new AppStartError(`health check failed after ${check.attempts} attempts: ${last}`);
}
