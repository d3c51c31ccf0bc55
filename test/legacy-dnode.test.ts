// The legacy DNode endpoint against the real server (started in this process:
// Maestro, the proxy, apps as real processes), driven by the real dnode client
// over TCP; bundles are uploaded with the real rsync client through the same
// exec handler the SSH server calls. Scoped sessions are served the way the SSH
// server serves a tunnel: DnodeServer.serve(stream, caller).
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Caller, CommandIO } from '../src/control/types.js';
import { startDnodeServer, type DnodeServer } from '../src/legacy/dnode-endpoint.js';
import { UploadFolders } from '../src/legacy/upload-folders.js';
import { startServer, type RunningServer } from '../src/server/server.js';
import { parseServerOptions } from '../src/server/server-options.js';
import { DataPaths } from '../src/state/paths.js';
import { call, connect } from './support/dnode-client.js';
import { get, waitFor } from './support/apps.js';
import { ROOT, run } from './support/platform.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pxl-dnode-'));
const data = path.join(tmp, 'data');
const transport = path.join(tmp, 'transport.mjs');
const LOCAL: Caller = { kind: 'local', name: 'local', admin: true, apps: [] };
const ALICE: Caller = { kind: 'key', name: 'alice', admin: false, apps: ['hello', 'slow', 'thrower'] };

let server: RunningServer;
let trusted: DnodeServer;
let closed: DnodeServer;
let tunnel: net.Server;
let tunnelPort: number;
const serverLog: string[] = [];

async function cli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: CommandIO = { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), signal: new AbortController().signal };
  const code = await server.dispatch(argv, LOCAL, io);
  return { code, stdout, stderr };
}

/** A legacy bundle: apprunner.js at the root, started as `node apprunner.js --name APP --port PORT`. */
function writeBundle(dir: string, body: string, opts: { delayMs?: number; files?: Record<string, string> } = {}): string {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'apprunner.js'), `const http = require('http');
const fs = require('fs');
const arg = (n) => process.argv[process.argv.indexOf(n) + 1];
const server = http.createServer((req, res) => {
  if (req.url === '/extra') { res.end(fs.existsSync(__dirname + '/extra.txt') ? 'present' : 'absent'); return; }
  res.end(${JSON.stringify(body)} + ' from ' + arg('--name'));
});
setTimeout(() => server.listen(Number(arg('--port'))), ${opts.delayMs ?? 0});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
`);
  for (const [name, content] of Object.entries(opts.files ?? {})) fs.writeFileSync(path.join(dir, name), content);
  return dir;
}

/** rsync -az --delete BUNDLE/ git@HOST:APP/ through the exec handler, as key `caller`. */
function rsyncUpload(bundle: string, app: string, caller: Caller) {
  return run('rsync', ['-az', '--delete', '-e', `${process.execPath} ${transport}`, `${bundle}/`, `git@HOST:${app}/`], {
    env: { ...process.env, NODE_OPTIONS: '', PXL_DATA: data, PXL_CALLER: JSON.stringify(caller) },
  });
}


async function appInfo(app: string): Promise<{ domains: string[]; release: string | null }> {
  return JSON.parse((await cli(['apps:info', app, '--json'])).stdout);
}

beforeAll(async () => {
  for (const f of ['legacy/rsync-receiver.js', 'legacy/upload-folders.js']) {
    const built = path.join(ROOT, 'dist', f);
    if (!fs.existsSync(built) || fs.statSync(built).mtimeMs < fs.statSync(path.join(ROOT, 'src', f.replace(/\.js$/, '.ts'))).mtimeMs) {
      throw new Error(`${built} is missing or older than its source: run 'npx tsc -p .' (npm test does) first`);
    }
  }
  const opts = parseServerOptions(['--data', data, '--host', '127.0.0.1', '--http-port', '0', '--git-http-port', '0',
    '--ssh-port', 'off', '--dnode-port', 'off', '--https-port', '0', '--dashboard-port', 'off', '--drain-timeout', '2', '--boot-timeout', '20', '--stop-apps']);
  server = await startServer(opts, (l) => serverLog.push(l));
  for (const app of ['hello', 'slow', 'thrower', 'other']) expect((await cli(['apps:create', app])).code).toBe(0);
  expect((await cli(['domains:add', 'other', 'other.example.com'])).code).toBe(0);

  const uploads = new UploadFolders(new DataPaths(data));
  const log = (l: string) => serverLog.push(l);
  trusted = await startDnodeServer({ host: '127.0.0.1', port: 0, allow: ['127.0.0.1/32'], maestro: server.maestro, uploads, log });
  closed = await startDnodeServer({ host: '127.0.0.1', port: 0, allow: [], maestro: server.maestro, uploads, log, sshPort: () => 2222 });
  // Stands in for the SSH server's forward: each connection is a session of key 'alice'.
  tunnel = net.createServer((socket) => trusted.serve(socket, ALICE));
  await new Promise<void>((r) => tunnel.listen(0, '127.0.0.1', r));
  tunnelPort = (tunnel.address() as net.AddressInfo).port;

  fs.writeFileSync(transport, `
const { handleRsyncUpload } = await import(${JSON.stringify(path.join(ROOT, 'dist/legacy/rsync-receiver.js'))});
const { UploadFolders } = await import(${JSON.stringify(path.join(ROOT, 'dist/legacy/upload-folders.js'))});
const { DataPaths } = await import(${JSON.stringify(path.join(ROOT, 'dist/state/paths.js'))});
const { StateStore } = await import(${JSON.stringify(path.join(ROOT, 'dist/state/store.js'))});
const paths = new DataPaths(process.env.PXL_DATA);
const state = StateStore.read(paths.stateFile);
const apps = { get(name) { const a = state.apps[name]; if (!a) throw new Error('no app ' + name); return a; } };
const ctx = { argv: process.argv.slice(5), caller: JSON.parse(process.env.PXL_CALLER), stdin: process.stdin, stdout: process.stdout, stderr: process.stderr };
const code = await handleRsyncUpload(ctx, { apps, uploads: new UploadFolders(paths) });
process.stdout.write('', () => process.exit(code));
`);
});

