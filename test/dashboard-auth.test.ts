// Login URLs, sessions and CSRF tokens on a clock the test moves, and the two
// commands that hand out the secrets.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createDispatcher } from '../src/control/command-table.js';
import { dashboardCommands } from '../src/control/commands/dashboard.js';
import type { ServerInfo } from '../src/control/commands/services.js';
import { DashboardAuth, LOGIN_TTL_MS, SESSION_IDLE_MS, SESSION_MAX_MS } from '../src/dashboard/auth.js';
import { MetricsToken } from '../src/metrics/metrics-token.js';
import { dispatchCaptured } from './support/dispatch.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pxda-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const LOCAL = { kind: 'local', name: 'local' } as const;

function clock() {
  let now = 1_000_000;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

describe('DashboardAuth', () => {
  it('a login URL opens one session, once, within 10 minutes', () => {
    const c = clock();
    const auth = new DashboardAuth(c.now);
    const secret = auth.issueLogin(LOCAL);
    const opened = auth.redeem(secret)!;
    expect(opened.session.caller).toEqual(LOCAL);
    expect(auth.session(opened.cookie)).toBe(opened.session);
    expect(auth.redeem(secret)).toBeNull();

    const late = auth.issueLogin(LOCAL);
    c.advance(LOGIN_TTL_MS);
    expect(auth.redeem(late)).toBeNull();
    expect(auth.redeem('made-up-secret-of-a-plausible-length-000000')).toBeNull();
  });

  it('a session ends after an idle hour, after 12 hours in any case, and at logout', () => {
    const c = clock();
    const auth = new DashboardAuth(c.now);
    const idle = auth.redeem(auth.issueLogin(LOCAL))!;
    c.advance(SESSION_IDLE_MS - 1000);
    expect(auth.session(idle.cookie)).not.toBeNull();
    // live() checks without counting as activity: the idle clock still runs.
    c.advance(SESSION_IDLE_MS - 1000);
    expect(auth.live(idle.cookie)).not.toBeNull();
    c.advance(2000);
    expect(auth.live(idle.cookie)).toBeNull();
    expect(auth.session(idle.cookie)).toBeNull();

    const busy = auth.redeem(auth.issueLogin(LOCAL))!;
    for (let t = 0; t < SESSION_MAX_MS; t += SESSION_IDLE_MS / 2) {
      expect(auth.session(busy.cookie)).not.toBeNull();
      c.advance(SESSION_IDLE_MS / 2);
    }
    c.advance(1);
    expect(auth.session(busy.cookie)).toBeNull();

    const ended: string[] = [];
    auth.onEnd((k) => ended.push(k));
    const out = auth.redeem(auth.issueLogin(LOCAL))!;
    auth.end(out.cookie);
    expect(auth.session(out.cookie)).toBeNull();
    expect(ended).toEqual([auth.sessionKey(out.cookie)]);
  });

  it('CSRF tokens differ per session and must match exactly', () => {
    const auth = new DashboardAuth();
    const a = auth.redeem(auth.issueLogin(LOCAL))!.session;
    const b = auth.redeem(auth.issueLogin(LOCAL))!.session;
    expect(a.csrf).not.toBe(b.csrf);
    expect(DashboardAuth.csrfMatches(a, a.csrf)).toBe(true);
    expect(DashboardAuth.csrfMatches(a, b.csrf)).toBe(false);
    expect(DashboardAuth.csrfMatches(a, undefined)).toBe(false);
    expect(DashboardAuth.csrfMatches(a, a.csrf.slice(0, -1))).toBe(false);
  });
});

describe('dashboard:login and metrics:token', () => {
  const info = (dashboardPort: number | null, host = '0.0.0.0'): ServerInfo => ({
    pid: 1, host, httpPort: 8000, httpsPort: null, gitHttpPort: 8001, sshPort: 2222, dnodePort: null, dashboardPort, couchdbGatewayPort: null,
    baseDomain: 'localhost', sshFingerprint: null, isolation: 'none', dataDir: dir,
    network: { mode: 'shared', reason: 'test', table: null, cgroup: null, publicPorts: [], dns: [], refused: [] },
  });
  const admin = { kind: 'key', name: 'ops', admin: true, apps: [] } as const;
  const scoped = { kind: 'key', name: 'dev', admin: false, apps: ['hello'] } as const;

  it('print a URL and a token for admins only, and say what to do when the dashboard is off', async () => {
    const auth = new DashboardAuth();
    let current = info(8002);
    const tokenFile = path.join(dir, 'metrics-token');
    const dispatch = createDispatcher(dashboardCommands({ auth, metricsToken: new MetricsToken(tokenFile), info: () => current }));

    const login = await dispatchCaptured(dispatch, ['dashboard:login'], admin);
    expect(login.code).toBe(0);
    const url = login.stdout.trim();
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:8002\/login\/[A-Za-z0-9_-]{43}$/);
    expect(auth.redeem(url.split('/login/')[1]!)!.session.caller).toEqual({ kind: 'key', name: 'ops' });

    for (const argv of [['dashboard:login'], ['metrics:token']]) {
      const refused = await dispatchCaptured(dispatch, argv, scoped);
      expect([refused.code, refused.stderr]).toEqual([1, `error: '${argv[0]}' needs an admin key: this key may only use its own apps\n`]);
    }

    const token = await dispatchCaptured(dispatch, ['metrics:token'], admin);
    expect(token.stdout).toMatch(/^pxm_[A-Za-z0-9_-]{32}\n$/);
    const secret = token.stdout.trim();
    expect(fs.readFileSync(tokenFile, 'utf8')).not.toContain(secret);
    expect((fs.statSync(tokenFile).mode & 0o777).toString(8)).toBe('600');
    const m = new MetricsToken(tokenFile);
    expect(m.allows(`Bearer ${secret}`)).toBe(true);
    expect(m.allows(`Bearer ${secret}x`)).toBe(false);
    expect(m.allows(secret)).toBe(false);
    expect(m.allows(undefined)).toBe(false);
    const again = await dispatchCaptured(dispatch, ['metrics:token'], admin);
    expect([again.code, again.stderr]).toEqual([1, "error: a metrics token exists and only its hash is kept: run 'platformx metrics:token --rotate' for a new one (the old one stops working)\n"]);
    const rotated = (await dispatchCaptured(dispatch, ['metrics:token', '--rotate'], admin)).stdout.trim();
    expect(m.allows(`Bearer ${rotated}`)).toBe(true);
    expect(m.allows(`Bearer ${secret}`)).toBe(false);

    current = info(null);
    const off = await dispatchCaptured(dispatch, ['dashboard:login'], admin);
    expect([off.code, off.stderr]).toEqual([1, "error: the dashboard is off: start the server with --dashboard-port PORT (8002 by default, not 'off')\n"]);
    current = info(9000, '::1');
    expect((await dispatchCaptured(dispatch, ['dashboard:login'], admin)).stdout).toMatch(/^http:\/\/\[::1\]:9000\/login\//);
  });
});
