// The dashboard in a real browser (Debian's chromium, headless): sign in through
// the one-time URL, the apps page, an app page with its charts and live log,
// the rollback button, and what is refused without a session.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppRepo, get, waitFor } from './support/apps.js';
import { dashboardRequest, launchChromium, loginUrl, signIn } from './support/dashboard.js';
import { Platform } from './support/platform.js';

const HOSTILE = '<script>window.pwned=1</script><img src=x onerror="window.pwned=2">';
const SECRET = 'dash-s3cret-value';
export const SCREENSHOT = path.join(os.tmpdir(), 'platformx-dashboard-app.png');

function app(body: string): Record<string, string> {
  return {
    'package.json': JSON.stringify({ name: 'charty', version: '1.0.0', scripts: { start: 'node server.js' } }),
    'server.js': `require('http').createServer((q, s) => {
  console.log(${JSON.stringify(HOSTILE)} + ' ' + q.url);
  if (q.url === '/boom') { s.statusCode = 500; s.end('boom'); return; }
  s.end(${JSON.stringify(body)});
}).listen(process.env.PORT);`,
  };
}

let px: Platform;
let repo: AppRepo;
let chrome: Awaited<ReturnType<typeof launchChromium>>;
let base: string;

beforeAll(async () => {
  px = await Platform.start();
  base = `http://127.0.0.1:${px.info.dashboardPort}`;
  const token = await px.createApp('charty');
  repo = await AppRepo.create(app('first'));
  expect((await repo.push(px.gitUrl('charty', token))).code).toBe(0);
  await repo.commit(app('second'), 'second <b>bold</b> & "quoted"');
  expect((await repo.push(px.gitUrl('charty', token))).code).toBe(0);
  await px.ok(['config:set', 'charty', `API_KEY=${SECRET}`]);
  for (let i = 0; i < 20; i++) expect((await get(px.info.httpPort, 'charty.localhost', `/r${i}`)).body).toBe('second');
  expect((await get(px.info.httpPort, 'charty.localhost', '/boom')).status).toBe(500);
  // The data plane hands its access entries over in batches: wait until all 21 are counted.
  const { cookie } = await signIn(px);
  await waitFor(async () => (await dashboardRequest(px.info.dashboardPort!, '/apps', { cookie })).body.includes('21 in the last hour'), 5000, 'the 21 requests');
  chrome = await launchChromium();
});

afterAll(async () => {
  await chrome?.close();
  await px?.destroy();
  repo?.remove();
});

async function newPage(): Promise<Page> {
  const context = await chrome.browser.createBrowserContext();
  const page = await context.newPage();
  await page.setViewport({ width: 1280, height: 1000 });
  return page;
}