afterAll(async () => {
  await new Promise((r) => tunnel?.close(r));
  await trusted?.close();
  await closed?.close();
  await server?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('register_app and restart_app over DNode', () => {
  it('deploys an rsync upload: register_app, restart_app, then the bundle serves at its hostname', async () => {
    const up = await rsyncUpload(writeBundle(path.join(tmp, 'hello-v1'), 'hello v1'), 'hello', ALICE);
    expect(up.code, up.stderr).toBe(0);
    const client = await connect(tunnelPort);
    const registered = await call(client, 'register_app', { name: 'hello', hostname: 'hello.example.com' });
    expect(registered.err).toBeNull();
    expect(registered.value).toEqual({ hello: 'hello.example.com', slow: 'slow.localhost', thrower: 'thrower.localhost' });
    const restarted = await call(client, 'restart_app', 'hello');
    expect(restarted.err).toBeNull();
    expect(restarted.value?.hello).toBe('hello.example.com');
    client.close();
    // Called back only after the switch: the new release answers at once.
    expect((await get(server.info.httpPort, 'hello.example.com')).body).toBe('hello v1 from hello');
    const releases = JSON.parse((await cli(['releases', 'hello', '--json'])).stdout) as { source: string; by: string; status: string; current: boolean }[];
    expect(releases[0]).toMatchObject({ source: 'rsync', by: 'alice', status: 'succeeded', current: true });
  });

  it('incremental re-upload with --delete, then restart_app(name, hostname, cb), serves the new content', async () => {
    const bundle = writeBundle(path.join(tmp, 'hello-v2'), 'hello v1', { files: { 'extra.txt': 'x' } });
    expect((await rsyncUpload(bundle, 'hello', ALICE)).code).toBe(0);
    const client = await connect(tunnelPort);
    expect((await call(client, 'restart_app', 'hello', 'hello.example.com')).err).toBeNull();
    expect((await get(server.info.httpPort, 'hello.example.com', '/extra')).body).toBe('present');

    writeBundle(bundle, 'hello version two');
    const up = await rsyncUpload(bundle, 'hello', ALICE);
    expect(up.code, up.stderr).toBe(0);
    const r = await call(client, 'restart_app', 'hello', 'www.hello.example.com');
    expect(r.err).toBeNull();
    client.close();
    expect((await get(server.info.httpPort, 'hello.example.com')).body).toBe('hello version two from hello');
    expect((await get(server.info.httpPort, 'hello.example.com', '/extra')).body).toBe('absent');
    expect((await get(server.info.httpPort, 'www.hello.example.com')).body).toBe('hello version two from hello');
    expect((await appInfo('hello')).domains).toEqual(['hello.example.com', 'www.hello.example.com']);
  });

  it('an app that takes 1.5 s to start listening deploys fine', async () => {
    expect((await rsyncUpload(writeBundle(path.join(tmp, 'slow'), 'slow one', { delayMs: 1500 }), 'slow', ALICE)).code).toBe(0);
    const client = await connect(tunnelPort);
    const started = Date.now();
    const r = await call(client, 'restart_app', 'slow');
    client.close();
    expect(r.err).toBeNull();
    expect(Date.now() - started).toBeGreaterThanOrEqual(1500);
    expect((await get(server.info.httpPort, 'slow.localhost')).body).toBe('slow one from slow');
  });

  it('a failed deploy answers with a message while the old release keeps serving', async () => {
    const bundle = path.join(tmp, 'broken');
    fs.mkdirSync(bundle, { recursive: true });
    fs.writeFileSync(path.join(bundle, 'apprunner.js'), 'throw new Error("cannot start")\n');
    expect((await rsyncUpload(bundle, 'hello', ALICE)).code).toBe(0);
    const client = await connect(tunnelPort);
    const r = await call(client, 'restart_app', 'hello');
    client.close();
    expect(r.err?.message).toMatch(/^deploy of 'hello' failed: .+; the previous release keeps serving/);
    expect((await get(server.info.httpPort, 'hello.example.com')).body).toBe('hello version two from hello');
  });

  it('an app that throws on every request gets 502s and its stack in its log; the server and other apps keep serving', async () => {
    const bundle = path.join(tmp, 'thrower');
    fs.mkdirSync(bundle, { recursive: true });
    fs.writeFileSync(path.join(bundle, 'apprunner.js'), `const http = require('http');
const port = Number(process.argv[process.argv.indexOf('--port') + 1]);
http.createServer((req, res) => {
  if (req.url === '/healthz') return res.end('ok');
  throw new Error('boom on every request');
}).listen(port);
`);
    fs.writeFileSync(path.join(bundle, 'app.json'), JSON.stringify({ healthchecks: { web: [{ type: 'startup', path: '/healthz' }] } }));
    expect((await rsyncUpload(bundle, 'thrower', ALICE)).code).toBe(0);
    const client = await connect(tunnelPort);
    const r = await call(client, 'restart_app', 'thrower');
    client.close();
    expect(r.err).toBeNull();
    expect((await get(server.info.httpPort, 'thrower.localhost')).status).toBe(502);
    expect((await get(server.info.httpPort, 'hello.example.com')).body).toBe('hello version two from hello');
    await waitFor(async () => (await cli(['logs', 'thrower', '-n', '200'])).stdout.includes('Error: boom on every request'), 10_000, 'the stack trace in the log');
    expect((await cli(['logs', 'thrower', '-n', '200'])).stdout).toMatch(/at Server\.<anonymous>/);
  });
});

describe('what the DNode endpoint refuses', () => {
  it("register_app with another app's hostname is refused and changes nothing", async () => {
    const client = await connect(tunnelPort);
    const r = await call(client, 'register_app', { name: 'hello', hostname: 'other.example.com' });
    expect(r.err?.message).toBe("hostname 'other.example.com' already belongs to another app: register a hostname of your own");
    const viaRestart = await call(client, 'restart_app', 'hello', 'other.example.com');
    expect(viaRestart.err?.message).toMatch(/already belongs to another app/);
    client.close();
    expect((await appInfo('hello')).domains).toEqual(['hello.example.com', 'www.hello.example.com']);
    expect((await appInfo('other')).domains).toEqual(['other.example.com']);
  });

  it("an unknown app, or one outside the key's scope, does not exist", async () => {
    const client = await connect(tunnelPort);
    for (const name of ['nope', 'other']) {
      const reg = await call(client, 'register_app', { name, hostname: `${name}.example.org` });
      expect(reg.err?.message).toMatch(new RegExp(`^app '${name}' does not exist`));
      const rs = await call(client, 'restart_app', name);
      expect(rs.err?.message).toMatch(new RegExp(`^app '${name}' does not exist`));
    }
    client.close();
    expect((await appInfo('other')).domains).toEqual(['other.example.com']);
    expect((await appInfo('other')).release).toBeNull();
  });

  it('a direct connection from outside --dnode-allow is answered with a message telling to tunnel, and changes nothing', async () => {
    const client = await connect(closed.port);
    const r = await call(client, 'register_app', { name: 'hello', hostname: 'taken.example.com' });
    expect(r.err?.message).toMatch(/^direct DNode connections are not accepted from 127\.0\.0\.1: tunnel over SSH .*ssh -N -L/);
    client.close();
    expect((await appInfo('hello')).domains).not.toContain('taken.example.com');
    expect(serverLog.some((l) => l.includes('refused a direct connection from 127.0.0.1'))).toBe(true);
  });

  it('a direct connection from an allowed network has every app', async () => {
    const client = await connect(trusted.port);
    const r = await call(client, 'register_app', { name: 'other', hostname: 'other.example.com' });
    client.close();
    expect(r.err).toBeNull();
    expect(Object.keys(r.value ?? {}).sort()).toEqual(['hello', 'other', 'slow', 'thrower']);
  });

  it('wrong argument types get an error answer; calls without a callback are ignored', async () => {
    const client = await connect(tunnelPort);
    expect((await call(client, 'register_app', 'hello')).err?.message).toMatch(/register_app takes an object/);
    expect((await call(client, 'register_app', null)).err?.message).toMatch(/register_app takes an object/);
    expect((await call(client, 'register_app', { name: 42 })).err?.message).toMatch(/app name must be a non-empty string/);
    expect((await call(client, 'register_app', { name: 'hello', hostname: 7 })).err?.message).toMatch(/hostname must be a string/);
    expect((await call(client, 'register_app', { name: 'hello', hostname: 'bad host!' })).err?.message).toMatch(/invalid hostname/);
    expect((await call(client, 'restart_app', { name: 'hello' })).err?.message).toMatch(/app name must be a non-empty string/);
    expect((await call(client, 'restart_app', 'hello', 'a.example.com', 'extra')).err?.message).toMatch(/restart_app takes/);
    client.remote.restart_app!('hello');
    client.remote.register_app!({ name: 'hello' });
    // The session still answers after all that.
    expect((await call(client, 'register_app', { name: 'hello' })).err).toBeNull();
    client.close();
  });

  it('malformed messages close only that session; the server keeps answering', async () => {
    const raw = async (line: string) => {
      const socket = net.connect(trusted.port, '127.0.0.1');
      let received = '';
      socket.on('data', (d) => (received += d));
      await new Promise<void>((r) => socket.once('connect', () => r()));
      socket.write(line + '\n');
      await new Promise<void>((r) => socket.once('close', () => r()));
      return received;
    };
    const lines = [
      'this is not json',
      '[1,2,3]',
      '{"method":{"x":1}}',
      '{"method":"register_app","arguments":"nope"}',
      '{"method":"register_app","arguments":[{"name":"hello"}],"callbacks":{"0":null}}',
      '{"method":"register_app","arguments":["x"],"callbacks":{"0":["0","deeper"]}}',
      '{"method":"register_app","arguments":[{}],"callbacks":{"0":["__proto__","polluted"]}}',
      '{"method":"register_app","arguments":[{}],"links":[{"from":["0"],"to":"x"}]}',
      '{"method":"register_app","arguments":[],"callbacks":{"x":["0"]}}',
    ];
    for (const line of lines) {
      const received = await raw(line);
      // The server spoke first (its method list) and then closed the session.
      expect(received, line).toContain('"method":"methods"');
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(([] as unknown as Record<string, unknown>).polluted).toBeUndefined();
    const client = await connect(trusted.port);
    expect((await call(client, 'register_app', { name: 'hello' })).err).toBeNull();
    client.close();
  });

  it('a caller that disconnects mid-deploy does not stop the deploy or the server', async () => {
    writeBundle(path.join(tmp, 'slow'), 'slow two', { delayMs: 1500 });
    expect((await rsyncUpload(path.join(tmp, 'slow'), 'slow', ALICE)).code).toBe(0);
    const client = await connect(tunnelPort);
    client.remote.restart_app!('slow', () => {});
    await new Promise((r) => setTimeout(r, 300));
    client.close();
    await waitFor(async () => (await get(server.info.httpPort, 'slow.localhost')).body === 'slow two from slow', 30_000, 'the new release');
    const other = await connect(tunnelPort);
    expect((await call(other, 'register_app', { name: 'slow' })).err).toBeNull();
    other.close();
  });

  it('restart_app before any upload says what to do', async () => {
    expect((await cli(['apps:create', 'empty'])).code).toBe(0);
    const client = await connect(trusted.port);
    const r = await call(client, 'restart_app', 'empty');
    client.close();
    expect(r.err?.message).toBe("nothing was uploaded for app 'empty': rsync the bundle first (rsync -az --delete ./bundle/ git@HOST:empty/)");
  });
});

describe('--dnode-allow', () => {
  it('takes addresses and CIDR networks, matches IPv4-mapped peers, and names a bad entry in one line', async () => {
    const { PeerAllowList } = await import('../src/legacy/peer-allow-list.js');
    const list = new PeerAllowList(['10.0.0.0/8', '192.168.1.5', 'fd00::/8']);
    expect(list.allows('10.2.3.4')).toBe(true);
    expect(list.allows('::ffff:10.2.3.4')).toBe(true);
    expect(list.allows('192.168.1.5')).toBe(true);
    expect(list.allows('192.168.1.6')).toBe(false);
    expect(list.allows('fd12::1')).toBe(true);
    expect(list.allows('127.0.0.1')).toBe(false);
    expect(list.allows(undefined)).toBe(false);
    for (const bad of ['10.0.0.0/33', 'example.com', '10.0.0.0/8/1', '1.2.3.4/x']) {
      expect(() => new PeerAllowList([bad])).toThrow(new RegExp(`^--dnode-allow: '${bad.replace(/[./]/g, '\\$&')}' is not an address or network`));
    }
  });
});
