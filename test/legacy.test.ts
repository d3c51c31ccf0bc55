// The old SDK's two steps end to end against the real `platformx server`
// process, as a user with a deploy key does them: the real rsync client over the
// real OpenSSH client into the server's SSH port, then register_app +
// restart_app with the real dnode client through a real `ssh -N -L` tunnel to
// the server's DNode port. Apps and keys are made with the real CLI. One server
// serves every case; each case leaves the apps it used serving.
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, connect, type Answer } from './support/dnode-client.js';
import { get, waitFor } from './support/apps.js';
import { Platform, run } from './support/platform.js';
import { sshClientArgs, sshClientEnv, sshTunnel } from './support/ssh-tunnel.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pxl-flow-'));
const key = (name: string) => path.join(tmp, 'keys', name);
const uploadDir = (app: string) => path.join(px.data, 'apps', app, 'upload');

let px: Platform;
/** alice's tunnel to the DNode port: the local end of `ssh -N -L`. */
let aliceTunnel: number;
const tunnels: ChildProcess[] = [];

const sshArgs = (keyName: string) => sshClientArgs(key(keyName), px.info.sshPort!);
const sshEnv = () => sshClientEnv(tmp);

/** A legacy bundle: apprunner.js at its root, started as `node apprunner.js --name APP --port PORT`. */
function bundle(name: string, body: string, opts: { listenAfterMs?: number; files?: Record<string, string> } = {}): string {
  return writeBundle(name, `const http = require('http');
const fs = require('fs');
const arg = (n) => process.argv[process.argv.indexOf(n) + 1];
const server = http.createServer((req, res) => {
  if (req.url === '/extra') return res.end(fs.existsSync(__dirname + '/extra.txt') ? 'present' : 'absent');
  res.end(${JSON.stringify(body)});
});
setTimeout(() => server.listen(Number(arg('--port'))), ${opts.listenAfterMs ?? 0});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
`, opts.files);
}

function writeBundle(name: string, apprunner: string, files: Record<string, string> = {}): string {
  const dir = path.join(tmp, 'bundles', name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'apprunner.js'), apprunner);
  for (const [f, content] of Object.entries(files)) fs.writeFileSync(path.join(dir, f), content);
  return dir;
}

/** The SDK's upload: rsync -az --delete -e 'ssh -p PORT -i KEY' ./bundle/ git@HOST:DEST */
function rsync(keyName: string, source: string, dest: string, extra: string[] = []) {
  return run('rsync', ['-az', '--delete', ...extra, '-e', `ssh ${sshArgs(keyName).join(' ')}`, `${source}/`, `git@127.0.0.1:${dest}`], { env: sshEnv() });
}

const tunnel = (keyName: string, target: number) => sshTunnel(sshArgs(keyName), sshEnv(), target, tunnels);

/** One call on a fresh session through alice's tunnel. */
async function callAsAlice(method: string, ...args: unknown[]): Promise<Answer> {
  const client = await connect(aliceTunnel);
  try {
    return await call(client, method, ...args);
  } finally {
    client.close();
  }
}

interface AppInfo { domains: string[]; release: string | null }
const appInfo = async (app: string) => JSON.parse(await px.ok(['apps:info', app, '--json'])) as AppInfo;
interface Release { version: string; current: boolean; source: string; by: string | null; status: string }
const releases = async (app: string) => JSON.parse(await px.ok(['releases', app, '--json'])) as Release[];
const body = async (host: string, urlPath = '/') => (await get(px.info.httpPort, host, urlPath)).body;

