// Runs git-receive-pack / git-upload-pack for one app's bare repository over an
// SSH channel. The argv is fixed here (service + absolute repo path), never a
// shell string, and a push is registered by pid so the hooks are attributed to
// the key that authenticated.
import os from 'node:os';
import type { DeployPriority } from '../apprunner/deploy-priority.js';
import { spawnGitService } from '../git/git-service-process.js';
import type { PushSessions } from '../git/push-sessions.js';
import { SERVICE_TIMEOUT_MS } from '../git/smart-http.js';
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
export async function runGitService(o: GitServiceRun): Promise<number> {
  const { exec } = o;
  const { channel } = exec;
  // As long as over HTTP: a push stopped this way ends like one whose pusher hung up.
  const child = spawnGitService(o.service, [o.repo], { gitProtocol: o.gitProtocol, timeout: SERVICE_TIMEOUT_MS[o.service] });
  const push = child.pid !== undefined && o.service === 'git-receive-pack' ? child.pid : undefined;
  if (push !== undefined) {
    o.pushSessions.register(push, { app: o.app, by: o.by, protocol: 'ssh' });
    o.priority.background(push);
  }
  channel.pipe(child.stdin);
  // pipe, not 'data' events: a pack can be large, and the SSH window is the backpressure.
  child.stdout.pipe(channel, { end: false });
  child.stderr.pipe(channel.stderr, { end: false });
  // Like sshd: a client that goes away closes git's pipes, and git ends on its own
  // (a push abandoned mid-way is cleaned up through PushSessions.end).
  const onAbort = () => {
    // A push whose pusher is gone is rejected before git moves the branch (PushDeploys).
    if (push !== undefined) o.pushSessions.clientGone(push);
    child.stdin.destroy();
    child.stdout.destroy();
    child.stderr.destroy();
  };
  exec.signal.addEventListener('abort', onAbort, { once: true });
  const outcome = await child;
  exec.signal.removeEventListener('abort', onAbort);
  if (push !== undefined) o.pushSessions.end(push);
  let code: number;
  if (outcome.exitCode !== undefined) code = outcome.exitCode;
  else if (outcome.signal !== undefined) code = 128 + (os.constants.signals[outcome.signal] ?? 15);
  else {
    exec.stderr(`platformx: cannot start ${o.service}: ${outcome.originalMessage ?? outcome.shortMessage}\n`);
    code = 1;
  }
  await exec.finish(code);
  return code;
}
