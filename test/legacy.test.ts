// The old SDK's two steps end to end, as a user with a deploy key does them:
// the real rsync client over the real OpenSSH client into the SSH server, then
// register_app + restart_app with the real dnode client through an `ssh -L`
// tunnel. The server runs in this process, wired the way `platformx server`
// wires the legacy endpoints into the SSH server (startLegacyEndpoints).
import dnode from 'dnode';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Caller, CommandIO } from '../src/control/types.js';
import { PushSessions } from '../src/git/push-sessions.js';
import { startLegacyEndpoints, type LegacyEndpoints } from '../src/legacy/legacy-endpoints.js';
import { startServer, type RunningServer } from '../src/server/server.js';
import { parseServerOptions } from '../src/server/server-options.js';
import { startSshServer, type SshServerHandle } from '../src/ssh/ssh-server.js';
import { DataPaths } from '../src/state/paths.js';
import { StateStore } from '../src/state/store.js';
import { get, waitFor } from './support/apps.js';
import { run } from './support/platform.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pxl-flow-'));
const data = path.join(tmp, 'data');
const paths = new DataPaths(data);
const LOCAL: Caller = { kind: 'local', name: 'local', admin: true, apps: [] };
const key = (name: string) => path.join(tmp, 'keys', name);

let server: RunningServer;
let legacy: LegacyEndpoints;
let ssh: SshServerHandle;
const tunnels: ChildProcess[] = [];

async function cli(argv: string[], stdin?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: CommandIO = {
    stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), signal: new AbortController().signal,
    stdin: stdin === undefined ? undefined : Readable.from([stdin]),
  };
  const code = await server.dispatch(argv, LOCAL, io);
  return { code, stdout, stderr };
}

/** Only the given key, no agent, no user config. */
const sshArgs = (keyName: string) => ['-F', '/dev/null', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
  '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR', '-i', key(keyName), '-p', String(ssh.port)];
const sshEnv = () => {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: tmp };
  delete env.SSH_AUTH_SOCK;
  return env;
};

function bundle(name: string, body: string, files: Record<string, string> = {}): string {
  const dir = path.join(tmp, 'bundles', name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'apprunner.js'), `const http = require('http');
const fs = require('fs');
const arg = (n) => process.argv[process.argv.indexOf(n) + 1];
http.createServer((req, res) => {
  if (req.url === '/extra') return res.end(fs.existsSync(__dirname + '/extra.txt') ? 'present' : 'absent');
  res.end(${JSON.stringify(body)});
}).listen(Number(arg('--port')));
`);
  for (const [f, content] of Object.entries(files)) fs.writeFileSync(path.join(dir, f), content);
  return dir;
}