beforeAll(async () => {
  px = await Platform.start(['--ssh-port', '0', '--dnode-port', '0', '--drain-timeout', '1', '--boot-timeout', '20']);
  expect(px.info.sshPort).toBeGreaterThan(0);
  expect(px.info.dnodePort).toBeGreaterThan(0);
  for (const app of ['hello', 'slow', 'thrower']) await px.ok(['apps:create', app]);
  await px.ok(['apps:create', 'other', '--domain', 'other.example.com']);
  fs.mkdirSync(path.join(tmp, 'keys'));
  for (const [name, apps] of [['alice', ['hello', 'slow', 'thrower']], ['bob', ['other']]] as const) {
    expect((await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', key(name)])).code).toBe(0);
    await px.ok(['keys:add', name, ...apps.flatMap((a) => ['--app', a]), '--file', `${key(name)}.pub`]);
  }
  aliceTunnel = await tunnel('alice', px.info.dnodePort!);
}, 60_000);

afterAll(async () => {
  for (const t of tunnels) t.kill();
  await px?.destroy();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('the old SDK deploys with a new key, port and user', () => {
  it('rsync over SSH, then register_app and restart_app through the tunnel; the bundle serves at its hostname', async () => {
    const up = await rsync('alice', bundle('hello', 'hello from the sdk', { files: { 'extra.txt': 'x' } }), 'hello/');
    expect(up.code, up.stderr).toBe(0);
    const client = await connect(aliceTunnel);
    const registered = await call(client, 'register_app', { name: 'hello', hostname: 'hello.example.com' });
    expect(registered).toEqual({ err: null, value: { hello: 'hello.example.com', slow: 'slow.localhost', thrower: 'thrower.localhost' } });
    const restarted = await call(client, 'restart_app', 'hello');
    client.close();
    expect(restarted).toEqual({ err: null, value: { hello: 'hello.example.com', slow: 'slow.localhost', thrower: 'thrower.localhost' } });
    expect(await body('hello.example.com')).toBe('hello from the sdk');
    expect(await body('hello.example.com', '/extra')).toBe('present');
    // The release list shows it as an rsync deploy by the key's name.
    const [latest] = await releases('hello');
    expect(latest).toMatchObject({ version: 'v1', current: true, source: 'rsync', by: 'alice', status: 'succeeded' });
  });

  it('an incremental re-upload with --delete to the old absolute path, then restart_app(name, hostname, cb), serves the new content', async () => {
    const up = await rsync('alice', bundle('hello', 'hello, second upload'), '/srv/http/platform.x/applications/hello/');
    expect(up.code, up.stderr).toBe(0);
    const r = await callAsAlice('restart_app', 'hello', 'hello.example.com');
    expect(r.err).toBeNull();
    expect(await body('hello.example.com')).toBe('hello, second upload');
    expect(await body('hello.example.com', '/extra')).toBe('absent');
    expect((await releases('hello'))[0]).toMatchObject({ version: 'v2', current: true, source: 'rsync', by: 'alice' });
  });

  it('a restart whose bundle fails its health check answers with a message; the old release keeps serving', async () => {
    const broken = writeBundle('broken', `const http = require('http');
const arg = (n) => process.argv[process.argv.indexOf(n) + 1];
http.createServer(() => { throw new Error('broken bundle'); }).listen(Number(arg('--port')));
`);
    expect((await rsync('alice', broken, 'hello/')).code).toBe(0);
    const r = await callAsAlice('restart_app', 'hello');
    expect(r.value).toBeUndefined();
    expect(r.err?.message).toMatch(/^deploy of 'hello' failed: .*health check.*; the previous release keeps serving \(details: platformx logs hello\)$/);
    expect(await body('hello.example.com')).toBe('hello, second upload');
    const list = await releases('hello');
    expect(list[0]).toMatchObject({ version: 'v3', current: false, status: 'failed', source: 'rsync', by: 'alice' });
    expect(list.find((rel) => rel.current)?.version).toBe('v2');
  });

  it('an app that takes 1.5 s to start listening deploys fine', async () => {
    expect((await rsync('alice', bundle('slow', 'slow but fine', { listenAfterMs: 1500 }), 'slow/')).code).toBe(0);
    const started = Date.now();
    const r = await callAsAlice('restart_app', 'slow');
    expect(r.err).toBeNull();
    expect(Date.now() - started).toBeGreaterThanOrEqual(1500);
    expect(await body('slow.localhost')).toBe('slow but fine');
  });

  it('an app that throws on every request gets 502s and its stack trace in its logs; the server and other apps keep serving', async () => {
    const thrower = writeBundle('thrower', `const http = require('http');
const arg = (n) => process.argv[process.argv.indexOf(n) + 1];
http.createServer((req, res) => {
  if (req.url === '/healthz') return res.end('ok');
  throw new Error('boom on every request');
}).listen(Number(arg('--port')));
`, { 'app.json': JSON.stringify({ healthchecks: { web: [{ type: 'startup', path: '/healthz' }] } }) });
    expect((await rsync('alice', thrower, 'thrower/')).code).toBe(0);
    expect((await callAsAlice('restart_app', 'thrower')).err).toBeNull();
    // The request that kills the process gets 502; until Maestro has restarted it
    // (after a backoff) the app has no process and gets 503; then 502 again.
    const first = await get(px.info.httpPort, 'thrower.localhost');
    expect(first.status).toBe(502);
    expect(first.body).toMatch(/^Bad gateway/);
    const statuses = new Set<number>();
    await waitFor(async () => {
      statuses.add((await get(px.info.httpPort, 'thrower.localhost')).status);
      expect(await body('hello.example.com')).toBe('hello, second upload');
      expect(await body('slow.localhost')).toBe('slow but fine');
      return statuses.has(502) && statuses.has(503);
    }, 15_000, 'the thrower restarted and failing again');
    expect([...statuses].sort()).toEqual([502, 503]);
    expect(await body('anything', '/_ping_')).toBe('pong');
    expect(px.child?.exitCode).toBeNull();
    const logs = await waitFor(async () => {
      const out = await px.ok(['logs', 'thrower', '-n', '300']);
      return out.includes('Error: boom on every request') && /at Server\.<anonymous> \(.*apprunner\.js:5/.test(out) && out;
    }, 10_000, "the thrower's stack trace in platformx logs");
    expect(logs).toMatch(/app\[web\.1\]: Error: boom on every request/);
  });
});

describe('what a key cannot do', () => {
  it("a key for hello cannot rsync into other or register or restart it: the answer is the same as for an app that does not exist", async () => {
    const up = await rsync('alice', bundle('evil', 'taken over'), 'other/');
    expect(up.code).not.toBe(0);
    expect(up.stderr.split('\n')[0]).toBe("rsync refused: app 'other' does not exist");
    const missing = await rsync('alice', bundle('evil', 'taken over'), 'nope/');
    expect(missing.stderr.split('\n')[0]).toBe("rsync refused: app 'nope' does not exist");
    expect(fs.existsSync(uploadDir('other'))).toBe(false);

    const client = await connect(aliceTunnel);
    for (const method of ['register_app', 'restart_app'] as const) {
      const args = (name: string) => (method === 'register_app' ? [{ name, hostname: 'evil.example.com' }] : [name]);
      const theirs = await call(client, method, ...args('other'));
      const none = await call(client, method, ...args('nope'));
      expect(theirs.value).toBeUndefined();
      expect(theirs.err?.message).toMatch(/^app 'other' does not exist/);
      expect(theirs.err?.message).toBe(none.err?.message?.replaceAll('nope', 'other'));
    }
    client.close();
    expect(await appInfo('other')).toMatchObject({ domains: ['other.example.com'], release: null });
    expect((await get(px.info.httpPort, 'evil.example.com')).status).toBe(404);
  });

  it("register_app naming another app's hostname is refused and changes nothing", async () => {
    const before = { hello: await appInfo('hello'), other: await appInfo('other'), releases: (await releases('hello')).length };
    const message = "hostname 'other.example.com' already belongs to another app: register a hostname of your own";
    const steal = await callAsAlice('register_app', { name: 'hello', hostname: 'other.example.com' });
    expect(steal).toEqual({ err: { message }, value: undefined });
    // Also the default hostname of another app, and through restart_app's hostname parameter.
    expect((await callAsAlice('register_app', { name: 'hello', hostname: 'other.localhost' })).err?.message).toMatch(/^hostname 'other\.localhost' already belongs to another app/);
    expect((await callAsAlice('restart_app', 'hello', 'other.example.com')).err?.message).toBe(message);
    expect(await appInfo('hello')).toEqual(before.hello);
    expect(await appInfo('other')).toEqual(before.other);
    expect((await releases('hello')).length).toBe(before.releases);
    expect((await get(px.info.httpPort, 'other.example.com')).status).toBe(503);
  });

  it('downloads and options that reach outside the folder are refused with a one-line reason', async () => {
    const download = await run('rsync', ['-az', '-e', `ssh ${sshArgs('alice').join(' ')}`, 'git@127.0.0.1:hello/', `${path.join(tmp, 'download')}/`], { env: sshEnv() });
    expect(download.code).not.toBe(0);
    expect(download.stderr.split('\n')[0]).toMatch(/^rsync refused: downloads are not offered/);
    expect(fs.existsSync(path.join(tmp, 'download', 'apprunner.js'))).toBe(false);

    const logFile = path.join(tmp, 'server-side.log');
    const r = await rsync('alice', bundle('hello', 'x'), 'hello/', [`-M--log-file=${logFile}`]);
    expect(r.code).not.toBe(0);
    expect(r.stderr.split('\n')[0]).toMatch(/^rsync refused: option '--log-file=.*' is not allowed here/);
    expect(fs.existsSync(logFile)).toBe(false);
    const escape = await rsync('alice', bundle('hello', 'x'), 'hello/../other/');
    expect(escape.code).not.toBe(0);
    expect(escape.stderr.split('\n')[0]).toMatch(/^rsync refused: destination 'hello\/\.\.\/other\/' leaves the upload folder/);
    expect(fs.existsSync(uploadDir('other'))).toBe(false);
  });

  it('only the DNode port may be forwarded', async () => {
    const local = await tunnel('alice', px.info.httpPort);
    const s = net.connect(local, '127.0.0.1');
    let got = '';
    s.on('data', (d) => (got += d));
    s.on('error', () => {});
    s.write('GET / HTTP/1.1\r\nHost: hello.example.com\r\n\r\n');
    await new Promise((r) => s.once('close', r));
    expect(got).toBe('');
    // The same tunnel to the DNode port works (the refusal is about the target, not the key).
    expect((await callAsAlice('register_app', { name: 'hello', hostname: 'hello.example.com' })).err).toBeNull();
  });

  it('a direct DNode connection (no key) is answered with a message telling to tunnel, and changes nothing', async () => {
    const client = await connect(px.info.dnodePort!);
    const r = await call(client, 'register_app', { name: 'hello', hostname: 'direct.example.com' });
    client.close();
    expect(r.err?.message).toMatch(/^direct DNode connections are not accepted from 127\.0\.0\.1: tunnel over SSH with your deploy key \(ssh -N -L \d+:127\.0\.0\.1:\d+ -p \d+ git@HOST\)/);
    expect(r.err?.message).toContain(`-L ${px.info.dnodePort}:127.0.0.1:${px.info.dnodePort} -p ${px.info.sshPort} `);
    expect((await appInfo('hello')).domains).toEqual(['hello.example.com']);
  });
});