describe('the dashboard in chromium', () => {
  it('without a session every page redirects to the login page', async () => {
    const page = await newPage();
    for (const p of ['/apps', '/apps/charty', '/apps/charty/live', '/']) {
      await page.goto(`${base}${p}`);
      expect(new URL(page.url()).pathname).toBe('/login');
    }
    expect(await page.$eval('main', (m) => m.textContent)).toContain('platformx dashboard:login');
    const plain = await dashboardRequest(px.info.dashboardPort!, '/apps/charty');
    expect([plain.status, plain.headers.location]).toEqual([303, '/login']);
    await page.browserContext().close();
  });

  it('signs in once through the URL, shows the apps, an app with its charts and live log, and rolls back', async () => {
    const page = await newPage();
    let dialogs = 0;
    page.on('dialog', (d) => {
      dialogs++;
      void d.dismiss();
    });
    const url = await loginUrl(px);
    expect(url).toMatch(new RegExp(`^${base}/login/[A-Za-z0-9_-]{43}$`));
    const first = await page.goto(url);
    expect(new URL(page.url()).pathname).toBe('/apps');
    expect(first?.request().redirectChain().map((r) => r.response()?.status())).toEqual([303]);
    const cookie = (await page.browserContext().cookies()).find((c) => c.name === 'platformx_session')!;
    expect([cookie.httpOnly, cookie.sameSite]).toEqual([true, 'Strict']);

    // The apps page: the app, its release, a sparkline.
    const row = await page.$eval('table.apps tbody tr', (tr) => tr.textContent!.replace(/\s+/g, ' '));
    expect(row).toContain('charty');
    expect(row).toContain('running');
    expect(row).toContain('v3');
    expect(row).toContain('21 in the last hour');
    expect(await page.$$eval('table.apps svg.sparkline', (s) => s.length)).toBe(1);

    // The app page: releases, processes, three charts with the requests drawn.
    await Promise.all([page.waitForNavigation(), page.click('a[href="/apps/charty"]')]);
    expect(new URL(page.url()).pathname).toBe('/apps/charty');
    expect(await page.$$eval('svg.chart', (s) => s.map((x) => x.getAttribute('aria-label')))).toEqual([
      'Requests a second, last hour', 'Latency p50, p95 and p99 in ms, last hour', 'Share of 5xx answers in %, last hour',
    ]);
    const drawn = await page.$$eval('svg.chart', (s) => s.map((x) => x.querySelectorAll('path.line[d^="M"], circle.dot').length));
    expect(drawn.every((n) => n > 0)).toBe(true);
    const text = (await page.$eval('main', (m) => m.textContent!)).replace(/\s+/g, ' ');
    expect(text).toContain('21 requests and 4.8 % 5xx in the last hour');
    expect(text).toContain('API_KEY');
    expect(await page.content()).not.toContain(SECRET);
    const proc = await page.$$eval('#processes tbody td', (tds) => tds.map((td) => td.textContent!.trim()));
    expect(proc.slice(0, 3)).toEqual(['web.1', 'v3', 'up']);
    expect(proc[3]).toMatch(/^\d+$/);
    expect(proc[6]).toMatch(/^[\d.]+ (kB|MB) of 512\.0 MB$/);
    expect(await page.$$eval('button[data-rollback]', (b) => b.map((x) => x.textContent))).toEqual(['Roll back to v2', 'Roll back to v1']);

    // App output is text, never markup: nothing ran, and the log shows it as written.
    const logText = await page.$eval('#live-log', (l) => l.textContent!);
    expect(logText).toContain(HOSTILE);
    expect(await page.$$eval('#live-log script, #live-log img', (x) => x.length)).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned)).toBeUndefined();

    // The live log: a request made now appears without a reload.
    await page.waitForFunction(() => document.getElementById('live-status')?.textContent === 'live', { timeout: 10_000 });
    await get(px.info.httpPort, 'charty.localhost', '/after-load');
    await page.waitForFunction(() => document.getElementById('live-log')!.textContent!.includes('/after-load'), { timeout: 10_000 });
    expect(await page.$$eval('#live-log script, #live-log img', (x) => x.length)).toBe(0);

    await page.screenshot({ path: SCREENSHOT, fullPage: true });

    // Roll back to v1 with the button: the output streams, then v1's code serves through the proxy.
    await Promise.all([page.waitForNavigation(), page.click('button[data-rollback="1"]')]);
    await page.waitForSelector('#back', { timeout: 60_000 });
    const out = await page.$eval('pre.deploy-output', (p) => p.textContent!);
    expect(out).toContain('-----> Preparing release v4 (rollback to v1) from the build of v1');
    expect(out).toContain('Rolled back: v4 is live');
    expect((await get(px.info.httpPort, 'charty.localhost', '/')).body).toBe('first');
    const releases = JSON.parse(await px.ok(['releases', 'charty', '--json']));
    expect(releases[0]).toMatchObject({ version: 'v4', source: 'rollback', current: true, by: 'local' });

    // Back on the app page, a deploy started elsewhere streams its output into the live log.
    await Promise.all([page.waitForNavigation(), page.click('#back')]);
    expect(await page.$eval('main', (m) => m.textContent!)).toContain('v4 serves');
    await page.waitForFunction(() => document.getElementById('live-status')?.textContent === 'live', { timeout: 10_000 });
    await px.ok(['deploy', 'charty']);
    await page.waitForFunction(() => document.getElementById('live-log')!.textContent!.includes('healthy on port'), { timeout: 30_000 });
    await page.waitForFunction(() => !document.getElementById('release-banner')!.hidden, { timeout: 10_000 });
    expect(await page.$eval('#release-banner .what', (b) => b.textContent)).toBe('Release v5 succeeded. ');

    // No page holds a config value, the session cookie or the login secret.
    for (const p of ['/apps', '/apps/charty']) {
      await page.goto(`${base}${p}`);
      const html = await page.content();
      expect(html).not.toContain(SECRET);
      expect(html).not.toContain(cookie.value);
      expect(html).not.toContain(url.split('/login/')[1]);
    }
    expect(dialogs).toBe(0);
    expect(fs.statSync(SCREENSHOT).size).toBeGreaterThan(10_000);

    // The login URL was used once: a second browser is refused.
    const other = await newPage();
    const again = await other.goto(url);
    expect(again?.status()).toBe(403);
    expect(await other.$eval('main', (m) => m.textContent)).toContain('already used or has expired');
    expect((await other.browserContext().cookies()).find((c) => c.name === 'platformx_session')).toBeUndefined();
    await other.goto(`${base}/apps`);
    expect(new URL(other.url()).pathname).toBe('/login');
    await other.browserContext().close();

    // Logging out ends the session: the old cookie opens nothing.
    await Promise.all([page.waitForNavigation(), page.click('header form button')]);
    expect(new URL(page.url()).pathname).toBe('/login');
    const stale = await dashboardRequest(px.info.dashboardPort!, '/apps', { cookie: `platformx_session=${cookie.value}` });
    expect([stale.status, stale.headers.location]).toEqual([303, '/login']);
    await page.browserContext().close();
  });
});
