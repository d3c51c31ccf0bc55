// What an accepted exec runs: git push/fetch for a repository the key may use, a
// platformx command through the shared dispatcher, an rsync upload when the
// legacy handler is present; anything else is refused with its reason.
import fs from 'node:fs';
import path from 'node:path';
import type { DeployPriority } from '../apprunner/deploy-priority.js';
import { canReach, type Caller, type Dispatch } from '../control/types.js';
import type { PushSessions } from '../git/push-sessions.js';
import type { StateStore } from '../state/store.js';
import { refuse, type ExecChannel } from './channel-end.js';
import { runDispatchedCommand } from './command-runner.js';
import { parseExecRequest } from './exec-request.js';
import { runGitService } from './git-service.js';
import { runRsyncExec } from './rsync-exec.js';
import type { SshExecHandler } from './types.js';

export interface ExecCommandDeps {
  store: StateStore;
  dispatch: Dispatch;
  pushSessions: PushSessions;
  priority: DeployPriority;
  /** Absolute path of an app's bare repository. */
  repoPath: (app: string) => string;
  /** `rsync --server …` execs; refused when absent. */
  onRsync?: SshExecHandler;
  log: (line: string) => void;
}

/** Same words whether the app is missing or outside the key's scope, so scope does not leak which apps exist. */
const notFound = (app: string) =>
  `app '${app}' does not exist (or this key may not use it): check the name, or ask an admin to run platformx keys:grant`;

/** The bare repo a caller may use for `app`, or null (missing and out of scope look alike). */
function reachableRepo(deps: ExecCommandDeps, caller: Caller, app: string): string | null {
  if (!canReach(caller, app) || !deps.store.get().apps[app]) return null;
  const repo = path.resolve(deps.repoPath(app));
  return fs.existsSync(path.join(repo, 'HEAD')) ? repo : null;
}

/** Runs `command` for `who` on the exec channel and ends it. `gitProtocol`: the GIT_PROTOCOL the session accepted. */
export async function runExecCommand(
  deps: ExecCommandDeps, command: string, who: Caller, exec: ExecChannel, gitProtocol: string | undefined,
): Promise<unknown> {
  const req = parseExecRequest(command);
  switch (req.kind) {
    case 'refused':
      return refuse(exec, req.reason);
    case 'git': {
      const repo = reachableRepo(deps, who, req.app);
      if (!repo) return refuse(exec, notFound(req.app));
      deps.log(`key ${who.name} ${req.service === 'git-receive-pack' ? 'pushes to' : 'fetches'} ${req.app}`);
      return runGitService({ service: req.service, app: req.app, repo, by: who.name, exec, pushSessions: deps.pushSessions, priority: deps.priority, gitProtocol });
    }
    case 'command':
      // Only the command name is logged: arguments may hold secrets (config:set).
      deps.log(`key ${who.name} runs ${req.argv[0]}`);
      return runDispatchedCommand(deps.dispatch, req.argv, who, exec);
    case 'rsync':
      if (!deps.onRsync) return refuse(exec, 'rsync uploads are not enabled on this server');
      return runRsyncExec(deps.onRsync, req.argv, who, exec);
  }
}
