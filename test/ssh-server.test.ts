// The SSH server with the real OpenSSH client, real git and real ssh-keygen.
// The dispatcher is the project's real createDispatcher with the real keys:*
// commands and a few small app commands standing in for Maestro's.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import ssh2, { type PublicKeyAuthMethod } from 'ssh2';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createDispatcher, type CommandDef } from '../src/control/command-table.js';
import type { Caller, Dispatch } from '../src/control/types.js';
import { PushSessions, type PushSession } from '../src/git/push-sessions.js';
import { keyCommands } from '../src/ssh/key-commands.js';
import { UnconfinedApprunner } from '../src/apprunner/apprunner.js';
import { startSshServer, type SshServerHandle, type SshServerOptions } from '../src/ssh/ssh-server.js';
import { StateStore } from '../src/state/store.js';
import { DEFAULT_LIMITS, type AppRecord } from '../src/state/types.js';
import { dispatchCaptured } from './support/dispatch.js';
import { run as runCommand, type RunResult } from './support/platform.js';

/** Runs a command with the clean client environment below unless given another; 20 s at most. */
function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}) {
  return runCommand(cmd, args, { env: cleanEnv(), timeoutMs: 20_000, ...opts });
}

/** No agent, a fixed HOME: the client uses only the key we give it. */
function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: base, GIT_CONFIG_NOSYSTEM: '1', GIT_TERMINAL_PROMPT: '0', ...extra };
  delete env.SSH_AUTH_SOCK;
  return env;
}

let base = '';
let store: StateStore;
let server: SshServerHandle;
let serverOpts: SshServerOptions;
const pushSessions = new PushSessions();
const endedPushes: { pid: number; session: PushSession }[] = [];
let followEnded = 0;
let followStarted = 0;
const keyFile: Record<string, string> = {};

const LOCAL: Caller = { kind: 'local', name: 'local', admin: true, apps: [] };

function appRecord(name: string): AppRecord {
  return {
    name, domains: [], createdAt: new Date().toISOString(), tokens: [], current: null,
    config: {}, formation: {}, limits: DEFAULT_LIMITS, uid: null,
  };
}

const repoPath = (app: string) => path.join(base, 'apps', app, 'repo.git');

/** Small stand-ins for Maestro's app commands, with the real dispatcher's scoping. */
const appCommands: CommandDef[] = [
  {
    name: 'ps', usage: 'ps APP', summary: 'processes', access: 'app', minArgs: 1, maxArgs: 1,
    run: ({ args, io, caller }) => {
      if (!store.get().apps[args.positional[0]!]) throw new Error('unreachable in these tests');
      io.stdout(`ps ${args.positional[0]} for ${caller.kind}:${caller.name}\n`);
    },
  },
  {
    name: 'whoami', usage: 'whoami', summary: 'caller as JSON', access: 'any', maxArgs: 0,
    run: ({ io, caller }) => io.stdout(JSON.stringify(caller) + '\n'),
  },
  {
    name: 'echo', usage: 'echo ARGS…', summary: 'argv as JSON', access: 'any',
    run: ({ args, io }) => io.stdout(JSON.stringify(args.positional) + '\n'),
  },
  {
    name: 'fail', usage: 'fail', summary: 'exits 3', access: 'any',
    run: ({ io }) => {
      io.stderr('failing on purpose\n');
      return 3;
    },
  },
  {
    name: 'apps:create', usage: 'apps:create APP', summary: 'admin only', access: 'admin', minArgs: 1, maxArgs: 1,
    run: ({ io }) => io.stdout('created\n'),
  },
  {
    name: 'logs', usage: 'logs APP [-f]', summary: 'follows until the client goes', access: 'app', minArgs: 1, maxArgs: 1, flags: { f: 'bool' },
    run: async ({ args, io }) => {
      io.stdout(`log line of ${args.positional[0]}\n`);
      if (!args.flags.f) return 0;
      followStarted++;
      await new Promise<void>((resolve) => io.signal.addEventListener('abort', () => resolve(), { once: true }));
      followEnded++;
      return 0;
    },
  },
];

