import type { ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { AppRegistry } from '../maestro/app-registry.js';
import type { DeployPriority } from '../apprunner/deploy-priority.js';
import type { DataPaths } from '../state/paths.js';
import { checkedGitProtocol } from './git-protocol.js';
import type { PushSessions } from './push-sessions.js';
import { advertiseRefs, GIT_HTTP_SERVICES, refuse, serveRpc, type ServiceRun } from './smart-http.js';

const REPO_PATH = /^\/([a-z][a-z0-9-]{0,62})(?:\.git)?\/(info\/refs|git-upload-pack|git-receive-pack)$/;
const CHALLENGE = { 'www-authenticate': 'Basic realm="platformx: use an app deploy token as the password"' };

export interface GitHttpOptions {
  host: string;
  port: number;
  apps: AppRegistry;
  paths: DataPaths;
  sessions: PushSessions;
  priority: DeployPriority;
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
 * Git over smart HTTP (smart-http.ts speaks the protocol). Every request needs
 * the app's token, and only repos apps:create made are served. The client's
 * Git-Protocol header reaches git once checked, so fetches can speak v2.
 */
export async function startGitHttpServer(o: GitHttpOptions): Promise<{ port: number; server: http.Server }> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://git');
    const m = REPO_PATH.exec(url.pathname);
    if (!m) return refuse(res, 404, 'not found: use http://HOST:PORT/APP.git');
    const appName = m[1]!;
    const app = o.apps.list().find((a) => a.name === appName);
    if (!app) return refuse(res, 404, `repository '${appName}.git' not found: create the app first (platformx apps:create ${appName})`);
    const secret = basicPassword(req.headers.authorization);
    if (!secret) return refuse(res, 401, 'authentication required: use an app deploy token as the password', CHALLENGE);
    const token = o.apps.authenticate(appName, secret);
    if (!token) return refuse(res, 401, `access denied: this token is not valid for '${appName}'`, CHALLENGE);

    const asked = m[2] === 'info/refs' ? url.searchParams.get('service') : m[2]!;
    const service = GIT_HTTP_SERVICES.find((s) => s === asked);
    if (!service) return refuse(res, 403, 'only smart HTTP is served: use git 1.6.6 or newer (service=git-upload-pack or git-receive-pack)');
    const run: ServiceRun = { service, repo: o.paths.repo(appName), gitProtocol: checkedGitProtocol(header(req, 'git-protocol')) };
    if (m[2] === 'info/refs') {
      if (req.method !== 'GET') return refuse(res, 405, 'info/refs takes GET', { allow: 'GET' });
      return advertiseRefs(res, run);
    }
    if (req.method !== 'POST') return refuse(res, 405, `${service} takes POST`, { allow: 'POST' });
    if (service === 'git-receive-pack') {
      run.onSpawn = (ps) => registerPush(o, ps, { app: appName, by: token.id });
      run.onClientGone = (ps) => ps.pid !== undefined && o.sessions.clientGone(ps.pid);
    }
    serveRpc(req, res, run);
  });
  server.on('clientError', (_err, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve());
  });
  return { port: (server.address() as { port: number }).port, server };
}

function header(req: http.IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? undefined : v;
}

/** Unpacking, the connectivity check and the hooks all run under receive-pack: its pid names the push. */
function registerPush(o: GitHttpOptions, ps: ChildProcess, caller: { app: string; by: string }): void {
  const pid = ps.pid;
  if (pid === undefined) return;
  o.priority.background(pid);
  o.sessions.register(pid, { ...caller, protocol: 'http' });
  // A push that ends before its post-receive is abandoned (PushDeploys listens).
  ps.once('exit', () => o.sessions.end(pid));
}
