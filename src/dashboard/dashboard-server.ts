import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Caller, Dispatch } from '../control/types.js';
import type { MetricsToken } from '../metrics/metrics-token.js';
import { checkAppName } from '../state/names.js';
import type { AppView } from './app-view.js';
import { ASSETS } from './assets.js';
import { DashboardAuth, SESSION_MAX_MS, type Session } from './auth.js';
import type { SafeHtml } from './html.js';
import type { LiveLog } from './live-log.js';
import { appPage, appsPage, deployEnd, deployLine, deployStart, loginPage, messagePage } from './pages.js';

export const SESSION_COOKIE = 'platformx_session';
const MAX_FORM_BYTES = 8 * 1024;

export interface DashboardOptions {
  host: string;
  port: number;
  auth: DashboardAuth;
  view: AppView;
  live: LiveLog;
  metrics: { text(): Promise<string>; readonly contentType: string };
  metricsToken: MetricsToken;
  /** The command dispatcher: the rollback button runs the same `rollback` as the CLI. */
  dispatch: Dispatch;
  /** False once the key a session logged in with is gone or no longer admin. */
  stillAdmin(caller: Session['caller']): boolean;
  /** The app a hostname serves, if any: a session cookie must never be sent to an app. */
  appOfHost(host: string): string | null;
}

export interface RunningDashboard {
  port: number;
  close(): Promise<void>;
}

// Every answer: no framing, no sniffing, no referrer to other sites (a login URL holds a
// secret; 'no-referrer' would also make the browser send "Origin: null" on our own forms),
// nothing cached, and scripts, styles and form targets from this origin only.
const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cache-control': 'no-store',
};

class HttpError extends Error {
  constructor(readonly status: number, readonly title: string, message: string) {
    super(message);
  }
}

