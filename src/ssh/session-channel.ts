// A session channel: its exec runs through runExecCommand; shells, subsystems and
// terminals are refused with a reason; X11, agent and env (but GIT_PROTOCOL) are declined.
import type { AcceptConnection, RejectConnection, ServerChannel, Session } from 'ssh2';
import type { Caller } from '../control/types.js';
import { checkedGitProtocol } from '../git/git-protocol.js';
import { execChannel, refuse, type ExecChannel } from './channel-end.js';
import type { ConnectionState } from './connection-state.js';
import { runExecCommand, type ExecCommandDeps } from './exec-command.js';

const HOW = 'this server runs git push/fetch and platformx commands only (try: ssh -p PORT git@HOST help)';

/** What the client asked for on this session before its exec. */
interface SessionRequests {
  /** `ssh -t`: acknowledged, never made; the exec or shell that follows is refused. */
  pty: boolean;
  /** GIT_PROTOCOL sent as env and checked, passed on to git. */
  gitProtocol?: string;
}

export function openSession(accept: AcceptConnection<Session>, reject: RejectConnection, conn: ConnectionState, deps: ExecCommandDeps): void {
  const who = conn.channelCaller();
  if (!who) return reject();
  const sessionAbort = new AbortController();
  const release = conn.openChannel(() => sessionAbort.abort());
  const session = accept();
  session.on('close', release);

  const requests: SessionRequests = { pty: false };
  // No terminal is ever made. The request is acknowledged only because OpenSSH treats a
  // refused `ssh -t` as fatal and would hide our reason; whatever follows is refused.
  session.on('pty', (acc) => {
    requests.pty = true;
    acc?.();
  });
  // Declined requests grant nothing. X11, agent and env are declined without ending the
  // session: they are common in users' ssh configs, and git sends GIT_PROTOCOL as env.
  session.on('x11', (_a, rej) => rej?.());
  session.on('auth-agent', (_a, rej) => rej?.());
  session.on('env', (acc, rej, { key, val }) => {
    // The one variable taken: git's protocol version, so fetches can use protocol v2.
    if (key === 'GIT_PROTOCOL' && checkedGitProtocol(val)) {
      requests.gitProtocol = val;
      acc?.();
    } else {
      rej?.();
    }
  });
  session.on('window-change', (_a, rej) => rej?.());

  const run = (channel: ServerChannel | undefined, work: (exec: ExecChannel) => Promise<unknown>) =>
    runOnChannel(channel, work, sessionAbort.signal, who, conn, deps.log);

  session.on('shell', (acc) => {
    void run(acc(), (exec) => refuse(exec, `no shell here: ${HOW}`, requests.pty));
  });
  // No 'sftp' listener: sftp arrives here as a plain channel, so we can say why it is refused.
  session.on('subsystem', (acc, _rej, sub) => {
    void run(acc(), (exec) => refuse(exec, `subsystem '${sub.name}' is not offered (no sftp or file access): ${HOW}`, requests.pty));
  });
  session.on('exec', (acc, _rej, { command }) => {
    void run(acc(), async (exec) => {
      if (requests.pty) return refuse(exec, 'terminals (ssh -t) are not offered: run the command without -t', true);
      return runExecCommand(deps, command, who, exec, requests.gitProtocol);
    });
  });
}

/** Runs `work` as the session's one command, counted as work for the idle timeout; a throw ends it with status 2. */
async function runOnChannel(
  channel: ServerChannel | undefined,
  work: (exec: ExecChannel) => Promise<unknown>,
  signal: AbortSignal,
  who: Caller,
  conn: ConnectionState,
  log: (line: string) => void,
): Promise<void> {
  // undefined: a second shell/exec/subsystem on a session that already runs one (ssh2 ignores it).
  if (!channel) return;
  const exec = execChannel(channel, signal);
  conn.workStarted();
  try {
    await work(exec);
  } catch (err) {
    log(`internal error for key ${who.name}: ${(err as Error).message}`);
    exec.stderr('platformx: internal error, see the server log\n');
    await exec.finish(2);
  } finally {
    conn.workEnded();
  }
}