/** The SDK's upload: rsync -az --delete -e 'ssh -p PORT -i KEY' ./bundle/ git@HOST:DEST */
function rsync(keyName: string, source: string, dest: string, extra: string[] = []) {
  return run('rsync', ['-az', '--delete', ...extra, '-e', `ssh ${sshArgs(keyName).join(' ')}`, source, `git@127.0.0.1:${dest}`], { env: sshEnv() });
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** ssh -N -L LOCAL:127.0.0.1:TARGET; resolves once the local end accepts connections. */
async function tunnel(keyName: string, target: number): Promise<number> {
  const local = await freePort();
  const child = spawn('ssh', [...sshArgs(keyName), '-N', '-o', 'ExitOnForwardFailure=yes', '-L', `${local}:127.0.0.1:${target}`, 'git@127.0.0.1'],
    { env: sshEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
  tunnels.push(child);
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  await waitFor(() => new Promise<boolean>((resolve) => {
    if (child.exitCode !== null) throw new Error(`ssh -L exited: ${stderr}`);
    const s = net.connect(local, '127.0.0.1', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  }), 15_000, 'the ssh tunnel');
  return local;
}

interface Client {
  remote: Record<string, (...args: unknown[]) => void>;
  close(): void;
}
function connect(port: number): Promise<Client> {
  return new Promise((resolve, reject) => {
    const d = dnode(undefined, { weak: false });
    d.on('remote', (remote: Client['remote']) => resolve({ remote, close: () => d.end() }));
    d.on('error', reject);
    d.connect(port);
  });
}
type Answer = { err: { message?: string } | null; value: Record<string, string> | undefined };
function call(client: Client, method: string, ...args: unknown[]): Promise<Answer> {
  return new Promise((resolve) => client.remote[method]!(...args, (err: Answer['err'], value: Answer['value']) => resolve({ err, value })));
}

beforeAll(async () => {
  const opts = parseServerOptions(['--data', data, '--host', '127.0.0.1', '--http-port', '0', '--git-http-port', '0',
    '--ssh-port', 'off', '--dnode-port', 'off', '--drain-timeout', '2', '--boot-timeout', '20']);
  server = await startServer(opts, () => {});
  expect((await cli(['apps:create', 'hello'])).code).toBe(0);
  expect((await cli(['apps:create', 'other', '--domain', 'other.example.com'])).code).toBe(0);
  fs.mkdirSync(path.join(tmp, 'keys'));
  for (const [name, app] of [['alice', 'hello'], ['bob', 'other']] as const) {
    expect((await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', key(name)])).code).toBe(0);
    const added = await cli(['keys:add', name, '--app', app], fs.readFileSync(`${key(name)}.pub`, 'utf8'));
    expect(added.code, added.stderr).toBe(0);
  }
  // The SSH server reads keys from the store; this one is loaded after the keys were added.
  const store = new StateStore(paths.stateFile);
  legacy = await startLegacyEndpoints({
    maestro: server.maestro, paths, dnodeHost: '127.0.0.1', dnodePort: 0, dnodeAllow: [], sshPort: () => ssh?.port ?? null,
  });
  ssh = await startSshServer({
    host: '127.0.0.1', port: 0, hostKeyPath: paths.hostKey, store, dispatch: server.dispatch, pushSessions: new PushSessions(),
    repoPath: (app) => paths.repo(app), onRsync: legacy.onRsync, onTcpForward: legacy.onTcpForward,
  });
});

afterAll(async () => {
  for (const t of tunnels) t.kill();
  await ssh?.close();
  await legacy?.close();
  await server?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('the old SDK deploys with a new key, port and user', () => {
  it('rsync over SSH, then register_app and restart_app through the tunnel; the bundle serves at its hostname', async () => {
    const up = await rsync('alice', `${bundle('hello', 'hello from the sdk', { 'extra.txt': 'x' })}/`, 'hello/');
    expect(up.code, up.stderr).toBe(0);
    const local = await tunnel('alice', legacy.dnodePort!);
    const client = await connect(local);
    const registered = await call(client, 'register_app', { name: 'hello', hostname: 'hello.example.com' });
    expect(registered).toEqual({ err: null, value: { hello: 'hello.example.com' } });
    const restarted = await call(client, 'restart_app', 'hello');
    expect(restarted).toEqual({ err: null, value: { hello: 'hello.example.com' } });
    client.close();
    expect((await get(server.info.httpPort, 'hello.example.com')).body).toBe('hello from the sdk');
    const releases = JSON.parse((await cli(['releases', 'hello', '--json'])).stdout) as { source: string; by: string }[];
    expect(releases[0]).toMatchObject({ source: 'rsync', by: 'alice' });
  });

  it('an incremental re-upload with --delete to the old absolute path, then restart_app, serves the new content', async () => {
    const up = await rsync('alice', `${bundle('hello', 'hello, second upload')}/`, '/srv/http/platform.x/applications/hello/');
    expect(up.code, up.stderr).toBe(0);
    const client = await connect(await tunnel('alice', legacy.dnodePort!));
    expect((await call(client, 'restart_app', 'hello', 'hello.example.com')).err).toBeNull();
    client.close();
    expect((await get(server.info.httpPort, 'hello.example.com')).body).toBe('hello, second upload');
    expect((await get(server.info.httpPort, 'hello.example.com', '/extra')).body).toBe('absent');
  });
});

describe('what a key cannot do', () => {
  it('a key for hello cannot rsync into other or register it, and the answer is that it does not exist', async () => {
    const up = await rsync('alice', `${bundle('evil', 'taken over')}/`, 'other/');
    expect(up.code).not.toBe(0);
    expect(up.stderr.split('\n')[0]).toBe("rsync refused: app 'other' does not exist");
    expect(fs.existsSync(paths.upload('other'))).toBe(false);

    const client = await connect(await tunnel('alice', legacy.dnodePort!));
    const reg = await call(client, 'register_app', { name: 'other', hostname: 'evil.example.com' });
    expect(reg.err?.message).toMatch(/^app 'other' does not exist/);
    const restart = await call(client, 'restart_app', 'other');
    expect(restart.err?.message).toMatch(/^app 'other' does not exist/);
    // Another app's hostname is refused, and nothing changes.
    const steal = await call(client, 'register_app', { name: 'hello', hostname: 'other.example.com' });
    expect(steal.err?.message).toBe("hostname 'other.example.com' already belongs to another app: register a hostname of your own");
    client.close();
    const other = JSON.parse((await cli(['apps:info', 'other', '--json'])).stdout) as { domains: string[]; release: string | null };
    expect(other).toMatchObject({ domains: ['other.example.com'], release: null });
    const hello = JSON.parse((await cli(['apps:info', 'hello', '--json'])).stdout) as { domains: string[] };
    expect(hello.domains).toEqual(['hello.example.com']);
  });

  it('downloads and options that reach outside the folder are refused with a one-line reason', async () => {
    const download = await run('rsync', ['-az', '-e', `ssh ${sshArgs('alice').join(' ')}`, 'git@127.0.0.1:hello/', `${path.join(tmp, 'download')}/`], { env: sshEnv() });
    expect(download.code).not.toBe(0);
    expect(download.stderr.split('\n')[0]).toMatch(/^rsync refused: downloads are not offered/);
    expect(fs.existsSync(path.join(tmp, 'download', 'apprunner.js'))).toBe(false);

    const logFile = path.join(tmp, 'server-side.log');
    const r = await rsync('alice', `${bundle('hello', 'x')}/`, 'hello/', [`-M--log-file=${logFile}`]);
    expect(r.code).not.toBe(0);
    expect(r.stderr.split('\n')[0]).toMatch(/^rsync refused: option '--log-file=.*' is not allowed here/);
    expect(fs.existsSync(logFile)).toBe(false);
    const escape = await rsync('alice', `${bundle('hello', 'x')}/`, 'hello/../other/');
    expect(escape.stderr.split('\n')[0]).toMatch(/leaves the upload folder/);
  });

  it('only the DNode port may be forwarded', async () => {
    const local = await tunnel('alice', server.info.httpPort);
    const s = net.connect(local, '127.0.0.1');
    let got = '';
    s.on('data', (d) => (got += d));
    s.on('error', () => {});
    s.write('GET / HTTP/1.1\r\nHost: hello.example.com\r\n\r\n');
    await new Promise((r) => s.once('close', r));
    expect(got).toBe('');
  });

  it('a direct DNode connection (no key) is answered with a message telling to tunnel', async () => {
    const client = await connect(legacy.dnodePort!);
    const r = await call(client, 'register_app', { name: 'hello', hostname: 'direct.example.com' });
    client.close();
    expect(r.err?.message).toMatch(/^direct DNode connections are not accepted from 127\.0\.0\.1: tunnel over SSH with your deploy key \(ssh -N -L \d+:127\.0\.0\.1:\d+ -p \d+ git@HOST\)/);
    expect(r.err?.message).toContain(`-p ${ssh.port} `);
  });
});
