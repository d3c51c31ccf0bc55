import http from 'node:http';
import type { ChildProcess } from 'node:child_process';
import { Git } from 'node-git-server';
import type { AppRegistry } from '../maestro/app-registry.js';
import type { DeployPriority } from '../apprunner/deploy-priority.js';
import type { DataPaths } from '../state/paths.js';
import type { PushSessions } from './push-sessions.js';

const REPO_PATH = /^\/([a-z][a-z0-9-]{0,62})(?:\.git)?\/(info\/refs|git-upload-pack|git-receive-pack|HEAD)$/;

export interface GitHttpOptions {
  host: string;
  port: number;
  apps: AppRegistry;
  paths: DataPaths;
  sessions: PushSessions;
  priority: DeployPriority;
}

function deny(res: http.ServerResponse, status: number, message: string, challenge = false): void {
  res.statusCode = status;
  res.setHeader('content-type', 'text/plain');
  if (challenge) res.setHeader('www-authenticate', 'Basic realm="platformx: use an app deploy token as the password"');
  res.end(message + '\n');
}

/** The token in an HTTP Basic header (the user name does not matter), or null. */
function basicPassword(header: string | undefined): string | null {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(header ?? '');
  if (!m) return null;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon >= 0 ? decoded.slice(colon + 1) : null;
}

/**
 * Git over smart HTTP, with node-git-server doing the protocol. Every request is
 * checked here first — node-git-server itself only checks GET info/refs — so the
 * receive-pack and upload-pack POSTs need the app's token too, and a repo that
 * apps:create did not make is never created.
 */
export async function startGitHttpServer(o: GitHttpOptions): Promise<{ port: number; server: http.Server }> {
  const callers = new WeakMap<http.IncomingMessage, { app: string; by: string }>();
  const git = new Git((dir?: string) => o.paths.repo((dir ?? '').replace(/\.git$/, '')), { autoCreate: false });
  const onPush = (push: { req: http.IncomingMessage; accept(): void; once(ev: 'service', cb: (ps: ChildProcess) => void): void }) => {
    const caller = callers.get(push.req);
    if (!caller) return;
    push.once('service', (ps) => {
      if (ps.pid === undefined) return;
      // Unpacking, the connectivity check and the hooks all run under receive-pack.
      o.priority.background(ps.pid);
      o.sessions.register(ps.pid, { app: caller.app, by: caller.by, protocol: 'http' });
      const pid = ps.pid;
      ps.once('exit', () => o.sessions.end(pid));
    });
    push.accept();
  };
  git.on('push', onPush as never);
  git.on('tag', onPush as never);
  git.on('fetch', (fetch) => fetch.accept());

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://git');
    const m = REPO_PATH.exec(url.pathname);
    if (!m) return deny(res, 404, 'not found: use http://HOST:PORT/APP.git');
    const appName = m[1]!;
    const app = o.apps.list().find((a) => a.name === appName);
    if (!app) return deny(res, 404, `repository '${appName}.git' not found: create the app first (platformx apps:create ${appName})`);
    const secret = basicPassword(req.headers.authorization);
    if (!secret) return deny(res, 401, 'authentication required: use an app deploy token as the password', true);
    const token = o.apps.authenticate(appName, secret);
    if (!token) return deny(res, 401, `access denied: this token is not valid for '${appName}'`, true);
    callers.set(req, { app: appName, by: token.id });
    git.handle(req, res);
  });
  server.on('clientError', (_err, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve());
  });
  return { port: (server.address() as { port: number }).port, server };
}
