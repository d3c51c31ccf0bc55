// /metrics on the real server: refused without the token, Prometheus text with
// the per-app counters after real requests through the proxy; the server log
// as JSON lines; a restart keeps the last hour of the charts.
import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppRepo, get, nodeApp, waitFor } from './support/apps.js';
import { dashboardRequest, signIn } from './support/dashboard.js';
import { Platform } from './support/platform.js';

let px: Platform;
let repo: AppRepo;
let pushUrl: string;

function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

async function scrape(token: string): Promise<string> {
  const r = await dashboardRequest(px.info.dashboardPort!, '/metrics', { headers: { authorization: `Bearer ${token}` } });
  expect(r.status).toBe(200);
  expect(r.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  return r.body;
}

beforeAll(async () => {
  px = await Platform.start(['--log-format', 'json']);
  const token = await px.createApp('counted');
  repo = await AppRepo.create(nodeApp('counted', {
    // /hold answers only once the client leaves; an upgrade is accepted and echoes.
    'server.js': `const srv = require('http').createServer((q, s) => { if (q.url === '/hold') return; s.statusCode = q.url === '/fail' ? 502 : 200; s.end('ok'); });
srv.on('upgrade', (q, sock) => { sock.write('HTTP/1.1 101 Switching Protocols\\r\\nConnection: Upgrade\\r\\nUpgrade: echo\\r\\n\\r\\n'); sock.pipe(sock); });
srv.listen(process.env.PORT);`,
  }));
  pushUrl = px.gitUrl('counted', token);
  expect((await repo.push(pushUrl)).code).toBe(0);
});

afterAll(async () => {
  await px?.destroy();
  repo?.remove();
});

describe('/metrics', () => {
  it('is 401 without the bearer token, with a wrong one and before any token exists', async () => {
    const port = px.info.dashboardPort!;
    const none = await dashboardRequest(port, '/metrics');
    expect([none.status, none.headers['www-authenticate']]).toEqual([401, 'Bearer realm="platformx"']);
    expect(none.body).toContain('platformx metrics:token');
    expect((await dashboardRequest(port, '/metrics', { headers: { authorization: 'Bearer pxm_guess' } })).status).toBe(401);
    // A dashboard session is no way in either.
    const { cookie } = await signIn(px);
    expect((await dashboardRequest(port, '/metrics', { cookie })).status).toBe(401);
  });

  it('counts requests per app and status class, deploys and processes', async () => {
    const token = (await px.ok(['metrics:token'])).trim();
    const before = await scrape(token);
    for (let i = 0; i < 7; i++) expect((await get(px.info.httpPort, 'counted.localhost', `/n${i}`)).status).toBe(200);
    expect((await get(px.info.httpPort, 'counted.localhost', '/fail')).status).toBe(502);
    const ok = 'platformx_http_requests_total{app="counted",code="2xx"}';
    const bad = 'platformx_http_requests_total{app="counted",code="5xx"}';
    // The data plane hands its access entries over in batches: they arrive a moment after the answers.
    const after = await waitFor(async () => {
      const text = await scrape(token);
      return sample(text, ok) + sample(text, bad) === sample(before, ok) + sample(before, bad) + 8 && text;
    }, 5000, 'the access entries');
    expect(sample(after, ok) - sample(before, ok)).toBe(7);
    expect(sample(after, bad) - sample(before, bad)).toBe(1);
    expect(sample(after, 'platformx_http_request_duration_seconds_count{app="counted"}')).toBe(sample(after, ok) + sample(after, bad));
    expect(sample(after, 'platformx_deploys_total{app="counted",outcome="succeeded"}')).toBe(1);
    expect(sample(after, 'platformx_deploy_duration_seconds_count{app="counted",outcome="succeeded"}')).toBe(1);
    expect(sample(after, 'platformx_processes{app="counted",type="web",state="up"}')).toBe(1);
    expect(sample(after, 'platformx_process_memory_bytes{app="counted",process="web.1"}')).toBeGreaterThan(1024 * 1024);
    expect(after).toMatch(/^platformx_server_nodejs_eventloop_lag_seconds [\d.e-]+$/m);
    // A rejected push counts as a failed deploy.
    await repo.commit({ 'server.js': 'process.exit(3)' }, 'broken');
    expect((await repo.push(pushUrl)).code).not.toBe(0);
    expect(sample(await scrape(token), 'platformx_deploys_total{app="counted",outcome="failed"}')).toBe(1);
    // What is open now, per app; the proxy's workers; the certificate each host is served with.
    expect(sample(after, 'platformx_open_requests{app="counted"}')).toBe(0);
    const held = http.get({ host: '127.0.0.1', port: px.info.httpPort, path: '/hold', headers: { host: 'counted.localhost' }, agent: false });
    held.on('error', () => {});
    const ws = net.connect(px.info.httpPort, '127.0.0.1');
    ws.write('GET /ws HTTP/1.1\r\nHost: counted.localhost\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n');
    await new Promise((resolve) => ws.once('data', resolve));
    const open = await waitFor(async () => {
      const text = await scrape(token);
      return sample(text, 'platformx_open_requests{app="counted"}') === 1 && text;
    }, 5000, 'the held request counted as open');
    expect(sample(open, 'platformx_open_websockets{app="counted"}')).toBe(1);
    expect(sample(open, 'platformx_proxy_workers{state="serving"}')).toBe(JSON.parse(await px.ok(['server:info', '--json'])).proxyWorkers.length);
    const days = sample(open, 'platformx_certificate_expiry_days{app="counted",host="counted.localhost",source="self-signed"}');
    expect(days).toBeGreaterThan(30);
    held.destroy();
    ws.destroy();
    const closed = await waitFor(async () => {
      const text = await scrape(token);
      return sample(text, 'platformx_open_requests{app="counted"}') + sample(text, 'platformx_open_websockets{app="counted"}') === 0 && text;
    }, 5000, 'nothing open once the clients left');
    expect(closed).toContain('platformx_open_websockets{app="counted"} 0');
    const rotated = (await px.ok(['metrics:token', '--rotate'])).trim();
    expect((await dashboardRequest(px.info.dashboardPort!, '/metrics', { headers: { authorization: `Bearer ${token}` } })).status).toBe(401);
    await scrape(rotated);
  });
});

describe('the server log and a restart', () => {
  it('writes one JSON object a line with level, time, msg, pid and fields', () => {
    const lines = px.output.split('\n').filter((l) => l.startsWith('{'));
    const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const ready = records.find((r) => String(r.msg).startsWith('ready: '))!;
    expect(ready).toMatchObject({ level: 'info', pid: px.info.pid, dashboardPort: px.info.dashboardPort, httpPort: px.info.httpPort });
    expect(new Date(String(ready.time)).toISOString()).toBe(ready.time);
    expect(px.output.split('\n').filter((l) => l.startsWith('platformx: '))).toEqual([]);
  });

  it('keeps the last hour of the charts across a restart, with app and release fields on start-up lines', async () => {
    for (let i = 0; i < 5; i++) await get(px.info.httpPort, 'counted.localhost', `/again${i}`);
    const page = async () => {
      const { cookie } = await signIn(px);
      return (await dashboardRequest(px.info.dashboardPort!, '/apps/counted', { cookie })).body;
    };
    const count = async () => /(\d+) requests and/.exec(await page())![1];
    // 7 + 1 + the held one and the upgrade + 5 requests, once the data plane has handed over their access entries.
    const counted = await waitFor(async () => (await count()) === '15' && '15', 5000, 'all 15 requests in the charts');
    await px.stop();
    await px.boot();
    expect(await count()).toBe(counted);
    const started = px.output.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((r) => String(r.msg).startsWith('started counted'));
    expect(started.at(-1)).toMatchObject({ level: 'info', app: 'counted', release: 1 });
  });
});
