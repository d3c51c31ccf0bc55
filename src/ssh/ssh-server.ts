// The SSH front door: public-key auth against the keys in the state store, then
// only git push/fetch for the key's apps, platformx commands through the shared
// dispatcher, and what the legacy hooks add. Shells, ptys, subsystems and
// forwarding are refused; connections, channels and idle time are bounded.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import ssh2 from 'ssh2';
import type { AuthContext, ClientInfo, Connection, ServerChannel, Session } from 'ssh2';
import { canReach, type Caller, type Dispatch } from '../control/types.js';
import { checkedGitProtocol } from '../git/git-protocol.js';
import type { PushSessions } from '../git/push-sessions.js';
import type { StateStore } from '../state/store.js';
import { execChannel, refuse, type ExecChannel } from './channel-end.js';
import { runDispatchedCommand } from './command-runner.js';
import { ConnectionCounter, DEFAULT_SSH_LIMITS, normalizeIp, type SshLimits } from './connection-limits.js';
import { parseExecRequest } from './exec-request.js';
import type { DeployPriority } from '../apprunner/deploy-priority.js';
import { runGitService } from './git-service.js';
import { loadOrCreateHostKey } from './host-key.js';
import { callerOf, checkPublicKey, recordKeyUse } from './key-auth.js';
import type { SshExecHandler, SshTcpForwardHandler } from './types.js';

const { Server } = ssh2;

export interface SshServerOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Private host key file; created (ed25519, mode 0600) on first start. */
  hostKeyPath: string;
  store: StateStore;
  dispatch: Dispatch;
  pushSessions: PushSessions;
  /** Pushes (receive-pack and its hooks) run below serving traffic. */
  priority: DeployPriority;
  /** Absolute path of an app's bare repository. */
  repoPath: (app: string) => string;
  /** `rsync --server …` execs (legacy uploads); refused when absent. */
  onRsync?: SshExecHandler;
  /** `ssh -L` forwards (legacy DNode tunnel); refused when absent. */
  onTcpForward?: SshTcpForwardHandler;
  limits?: Partial<SshLimits>;
  /** One line per notable event; never given secrets or command arguments. */
  log?: (line: string) => void;
}

export interface SshServerHandle {
  host: string;
  port: number;
  /** "SHA256:…" of the host key, as ssh prints it. */
  fingerprint: string;
  /** "ssh-ed25519 AAAA…", for a known_hosts line. */
  hostPublicKey: string;
  /** Stops accepting, drops open connections and resolves when the listener is closed. */
  close(): Promise<void>;
}

const HOW = 'this server runs git push/fetch and platformx commands only (try: ssh -p PORT git@HOST help)';

/** Same words whether the app is missing or outside the key's scope, so scope does not leak which apps exist. */
const notFound = (app: string) =>
  `app '${app}' does not exist (or this key may not use it): check the name, or ask an admin to run platformx keys:grant`;

interface PendingSocket {
  socket: net.Socket;
  authTimer: NodeJS.Timeout;
}