function cookieOf(req: http.IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** The host:port of an Origin header (http, or https behind a TLS front), or null ("null", junk). */
function originHost(origin: string): string | null {
  try {
    return new URL(origin).host;
  } catch {
    return null;
  }
}

function readForm(req: http.IncomingMessage): Promise<URLSearchParams> {
  return new Promise((resolve, reject) => {
    if (!/^application\/x-www-form-urlencoded\b/i.test(req.headers['content-type'] ?? '')) {
      reject(new HttpError(415, 'Unsupported form', 'forms are sent as application/x-www-form-urlencoded'));
      return;
    }
    let body = '';
    req.setEncoding('utf8');
    const onData = (c: string) => {
      body += c;
      if (body.length > MAX_FORM_BYTES) {
        // The answer goes out with Connection: close; the rest of the body is never read.
        req.off('data', onData);
        req.pause();
        reject(new HttpError(413, 'Form too large', 'the form is larger than 8 kB'));
      }
    };
    req.on('data', onData);
    req.on('end', () => resolve(new URLSearchParams(body)));
    req.on('error', reject);
  });
}

function send(res: http.ServerResponse, status: number, page: SafeHtml | string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', ...headers });
  res.end(typeof page === 'string' ? page : page.text);
}

function redirect(res: http.ServerResponse, location: string, headers: Record<string, string> = {}): void {
  res.writeHead(303, { location, 'content-type': 'text/plain; charset=utf-8', ...headers });
  res.end(`See ${location}\n`);
}

/**
 * The dashboard: server-rendered pages behind a login session, the live log
 * over SSE, the rollback button, and /metrics for Prometheus (bearer token).
 * It sits on top, like the CLI: it reads Maestro, metrics and logs, and changes
 * things only through the command dispatcher.
 */
export async function startDashboard(o: DashboardOptions): Promise<RunningDashboard> {
  o.auth.onEnd((key) => o.live.endSession(key));

  const sessionOf = (req: http.IncomingMessage): { session: Session; cookie: string } | null => {
    const cookie = cookieOf(req, SESSION_COOKIE);
    const session = o.auth.session(cookie);
    if (!session || !cookie) return null;
    if (!o.stillAdmin(session.caller)) {
      o.auth.end(cookie);
      return null;
    }
    return { session, cookie };
  };

  // A page that posts here must come from a page of ours: the token it carries, and the browser's own word on its origin.
  const checkPost = (req: http.IncomingMessage, session: Session, form: URLSearchParams) => {
    const site = req.headers['sec-fetch-site'];
    if ((req.headers.origin !== undefined && originHost(req.headers.origin) !== req.headers.host) || (site !== undefined && site !== 'same-origin' && site !== 'none')) {
      throw new HttpError(403, 'Refused', 'this form was sent from another site');
    }
    if (!DashboardAuth.csrfMatches(session, form.get('csrf') ?? undefined)) {
      throw new HttpError(403, 'Refused', 'the form is out of date (its CSRF token does not match): reload the page and try again');
    }
  };

  const rollback = async (res: http.ServerResponse, app: string, form: URLSearchParams, session: Session) => {
    const version = form.get('version') ?? '';
    if (!/^[1-9]\d{0,8}$/.test(version)) throw new HttpError(400, 'Bad request', 'the form names no release');
    const caller: Caller = { kind: session.caller.kind, name: session.caller.name, admin: true, apps: [] };
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.write(deployStart(app, `Rolling back ${app} to v${version}`, session));
    const gone = new AbortController();
    res.once('close', () => gone.abort());
    const code = await o.dispatch(['rollback', app, `v${version}`], caller, {
      stdout: (t) => void res.write(deployLine(t, false)),
      stderr: (t) => void res.write(deployLine(t, true)),
      signal: gone.signal,
    });
    res.end(deployEnd(app, code === 0, session));
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
    const url = new URL(req.url ?? '/', 'http://dashboard');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    const asset = ASSETS[path];
    if (asset && method === 'GET') {
      res.writeHead(200, { 'content-type': asset.type, 'cache-control': 'max-age=300' });
      res.end(asset.body);
      return;
    }
    if (path === '/metrics' && method === 'GET') {
      if (!o.metricsToken.allows(req.headers.authorization)) {
        res.writeHead(401, { 'www-authenticate': 'Bearer realm="platformx"', 'content-type': 'text/plain; charset=utf-8' });
        res.end("a bearer token is needed: make one with 'platformx metrics:token' and send 'Authorization: Bearer TOKEN'\n");
        return;
      }
      const text = await o.metrics.text();
      res.writeHead(200, { 'content-type': o.metrics.contentType });
      res.end(text);
      return;
    }
    const hostApp = o.appOfHost((req.headers.host ?? '').replace(/:\d+$/, '').toLowerCase());
    if (hostApp) {
      throw new HttpError(421, 'Wrong hostname', `this hostname also serves the app '${hostApp}', which would receive the dashboard's session cookie: open the dashboard by IP address or another name`);
    }
    const login = /^\/login\/([A-Za-z0-9_-]{20,100})$/.exec(path);
    if (login && method === 'GET') {
      const opened = o.auth.redeem(login[1]!);
      if (!opened) return send(res, 403, loginPage('This login URL was already used or has expired: run platformx dashboard:login for a new one.'));
      return redirect(res, '/apps', {
        'set-cookie': `${SESSION_COOKIE}=${opened.cookie}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${SESSION_MAX_MS / 1000}`,
      });
    }
    if (path === '/login' && method === 'GET') {
      if (sessionOf(req)) return redirect(res, '/apps');
      return send(res, 200, loginPage(null));
    }
    const found = sessionOf(req);
    if (!found) {
      if (method === 'GET') return redirect(res, '/login');
      throw new HttpError(403, 'Sign in first', 'there is no session (or it expired): run platformx dashboard:login');
    }
    const { session, cookie } = found;
    if (method === 'POST') {
      const form = await readForm(req);
      checkPost(req, session, form);
      if (path === '/logout') {
        o.auth.end(cookie);
        return redirect(res, '/login', { 'set-cookie': `${SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0` });
      }
      const m = /^\/apps\/([^/]+)\/rollback$/.exec(path);
      if (m) return rollback(res, knownApp(m[1]!), form, session);
      throw new HttpError(404, 'Not found', 'there is nothing to post here');
    }
    if (method !== 'GET') throw new HttpError(405, 'Method not allowed', 'pages are read with GET and changed by their forms');
    if (path === '/' || path === '/apps') return path === '/' ? redirect(res, '/apps') : send(res, 200, appsPage(o.view.list(), session));
    const page = /^\/apps\/([^/]+)(\/live)?$/.exec(path);
    if (page) {
      const app = knownApp(page[1]!);
      if (page[2]) return o.live.open(app, res, o.auth.sessionKey(cookie), () => o.auth.live(cookie) !== null);
      const detail = await o.view.detail(app);
      if (detail) return send(res, 200, appPage(detail, session));
    }
    throw new HttpError(404, 'Not found', 'there is no such page');
  };

  const knownApp = (segment: string): string => {
    let name: string;
    try {
      name = decodeURIComponent(segment);
      checkAppName(name);
    } catch {
      throw new HttpError(404, 'Not found', 'there is no such app');
    }
    if (!o.view.has(name)) throw new HttpError(404, 'Not found', `there is no app '${name}'`);
    return name;
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: Error) => {
      const e = err instanceof HttpError ? err : new HttpError(500, 'Something went wrong', `the dashboard failed: ${err.message}`);
      if (res.headersSent) {
        res.end();
        return;
      }
      const session = o.auth.live(cookieOf(req, SESSION_COOKIE));
      send(res, e.status, messagePage(e.title, e.message, session), e.status === 413 ? { connection: 'close' } : {});
    });
  });
  const sockets = new Set<Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => {
      o.live.closeAll();
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    }),
  };
}
