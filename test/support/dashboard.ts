// The dashboard from a test: plain HTTP with a session cookie, and Debian's
// chromium driven by puppeteer-core (which downloads no browser of its own).
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import puppeteer, { type Browser } from 'puppeteer-core';
import type { Platform } from './platform.js';

export const CHROMIUM = '/usr/bin/chromium';

export interface DashboardAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request to the dashboard on loopback. */
export function dashboardRequest(
  port: number, urlPath: string, opts: { method?: string; cookie?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<DashboardAnswer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.cookie) headers.cookie = opts.cookie;
    if (opts.body !== undefined) {
      headers['content-type'] ??= 'application/x-www-form-urlencoded';
      headers['content-length'] = String(Buffer.byteLength(opts.body));
    }
    const req = http.request({ host: '127.0.0.1', port, path: urlPath, method: opts.method ?? 'GET', headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.setTimeout(30_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** A fresh one-time login URL from the real CLI. */
export async function loginUrl(px: Platform): Promise<string> {
  return (await px.ok(['dashboard:login'])).trim();
}

/** Signs in over plain HTTP: the session cookie ("name=value") and the CSRF token of the apps page. */
export async function signIn(px: Platform): Promise<{ cookie: string; csrf: string }> {
  const url = new URL(await loginUrl(px));
  const r = await dashboardRequest(Number(url.port), url.pathname);
  const cookie = String(r.headers['set-cookie']?.[0] ?? '').split(';')[0]!;
  const page = await dashboardRequest(Number(url.port), '/apps', { cookie });
  const csrf = /name="csrf" value="([^"]+)"/.exec(page.body)?.[1] ?? '';
  return { cookie, csrf };
}

/** Headless chromium with a profile of its own, removed by close(). */
export async function launchChromium(): Promise<{ browser: Browser; close(): Promise<void> }> {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)`);
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'pxchrome-'));
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    userDataDir: profile,
    args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  return {
    browser,
    async close() {
      await browser.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}