let dispatch: Dispatch;

function localCommand(argv: string[], stdin?: string): Promise<RunResult> {
  return dispatchCaptured(dispatch, argv, LOCAL, stdin);
}

function makeKey(name: string, type = 'ed25519', bits?: number): string {
  const file = path.join(base, 'keys', name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  execFileSync('ssh-keygen', ['-q', '-t', type, ...(bits ? ['-b', String(bits)] : []), '-N', '', '-C', `${name}@test`, '-f', file]);
  keyFile[name] = file;
  return file;
}

const sshOpts = (key: string) => [
  '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes',
  '-o', 'LogLevel=ERROR', '-o', 'ConnectTimeout=10', '-i', key,
];

function ssh(key: string, args: string[], opts: { input?: string; extra?: string[] } = {}): Promise<RunResult> {
  return run('ssh', [...sshOpts(key), ...(opts.extra ?? []), '-p', String(server.port), 'git@127.0.0.1', ...args], { input: opts.input });
}

function gitEnv(key: string): NodeJS.ProcessEnv {
  return cleanEnv({ GIT_SSH_COMMAND: `ssh ${sshOpts(key).join(' ')}` });
}

const git = (args: string[], cwd: string, key: string) => run('git', args, { cwd, env: gitEnv(key) });
const sshUrl = (repo: string) => `ssh://git@127.0.0.1:${server.port}/${repo}`;

/** A local repo with one commit whose file holds `content`. */
function workRepo(name: string, content: string): string {
  const dir = path.join(base, 'work', name);
  fs.mkdirSync(dir, { recursive: true });
  const g = (...a: string[]) => execFileSync('git', a, { cwd: dir, env: cleanEnv() });
  g('init', '-q', '--initial-branch=main');
  fs.writeFileSync(path.join(dir, 'index.js'), content);
  g('add', '.');
  g('-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '-m', content);
  return dir;
}

const refsOf = (app: string) => execFileSync('git', ['for-each-ref', '--format=%(refname)'], { cwd: repoPath(app), env: cleanEnv() }).toString().trim();

async function startServer(extra: Partial<SshServerOptions> = {}): Promise<SshServerHandle> {
  return startSshServer({ ...serverOpts, ...extra });
}

beforeAll(async () => {
  base = fs.mkdtempSync(path.join(os.tmpdir(), 'pxssh-'));
  store = new StateStore(path.join(base, 'state.json'));
  store.update((s) => {
    for (const app of ['alpha', 'beta']) s.apps[app] = appRecord(app);
  });
  for (const app of ['alpha', 'beta']) {
    fs.mkdirSync(path.dirname(repoPath(app)), { recursive: true });
    execFileSync('git', ['init', '-q', '--bare', '--initial-branch=main', repoPath(app)]);
  }
  // A trivial pre-receive hook: records its parent pid, which must be the receive-pack we registered.
  const hook = path.join(repoPath('alpha'), 'hooks', 'pre-receive');
  fs.writeFileSync(hook, `#!/bin/sh\necho "$PPID" > '${path.join(base, 'hook-ppid')}'\necho "hook ran for alpha"\n`, { mode: 0o755 });
  pushSessions.onEnd((pid, session) => endedPushes.push({ pid, session }));
  dispatch = createDispatcher([...keyCommands(store), ...appCommands]);
  serverOpts = {
    host: '127.0.0.1', port: 0, hostKeyPath: path.join(base, 'ssh_host_ed25519_key'), store, dispatch, pushSessions, repoPath,
    priority: new UnconfinedApprunner(),
  };
  server = await startServer();

  makeKey('alice');
  makeKey('root');
  makeKey('stranger');
  expect((await localCommand(['keys:add', 'alice', '--app', 'alpha'], fs.readFileSync(`${keyFile.alice}.pub`, 'utf8'))).code).toBe(0);
  expect((await localCommand(['keys:add', 'root', '--admin'], fs.readFileSync(`${keyFile.root}.pub`, 'utf8'))).code).toBe(0);
});

afterAll(async () => {
  await server?.close();
  if (base) fs.rmSync(base, { recursive: true, force: true });
});

describe('git over SSH', () => {
  test('a key scoped to alpha pushes and fetches alpha, attributed to the key', async () => {
    const work = workRepo('push-alpha', 'console.log(1)');
    const push = await git(['push', sshUrl('alpha.git'), 'main'], work, keyFile.alice!);
    expect(push.stderr).toContain('hook ran for alpha');
    expect(push.code).toBe(0);
    expect(refsOf('alpha')).toContain('refs/heads/main');

    // The hook's parent is the receive-pack the server registered for this key.
    const hookPpid = Number(fs.readFileSync(path.join(base, 'hook-ppid'), 'utf8'));
    const ended = endedPushes.find((e) => e.pid === hookPpid);
    expect(ended?.session).toEqual({ app: 'alpha', by: 'alice', protocol: 'ssh' });
    expect(pushSessions.get(hookPpid)).toBeUndefined();

    // Fetch in other forms git sends: '/alpha' and '/alpha.git/'.
    const clone = path.join(base, 'work', 'clone-alpha');
    const cl = await git(['clone', '-q', sshUrl('alpha'), clone], base, keyFile.alice!);
    expect(cl.code).toBe(0);
    expect(fs.readFileSync(path.join(clone, 'index.js'), 'utf8')).toBe('console.log(1)');
    const fetch = await git(['fetch', sshUrl('alpha.git/'), 'main'], clone, keyFile.alice!);
    expect(fetch.code).toBe(0);
    // git sends GIT_PROTOCOL as an env request; the server passes it on, so protocol v2 is spoken.
    const v2 = await run('git', ['-c', 'protocol.version=2', 'ls-remote', sshUrl('alpha.git')], { cwd: clone, env: { ...gitEnv(keyFile.alice!), GIT_TRACE_PACKET: '1' } });
    expect(v2.code).toBe(0);
    expect(v2.stderr).toMatch(/ls-remote< version 2/);
    expect(v2.stdout).toContain('refs/heads/main');
  });

  test('a key scoped to alpha cannot push to or fetch from beta, which looks like a missing app', async () => {
    const work = workRepo('push-beta', 'console.log(2)');
    const push = await git(['push', sshUrl('beta.git'), 'main'], work, keyFile.alice!);
    expect(push.code).not.toBe(0);
    expect(push.stderr).toContain("app 'beta' does not exist (or this key may not use it)");
    expect(refsOf('beta')).toBe('');

    const fetch = await git(['clone', '-q', sshUrl('beta.git'), path.join(base, 'work', 'clone-beta')], base, keyFile.alice!);
    expect(fetch.code).not.toBe(0);
    expect(fs.existsSync(path.join(base, 'work', 'clone-beta', 'index.js'))).toBe(false);

    // Exactly the same answer for an app that does not exist at all.
    const missing = await ssh(keyFile.alice!, ["git-upload-pack 'gamma.git'"]);
    const outOfScope = await ssh(keyFile.alice!, ["git-upload-pack 'beta.git'"]);
    expect(outOfScope.code).toBe(missing.code);
    expect(outOfScope.stderr.replace('beta', 'gamma')).toBe(missing.stderr);
  });

  test('an admin key reaches every app; grant and revoke apply to the next connection', async () => {
    const work = workRepo('push-beta-admin', 'console.log(3)');
    // scp-like form: git sends 'beta.git' without the leading slash.
    const scpLike = await run('git', ['push', 'git@127.0.0.1:beta.git', 'main'], {
      cwd: work, env: cleanEnv({ GIT_SSH_COMMAND: `ssh ${sshOpts(keyFile.root!).join(' ')} -p ${server.port}` }),
    });
    expect(scpLike.code).toBe(0);
    expect(refsOf('beta')).toContain('refs/heads/main');

    expect((await ssh(keyFile.alice!, ['ps', 'beta'])).code).toBe(1);
    expect((await localCommand(['keys:grant', 'alice', 'beta'])).code).toBe(0);
    const granted = await ssh(keyFile.alice!, ['ps', 'beta']);
    expect(granted).toMatchObject({ code: 0, stdout: 'ps beta for key:alice\n' });
    expect((await localCommand(['keys:revoke', 'alice', 'beta'])).code).toBe(0);
    expect((await ssh(keyFile.alice!, ['ps', 'beta'])).stderr).toContain("app 'beta' does not exist");
  });
});

describe('platformx commands over SSH', () => {
  test('run through the dispatcher with the key as caller, output and exit code passed through', async () => {
    const who = await ssh(keyFile.alice!, ['whoami']);
    expect(who.code).toBe(0);
    expect(JSON.parse(who.stdout)).toEqual({ kind: 'key', name: 'alice', admin: false, apps: ['alpha'] });

    expect(await ssh(keyFile.alice!, ['platformx', 'ps', 'alpha'])).toMatchObject({ code: 0, stdout: 'ps alpha for key:alice\n' });
    expect(await ssh(keyFile.alice!, ['fail'])).toMatchObject({ code: 3, stderr: 'failing on purpose\n' });
    // Quoted words arrive as one argument, never through a shell.
    const echo = await ssh(keyFile.alice!, [`echo 'two words' "x=1" plain`]);
    expect(JSON.parse(echo.stdout)).toEqual(['two words', 'x=1', 'plain']);
  });

  test('a scoped key cannot ask about another app or run admin commands', async () => {
    const other = await ssh(keyFile.alice!, ['ps', 'beta']);
    expect(other).toMatchObject({ code: 1, stdout: '' });
    expect(other.stderr).toBe("error: app 'beta' does not exist\n");
    const create = await ssh(keyFile.alice!, ['apps:create', 'x']);
    expect(create.code).toBe(1);
    expect(create.stderr).toContain('needs an admin key');
    expect((await ssh(keyFile.root!, ['apps:create', 'x'])).stdout).toBe('created\n');
    expect((await ssh(keyFile.alice!, ['keys:list'])).code).toBe(1);
  });

  test('keys:add over SSH by an admin reads the key from stdin, and never reads a server path', async () => {
    makeKey('carol');
    const add = await ssh(keyFile.root!, ['keys:add', 'carol', '--app', 'alpha'], { input: fs.readFileSync(`${keyFile.carol}.pub`, 'utf8') });
    expect(add.code).toBe(0);
    expect((await ssh(keyFile.carol!, ['ps', 'alpha'])).code).toBe(0);
    const file = await ssh(keyFile.root!, ['keys:add', 'dave', '--admin', '--file', '/etc/passwd']);
    expect(file.code).toBe(1);
    expect(file.stderr).toContain('--file is read by the local platformx CLI');
    expect(store.get().keys.some((k) => k.name === 'dave')).toBe(false);
  });

  test('logs -f ends when the client disconnects', async () => {
    const started = followStarted;
    const ended = followEnded;
    const child = spawn('ssh', [...sshOpts(keyFile.alice!), '-p', String(server.port), 'git@127.0.0.1', 'logs', 'alpha', '-f'], { env: cleanEnv() });
    const firstLine = await new Promise<string>((resolve, reject) => {
      child.stdout.once('data', (d) => resolve(String(d)));
      child.once('exit', () => reject(new Error('ssh ended before any output')));
    });
    expect(firstLine).toBe('log line of alpha\n');
    expect(followStarted).toBe(started + 1);
    expect(followEnded).toBe(ended);
    child.kill('SIGTERM');
    const deadline = Date.now() + 5000;
    while (followEnded === ended && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(followEnded).toBe(ended + 1);
  });
});

describe('everything else is refused, with a reason, and leaves nothing behind', () => {
  test('a shell, with or without a terminal', async () => {
    const shell = await ssh(keyFile.alice!, []);
    expect(shell.code).toBe(1);
    expect(shell.stderr).toContain('platformx: no shell here');
    const tty = await ssh(keyFile.alice!, [], { extra: ['-tt'] });
    expect(tty.code).toBe(1);
    expect(tty.stderr).toContain('platformx: no shell here');
    const ttyCommand = await ssh(keyFile.alice!, ['ps', 'alpha'], { extra: ['-tt'] });
    expect(ttyCommand.code).toBe(1);
    expect(ttyCommand.stderr).toContain('terminals (ssh -t) are not offered');
  });

  test('sftp and other subsystems', async () => {
    const sftp = await run('sftp', [...sshOpts(keyFile.alice!), '-P', String(server.port), '-b', '-', 'git@127.0.0.1'], { input: 'ls /\n' });
    expect(sftp.code).not.toBe(0);
    expect(sftp.stderr).toContain("subsystem 'sftp' is not offered");
    const sub = await ssh(keyFile.alice!, ['netconf'], { extra: ['-s'] });
    expect(sub.code).toBe(1);
    expect(sub.stderr).toContain("subsystem 'netconf' is not offered");
  });

  test('arbitrary commands, path traversal and shell syntax', async () => {
    const marker = path.join(base, `pwned-${process.pid}`);
    const cases: [string, string][] = [
      ['ls /', "unknown command 'ls'"],
      ['/bin/sh -c id', "'/bin/sh' is not a platformx command"],
      ["git-receive-pack '../other.git'", "invalid repository path '../other.git'"],
      ["git-upload-pack 'alpha/../beta.git'", 'invalid repository path'],
      ['git-receive-pack alpha.git; id', "shell syntax ';'"],
      [`ps alpha; touch ${marker}`, "shell syntax ';'"],
      [`$(touch ${marker}-2)`, "shell syntax '$'"],
      [`ps \`touch ${marker}-3\``, "shell syntax '`'"],
      [`ps alpha && touch ${marker}-4`, "shell syntax '&'"],
      [`ps alpha | tee ${marker}-5`, "shell syntax '|'"],
      [`echo "$(touch ${marker}-6)"`, "shell syntax '$'"],
      [`ps alpha > ${marker}-7`, "shell syntax '>'"],
    ];
    for (const [command, reason] of cases) {
      const r = await ssh(keyFile.alice!, [command]);
      expect(r.code, command).not.toBe(0);
      expect(r.stderr, command).toContain(reason);
      expect(r.stdout, command).toBe('');
    }
    const left = fs.readdirSync(base).filter((f) => f.startsWith('pwned'));
    expect(left).toEqual([]);
    expect(fs.existsSync(path.join(base, 'apps', 'other.git'))).toBe(false);
    expect(fs.existsSync(path.join(base, 'other.git'))).toBe(false);
  });

  test('port forwarding: ssh -W and ssh -R', async () => {
    const w = await ssh(keyFile.alice!, [], { extra: ['-W', `127.0.0.1:${server.port}`] });
    expect(w.code).toBe(255);
    expect(w.stderr).toContain('stdio forwarding failed');
    const r = await ssh(keyFile.alice!, [], { extra: ['-N', '-o', 'ExitOnForwardFailure=yes', '-R', '0:127.0.0.1:9'] });
    expect(r.code).toBe(255);
    expect(r.stderr).toContain('remote port forwarding failed');
  });

  test('an unknown key, a removed key, and password auth are refused', async () => {
    const unknown = await ssh(keyFile.stranger!, ['whoami']);
    expect(unknown.code).toBe(255);
    expect(unknown.stderr).toContain('Permission denied (publickey)');

    makeKey('eve');
    await localCommand(['keys:add', 'eve', '--app', 'alpha'], fs.readFileSync(`${keyFile.eve}.pub`, 'utf8'));
    expect((await ssh(keyFile.eve!, ['whoami'])).code).toBe(0);
    expect((await localCommand(['keys:remove', 'eve'])).code).toBe(0);
    const removed = await ssh(keyFile.eve!, ['whoami']);
    expect(removed.code).toBe(255);
    expect(removed.stderr).toContain('Permission denied (publickey)');

    // OpenSSH is offered publickey only, so it never sends a password ...
    const pw = await run('ssh', [
      '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'PubkeyAuthentication=no',
      '-o', 'PreferredAuthentications=password,keyboard-interactive', '-o', 'BatchMode=yes', '-p', String(server.port), 'git@127.0.0.1', 'whoami',
    ]);
    expect(pw.code).toBe(255);
    expect(pw.stderr).toContain('Permission denied (publickey)');

    // ... and a client that sends one anyway is refused too.
    const err = await new Promise<Error | null>((resolve) => {
      const c = new ssh2.Client();
      c.on('ready', () => {
        c.end();
        resolve(null);
      });
      c.on('error', (e) => resolve(e));
      c.connect({ host: '127.0.0.1', port: server.port, username: 'git', password: 'hunter2', tryKeyboard: true });
    });
    expect(err?.message).toContain('All configured authentication methods failed');
  });

  test('ecdsa and RSA keys authenticate too; keys:list shows fingerprints and last use', async () => {
    makeKey('ec', 'ecdsa');
    makeKey('rsa', 'rsa', 3072);
    for (const k of ['ec', 'rsa']) {
      expect((await localCommand(['keys:add', k, '--app', 'alpha'], fs.readFileSync(`${keyFile[k]}.pub`, 'utf8'))).code).toBe(0);
      expect(await ssh(keyFile[k]!, ['ps', 'alpha'])).toMatchObject({ code: 0, stdout: `ps alpha for key:${k}\n` });
    }
    const list = JSON.parse((await localCommand(['keys:list', '--json'])).stdout) as { name: string; fingerprint: string; lastUsed: string | null }[];
    const rsa = list.find((k) => k.name === 'rsa')!;
    const expected = execFileSync('ssh-keygen', ['-lf', `${keyFile.rsa}.pub`]).toString().split(' ')[1];
    expect(rsa.fingerprint).toBe(expected);
    expect(rsa.lastUsed).not.toBeNull();
  });
});

describe('host key and limits', () => {
  test('the host key is kept (0600) and has the same fingerprint after a restart', async () => {
    const stat = fs.statSync(serverOpts.hostKeyPath);
    expect(stat.mode & 0o777).toBe(0o600);
    const ssh_keygen = execFileSync('ssh-keygen', ['-lf', serverOpts.hostKeyPath]).toString().split(' ')[1];
    expect(server.fingerprint).toBe(ssh_keygen);

    const knownHosts = path.join(base, 'known_hosts');
    const pin = (extra: string[]) => run('ssh', [
      '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-i', keyFile.alice!, ...extra,
      '-p', String(server.port), 'git@127.0.0.1', 'whoami',
    ]);
    expect((await pin(['-o', 'StrictHostKeyChecking=accept-new'])).code).toBe(0);
    const oldPort = server.port;
    await server.close();
    server = await startServer({ port: oldPort });
    expect(server.fingerprint).toBe(ssh_keygen);
    // Strict checking against the pinned key: a changed host key would fail here.
    expect((await pin(['-o', 'StrictHostKeyChecking=yes'])).code).toBe(0);
  });

  test('connections per address are capped', async () => {
    const limited = await startServer({ port: 0, limits: { maxConnectionsPerIp: 2 } });
    const whoami = () => run('ssh', [...sshOpts(keyFile.alice!), '-p', String(limited.port), 'git@127.0.0.1', 'whoami']);
    try {
      const holders = await Promise.all([0, 1].map(() => new Promise<net.Socket>((resolve) => {
        const s = net.connect(limited.port, '127.0.0.1', () => resolve(s));
        s.on('error', () => {});
        s.resume();
      })));
      const over = await whoami();
      expect(over.code).toBe(255);
      expect(over.stdout).toBe('');
      for (const h of holders) h.destroy();
      // The server frees the slots when it sees the sockets close.
      let ok = await whoami();
      for (let i = 0; ok.code !== 0 && i < 20; i++) {
        await new Promise((r) => setTimeout(r, 100));
        ok = await whoami();
      }
      expect(ok.code).toBe(0);
    } finally {
      await limited.close();
    }
  });

  test('an unauthenticated connection and an idle one are closed', async () => {
    const limited = await startServer({ port: 0, limits: { authTimeoutMs: 300, idleTimeoutMs: 300 } });
    try {
      const silent = net.connect(limited.port, '127.0.0.1');
      silent.on('error', () => {});
      silent.resume();
      const t0 = Date.now();
      await new Promise((resolve) => silent.once('close', resolve));
      expect(Date.now() - t0).toBeLessThan(5000);
      // ssh -N runs nothing: the idle timeout ends it (the run helper would kill it only after 10 s).
      const idle = await run('ssh', [...sshOpts(keyFile.alice!), '-N', '-p', String(limited.port), 'git@127.0.0.1'], { timeoutMs: 10_000 });
      expect(idle.code).toBe(255);
    } finally {
      await limited.close();
    }
  });

  test('failed authentication attempts are capped per connection', async () => {
    const limited = await startServer({ port: 0, limits: { maxAuthAttempts: 3 } });
    const connect = (port: number) => new Promise<Error | null>((resolve) => {
      const c = new ssh2.Client();
      c.on('ready', () => {
        c.end();
        resolve(null);
      });
      c.on('error', (e) => resolve(e));
      c.on('close', () => resolve(new Error('connection closed')));
      const password = { type: 'password' as const, username: 'git', password: 'guess' };
      const byKey: PublicKeyAuthMethod = { type: 'publickey', username: 'git', key: fs.readFileSync(keyFile.alice!) };
      c.connect({
        host: '127.0.0.1', port, username: 'git',
        authHandler: [password, password, password, byKey],
      });
    });
    try {
      // Three wrong guesses end the connection before the right key is tried ...
      expect((await connect(limited.port))?.message).toMatch(/authentication methods failed|closed|disconnect/i);
      // ... while the default allows a few.
      expect(await connect(server.port)).toBeNull();
    } finally {
      await limited.close();
    }
  });

  test('channels per connection are capped', async () => {
    const limited = await startServer({ port: 0, limits: { maxChannelsPerConnection: 2 } });
    const c = new ssh2.Client();
    try {
      await new Promise<void>((resolve, reject) => {
        c.on('ready', () => resolve()).on('error', reject);
        c.connect({ host: '127.0.0.1', port: limited.port, username: 'git', privateKey: fs.readFileSync(keyFile.alice!) });
      });
      const exec = (cmd: string) => new Promise<Error | ssh2.ClientChannel>((resolve) => c.exec(cmd, (err, ch) => {
        // Consumed, so the channel's close event can fire.
        ch?.resume();
        ch?.stderr.resume();
        resolve(err ?? ch);
      }));
      const first = await exec('logs alpha -f');
      const second = await exec('logs alpha -f');
      const third = await exec('whoami');
      expect(first).not.toBeInstanceOf(Error);
      expect(second).not.toBeInstanceOf(Error);
      expect(third).toBeInstanceOf(Error);
      // A slot frees when a channel closes.
      await new Promise<void>((resolve) => {
        (first as ssh2.ClientChannel).once('close', () => resolve());
        (first as ssh2.ClientChannel).close();
      });
      const fourth = await exec('whoami');
      expect(fourth).not.toBeInstanceOf(Error);
    } finally {
      c.end();
      await limited.close();
    }
  });
});
