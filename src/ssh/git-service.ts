// Runs git-receive-pack / git-upload-pack for one app's bare repository over an
// SSH channel. The argv is fixed here (service + absolute repo path), never a
// shell string, and a push is registered by pid so the hooks are attributed to
// the key that authenticated.
import { spawn } from 'node:child_process';
import type { DeployPriority } from '../apprunner/deploy-priority.js';
import os from 'node:os';
import type { PushSessions } from '../git/push-sessions.js';
import type { ExecChannel } from './channel-end.js';
import type { GitService } from './exec-request.js';

export interface GitServiceRun {
  service: GitService;
  app: string;
  /** Absolute path of the app's bare repository. */
  repo: string;
  /** Key name, recorded on the release. */
  by: string;
  exec: ExecChannel;
  pushSessions: PushSessions;
  priority: DeployPriority;
  /** GIT_PROTOCOL the client sent (checked by the caller), passed to git as sshd would with AcceptEnv. */
  gitProtocol?: string;
}

/** Resolves with the exit code sent to the client. */
export function runGitService(o: GitServiceRun): Promise<number> {
  const { exec } = o;
  const { channel } = exec;
  return new Promise((resolve) => {
    const child = spawn(o.service, [o.repo], { stdio: ['pipe', 'pipe', 'pipe'], env: o.gitProtocol ? { ...process.env, GIT_PROTOCOL: o.gitProtocol } : process.env });
    let ended = false;
    const end = (code: number) => {
      if (ended) return;
      ended = true;
      exec.signal.removeEventListener('abort', onAbort);
      if (child.pid !== undefined && o.service === 'git-receive-pack') o.pushSessions.end(child.pid);
      void exec.finish(code).then(() => resolve(code));
    };
    if (child.pid !== undefined && o.service === 'git-receive-pack') {
      o.pushSessions.register(child.pid, { app: o.app, by: o.by, protocol: 'ssh' });
      o.priority.background(child.pid);
    }
    child.once('error', (err) => {
      exec.stderr(`platformx: cannot start ${o.service}: ${err.message}\n`);
      end(1);
    });
    child.stdin.on('error', () => {});
    child.stdout.on('error', () => {});
    child.stderr.on('error', () => {});
    channel.pipe(child.stdin);
    // pipe, not 'data' events: a pack can be large, and the SSH window is the backpressure.
    child.stdout.pipe(channel, { end: false });
    child.stderr.pipe(channel.stderr, { end: false });
    // Like sshd: a client that goes away closes git's pipes, and git ends on its own
    // (a push abandoned mid-way is cleaned up through PushSessions.end).
    const onAbort = () => {
      // A push whose pusher is gone is rejected before git moves the branch (PushDeploys).
      if (child.pid !== undefined && o.service === 'git-receive-pack') o.pushSessions.clientGone(child.pid);
      child.stdin.destroy();
      child.stdout.destroy();
      child.stderr.destroy();
    };
    exec.signal.addEventListener('abort', onAbort, { once: true });
    child.once('close', (code, sig) => end(code ?? 128 + (sig ? (os.constants.signals[sig] ?? 15) : 1)));
  });
}