export async function startSshServer(o: SshServerOptions): Promise<SshServerHandle> {
  const limits: SshLimits = { ...DEFAULT_SSH_LIMITS, ...o.limits };
  const hostKey = loadOrCreateHostKey(o.hostKeyPath);
  const counter = new ConnectionCounter(limits);
  const sockets = new Set<net.Socket>();
  // ssh2 reports a connection with its peer address; this finds our socket state by it.
  const pending = new Map<string, PendingSocket>();
  const peerKey = (ip: string | undefined, port: number | undefined) => `${ip}|${port}`;
  const log = o.log ?? (() => {});

  /** The bare repo a caller may use for `app`, or null (missing and out of scope look alike). */
  const reachableRepo = (caller: Caller, app: string): string | null => {
    if (!canReach(caller, app) || !o.store.get().apps[app]) return null;
    const repo = path.resolve(o.repoPath(app));
    return fs.existsSync(path.join(repo, 'HEAD')) ? repo : null;
  };

  const ssh = new Server({ hostKeys: [hostKey.privateKey], ident: 'platformx' });

  ssh.on('connection', (client: Connection, info: ClientInfo) => {
    const state = pending.get(peerKey(info.ip, info.port));
    pending.delete(peerKey(info.ip, info.port));
    const socket = state?.socket;
    const ip = normalizeIp(info.ip);
    const connAbort = new AbortController();
    let caller: Caller | null = null;
    let failures = 0;
    let channels = 0;
    let running = 0;
    let idleTimer: NodeJS.Timeout | null = null;

    const drop = () => {
      client.end();
      // A client that ignores the disconnect still loses its socket.
      setTimeout(() => socket?.destroy(), 1000).unref();
    };
    const updateIdle = () => {
      if (idleTimer) clearTimeout(idleTimer);
      idleTimer = null;
      if (running === 0 && caller && !connAbort.signal.aborted) {
        idleTimer = setTimeout(() => {
          log(`closing idle connection of key ${caller?.name} from ${ip}`);
          drop();
        }, limits.idleTimeoutMs);
        idleTimer.unref();
      }
    };

    client.on('error', (err: Error & { level?: string }) => {
      if (err.level !== 'socket' && err.level !== 'client-timeout') log(`connection from ${ip}: ${err.message}`);
    });
    client.on('close', () => {
      connAbort.abort();
      if (idleTimer) clearTimeout(idleTimer);
      if (state) clearTimeout(state.authTimer);
    });

    // Failures are counted, as sshd's MaxAuthTries does; the auth timeout bounds everything else.
    const fail = (ctx: AuthContext) => {
      if (++failures >= limits.maxAuthAttempts) {
        ctx.reject([]);
        drop();
      } else {
        ctx.reject(['publickey']);
      }
    };
    client.on('authentication', (ctx) => {
      // Password, keyboard-interactive, hostbased and "none" are refused; only keys are offered.
      // ("none" is how every client starts, so it does not count as a failure.)
      if (ctx.method === 'none') return ctx.reject(['publickey']);
      if (ctx.method !== 'publickey') return fail(ctx);
      const check = checkPublicKey(o.store, ctx);
      if (check.result === 'probe') return ctx.accept(); // "this key would do: sign with it" — not yet authenticated
      if (check.result === 'rejected') return fail(ctx);
      caller = callerOf(check.key);
      ctx.accept();
      try {
        recordKeyUse(o.store, check.key.fingerprint);
      } catch (err) {
        log(`cannot record last use of key ${check.key.name}: ${(err as Error).message}`);
      }
    });

    client.on('ready', () => {
      if (state) clearTimeout(state.authTimer);
      log(`key ${caller?.name} connected from ${ip}`);
      updateIdle();
    });

    /** Counts a channel until the returned release() runs (once), which the connection's end also runs. */
    const openChannel = (onRelease?: () => void) => {
      channels++;
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        channels--;
        connAbort.signal.removeEventListener('abort', release);
        onRelease?.();
      };
      connAbort.signal.addEventListener('abort', release, { once: true });
      return release;
    };

    client.on('session', (accept, reject) => {
      if (!caller || channels >= limits.maxChannelsPerConnection) return reject();
      const who = caller;
      const sessionAbort = new AbortController();
      const release = openChannel(() => sessionAbort.abort());
      const session: Session = accept();
      session.on('close', release);

      let ptyRequested = false;
      let gitProtocol: string | undefined;
      // No terminal is ever made. The request is acknowledged only because OpenSSH treats a
      // refused `ssh -t` as fatal and would hide our reason; whatever follows is refused.
      session.on('pty', (acc) => {
        ptyRequested = true;
        acc?.();
      });
      // Declined requests grant nothing. X11, agent and env are declined without ending the
      // session: they are common in users' ssh configs, and git sends GIT_PROTOCOL as env.
      session.on('x11', (_a, rej) => rej?.());
      session.on('auth-agent', (_a, rej) => rej?.());
      session.on('env', (acc, rej, { key, val }) => {
        // The one variable taken: git's protocol version, so fetches can use protocol v2.
        if (key === 'GIT_PROTOCOL' && checkedGitProtocol(val)) {
          gitProtocol = val;
          acc?.();
        } else {
          rej?.();
        }
      });
      session.on('window-change', (_a, rej) => rej?.());

      const run = async (channel: ServerChannel | undefined, work: (exec: ExecChannel) => Promise<unknown>) => {
        // undefined: a second shell/exec/subsystem on a session that already runs one (ssh2 ignores it).
        if (!channel) return;
        const exec = execChannel(channel, sessionAbort.signal);
        running++;
        updateIdle();
        try {
          await work(exec);
        } catch (err) {
          log(`internal error for key ${who.name}: ${(err as Error).message}`);
          exec.stderr('platformx: internal error, see the server log\n');
          await exec.finish(2);
        } finally {
          running--;
          updateIdle();
        }
      };

      session.on('shell', (acc) => {
        void run(acc(), (exec) => refuse(exec, `no shell here: ${HOW}`, ptyRequested));
      });
      // No 'sftp' listener: sftp arrives here as a plain channel, so we can say why it is refused.
      session.on('subsystem', (acc, _rej, sub) => {
        void run(acc(), (exec) => refuse(exec, `subsystem '${sub.name}' is not offered (no sftp or file access): ${HOW}`, ptyRequested));
      });
      session.on('exec', (acc, _rej, { command }) => {
        void run(acc(), async (exec) => {
          if (ptyRequested) return refuse(exec, 'terminals (ssh -t) are not offered: run the command without -t', true);
          const req = parseExecRequest(command);
          switch (req.kind) {
            case 'refused':
              return refuse(exec, req.reason);
            case 'git': {
              const repo = reachableRepo(who, req.app);
              if (!repo) return refuse(exec, notFound(req.app));
              log(`key ${who.name} ${req.service === 'git-receive-pack' ? 'pushes to' : 'fetches'} ${req.app}`);
              return runGitService({ service: req.service, app: req.app, repo, by: who.name, exec, pushSessions: o.pushSessions, priority: o.priority, gitProtocol });
            }
            case 'command':
              // Only the command name is logged: arguments may hold secrets (config:set).
              log(`key ${who.name} runs ${req.argv[0]}`);
              return runDispatchedCommand(o.dispatch, req.argv, who, exec);
            case 'rsync': {
              if (!o.onRsync) return refuse(exec, 'rsync uploads are not enabled on this server');
              const stdin = new PassThrough();
              exec.channel.pipe(stdin);
              const code = await o.onRsync({
                argv: req.argv, caller: who, stdin, stdout: exec.channel, stderr: exec.channel.stderr, signal: exec.signal,
              });
              exec.channel.unpipe(stdin);
              return exec.finish(code);
            }
          }
        });
      });
    });

    client.on('tcpip', (accept, reject, info) => {
      if (!caller || !o.onTcpForward || channels >= limits.maxChannelsPerConnection) return reject();
      let decided = false;
      const release = openChannel();
      try {
        o.onTcpForward(
          { caller, destHost: info.destIP, destPort: info.destPort, srcHost: info.srcIP, srcPort: info.srcPort },
          () => {
            if (decided) throw new Error('tcp forward already decided');
            decided = true;
            const channel = accept();
            running++;
            updateIdle();
            channel.on('error', () => {});
            channel.once('close', () => {
              running--;
              release();
              updateIdle();
            });
            return channel;
          },
          () => {
            if (decided) return;
            decided = true;
            reject();
            release();
          },
        );
      } catch (err) {
        log(`tcp forward handler failed: ${(err as Error).message}`);
        if (!decided) {
          decided = true;
          reject();
          release();
        }
      }
    });
    // Global requests (ssh -R, streamlocal) have no listener: ssh2 answers them with a failure.
  });

  const listener = net.createServer((socket) => {
    const ip = normalizeIp(socket.remoteAddress);
    const slot = counter.admit(ip);
    if ('refused' in slot) {
      // Before the SSH version line a server may send text lines; OpenSSH shows them with -v.
      socket.on('error', () => {});
      socket.end(`platformx: ${slot.refused}\r\n`);
      setTimeout(() => socket.destroy(), 1000).unref();
      return;
    }
    sockets.add(socket);
    socket.on('error', () => {});
    const key = peerKey(socket.remoteAddress, socket.remotePort);
    const authTimer = setTimeout(() => socket.destroy(), limits.authTimeoutMs);
    authTimer.unref();
    pending.set(key, { socket, authTimer });
    socket.once('close', () => {
      clearTimeout(authTimer);
      pending.delete(key);
      sockets.delete(socket);
      slot.release();
    });
    ssh.injectSocket(socket);
  });

  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(o.port, o.host, () => {
      listener.off('error', reject);
      resolve();
    });
  });
  listener.on('error', (err) => log(`listener error: ${err.message}`));
  const port = (listener.address() as net.AddressInfo).port;

  return {
    host: o.host,
    port,
    fingerprint: hostKey.fingerprint,
    hostPublicKey: hostKey.publicKey,
    close: () =>
      new Promise<void>((resolve) => {
        listener.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}
