// What the dashboard refuses, over plain HTTP against the real server: forms
// without their CSRF token or from another site, posts without a session, a
// hostname an app serves; sign-in over SSH with an admin key only, and a
// session that ends with its key, its logout closing its live log.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppRepo, get, nodeApp, serverSource, waitFor } from './support/apps.js';
import { dashboardRequest, signIn } from './support/dashboard.js';
import { Platform, run } from './support/platform.js';

let px: Platform;
let keys: string;
let repo: AppRepo;
const sshOpts = (key: string) => ['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'IdentitiesOnly=yes',
  '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR', '-i', key];
const ssh = (key: string, ...command: string[]) => run('ssh', [...sshOpts(key), '-p', String(px.info.sshPort), 'git@127.0.0.1', ...command]);
const port = () => px.info.dashboardPort!;

async function newKey(name: string): Promise<string> {
  const file = path.join(keys, name);
  expect((await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', file])).code).toBe(0);
  return file;
}

beforeAll(async () => {
  px = await Platform.start(['--ssh-port', '0']);
  keys = fs.mkdtempSync(path.join(os.tmpdir(), 'pxdk-'));
  const token = await px.createApp('secure');
  repo = await AppRepo.create(nodeApp('one'));
  expect((await repo.push(px.gitUrl('secure', token))).code).toBe(0);
  await repo.commit({ 'server.js': serverSource('two') }, 'two');
  expect((await repo.push(px.gitUrl('secure', token))).code).toBe(0);
});

afterAll(async () => {
  await px?.destroy();
  repo?.remove();
  if (keys) fs.rmSync(keys, { recursive: true, force: true });
});

describe('state-changing requests', () => {
  it('need the session, its CSRF token and a same-origin page', async () => {
    const { cookie, csrf } = await signIn(px);
    expect(csrf).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const rollback = (opts: { cookie?: string; body: string; headers?: Record<string, string> }) =>
      dashboardRequest(port(), '/apps/secure/rollback', { method: 'POST', ...opts });
    const refusals = [
      [await rollback({ body: `csrf=${csrf}&version=1` }), 403, 'there is no session'],
      [await rollback({ cookie, body: 'version=1' }), 403, 'CSRF token does not match'],
      [await rollback({ cookie, body: `csrf=${csrf.slice(1)}x&version=1` }), 403, 'CSRF token does not match'],
      [await rollback({ cookie, body: `csrf=${csrf}&version=1`, headers: { origin: 'http://secure.localhost' } }), 403, 'sent from another site'],
      [await rollback({ cookie, body: `csrf=${csrf}&version=1`, headers: { 'sec-fetch-site': 'same-site' } }), 403, 'sent from another site'],
      [await rollback({ cookie, body: `csrf=${csrf}&version=1`, headers: { origin: 'null' } }), 403, 'sent from another site'],
      [await rollback({ cookie, body: `csrf=${csrf}&version=1`, headers: { 'content-type': 'text/plain' } }), 415, 'x-www-form-urlencoded'],
      [await rollback({ cookie, body: `csrf=${csrf}&version=1&pad=${'x'.repeat(9000)}` }), 413, 'larger than 8 kB'],
      [await rollback({ cookie, body: `csrf=${csrf}&version=v1;rm` }), 400, 'names no release'],
    ] as const;
    for (const [r, status, text] of refusals) {
      expect([r.status, r.body.includes(text)], r.body).toEqual([status, true]);
    }
    // Nothing of the above rolled anything back.
    expect((await get(px.info.httpPort, 'secure.localhost')).body).toBe('two');
    expect(JSON.parse(await px.ok(['releases', 'secure', '--json']))).toHaveLength(2);
    // The same form, whole: it runs.
    const done = await rollback({ cookie, body: `csrf=${csrf}&version=1`, headers: { origin: `http://127.0.0.1:${port()}` } });
    expect(done.status).toBe(200);
    expect(done.body).toContain('Rolled back: v3 is live');
    expect((await get(px.info.httpPort, 'secure.localhost')).body).toBe('one');
  });

  it('answers 404 for an unknown app or page, and refuses a hostname an app serves', async () => {
    const { cookie } = await signIn(px);
    for (const p of ['/apps/ghost', '/apps/..%2fstate.json', '/apps/secure/nothing', '/state.json']) {
      expect((await dashboardRequest(port(), p, { cookie })).status).toBe(404);
    }
    expect((await dashboardRequest(port(), '/apps/ghost/rollback', { method: 'POST', cookie, body: 'csrf=x' })).status).toBe(403);
    // An app's hostname would hand it the session cookie: no sign-in, no page there.
    const login = new URL((await px.ok(['dashboard:login'])).trim());
    const byAppHost = await dashboardRequest(port(), login.pathname, { headers: { host: `secure.localhost:${port()}` } });
    expect(byAppHost.status).toBe(421);
    expect(byAppHost.headers['set-cookie']).toBeUndefined();
    expect(byAppHost.body).toContain('also serves the app &#39;secure&#39;');
    expect((await dashboardRequest(port(), '/apps', { cookie, headers: { host: 'secure.localhost' } })).status).toBe(421);
    // The refused URL was not spent.
    expect((await dashboardRequest(port(), login.pathname)).status).toBe(303);
  });
});

describe('sign-in over SSH', () => {
  it('an admin key gets a URL, an app key does not; removing the key ends its session', async () => {
    const admin = await newKey('ops');
    const dev = await newKey('dev');
    await px.ok(['keys:add', 'ops', '--admin', '--file', `${admin}.pub`]);
    await px.ok(['keys:add', 'dev', '--app', 'secure', '--file', `${dev}.pub`]);
    const refused = await ssh(dev, 'dashboard:login');
    expect([refused.code, refused.stdout]).toEqual([1, '']);
    expect(refused.stderr).toContain("'dashboard:login' needs an admin key");

    const r = await ssh(admin, 'dashboard:login');
    expect(r.code, r.stderr).toBe(0);
    const url = new URL(r.stdout.trim());
    expect(url.port).toBe(String(port()));
    const opened = await dashboardRequest(port(), url.pathname);
    expect(opened.status).toBe(303);
    const cookie = String(opened.headers['set-cookie']![0]).split(';')[0]!;
    expect((await dashboardRequest(port(), '/apps', { cookie })).status).toBe(200);
    await px.ok(['keys:remove', 'ops']);
    const after = await dashboardRequest(port(), '/apps', { cookie });
    expect([after.status, after.headers.location]).toEqual([303, '/login']);
  });
});

describe('the live log', () => {
  it('streams the app\'s lines as server-sent events and ends at logout', async () => {
    const { cookie, csrf } = await signIn(px);
    let events = '';
    let ended = false;
    const req = http.get({ host: '127.0.0.1', port: port(), path: '/apps/secure/live', headers: { cookie }, agent: false }, (res) => {
      expect(res.headers['content-type']).toBe('text/event-stream; charset=utf-8');
      res.setEncoding('utf8');
      res.on('data', (c: string) => (events += c));
      res.on('end', () => (ended = true));
    });
    req.on('error', () => {});
    await waitFor(async () => events.includes('retry:'), 5000, 'the stream to open');
    await get(px.info.httpPort, 'secure.localhost', '/streamed?a=%0Aevent:%20release');
    await waitFor(async () => events.includes('/streamed'), 5000, 'the router line');
    const line = events.split('\n\n').find((e) => e.includes('/streamed'))!;
    // The request's path is JSON in one data field: a newline in it cannot start an event of its own.
    expect(line.split('\n').map((l) => l.split(':')[0])).toEqual(['event', 'data']);
    expect(JSON.parse(line.split('\n')[1]!.slice('data: '.length))).toMatchObject({ tag: 'router' });
    expect((await dashboardRequest(port(), '/logout', { method: 'POST', cookie, body: `csrf=${csrf}` })).status).toBe(303);
    await waitFor(async () => ended, 5000, 'the stream to end');
    expect(events).toContain('event: end\ndata: {"reason":"logout"}');
    // Eight streams a session at most.
    const again = await signIn(px);
    const held: http.ClientRequest[] = [];
    const statuses: number[] = [];
    for (let i = 0; i < 9; i++) {
      held.push(http.get({ host: '127.0.0.1', port: port(), path: '/apps/secure/live', headers: { cookie: again.cookie }, agent: false }, (res) => {
        statuses.push(res.statusCode!);
        res.resume();
      }));
    }
    await waitFor(async () => statuses.length === 9, 5000, 'all answers');
    expect(statuses.sort()).toEqual([...Array(8).fill(200), 429]);
    for (const h of held) h.destroy();
  });
});
