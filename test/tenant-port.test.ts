// A co-tenant that binds the port handed to another app's new release before
// that release listens must not pass the release's health check: the listener
// that answers must be a socket of the process tree the platform started.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { foreignListeners, loopbackListeners } from '../src/maestro/port-listener.js';
import { AppRepo, get, nodeApp, waitFor } from './support/apps.js';
import { Platform } from './support/platform.js';

const isRoot = process.getuid?.() === 0;
const children: ChildProcess[] = [];
const repos: AppRepo[] = [];
let px: Platform | undefined;

/** Kills a test child and everything it started (each leads its own group). */
function killGroup(child: ChildProcess): void {
  try {
    process.kill(-child.pid!, 'SIGKILL');
  } catch {
    /* already gone */
  }
}

afterAll(async () => {
  for (const c of children) killGroup(c);
  await px?.destroy();
  for (const r of repos) r.remove();
});

/** Starts `command` and resolves with the port its listener prints once it is listening. */
async function listening(wrapper: string[], script: string): Promise<{ child: ChildProcess; port: number }> {
  const argv = [...wrapper, process.execPath, '-e', script];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
  children.push(child);
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once('data', (d) => resolve(Number(String(d).trim())));
    child.once('exit', (code) => reject(new Error(`listener exited (${code})`)));
  });
  return { child, port };
}
const LISTEN = (host: string) => `const s = require('net').createServer().listen(0, ${JSON.stringify(host)}, () => console.log(s.address().port));`;

describe('which process holds a loopback port', () => {
  it("a listener belongs to the process tree that opened it; to any other process it is foreign", async () => {
    // A grandchild listening on IPv4 loopback, below a shell; and a child on the
    // dual-stack wildcard (what listen(PORT) binds), reachable from 127.0.0.1 too.
    const { child: shell, port } = await listening(['/bin/sh', '-c', '"$0" "$@"; exit $?'], LISTEN('127.0.0.1'));
    const { child: v6, port: port6 } = await listening([], LISTEN('::'));
    expect(loopbackListeners(port)).toEqual([{ inode: expect.any(Number), uid: process.getuid!() }]);
    expect(loopbackListeners(port6)).toHaveLength(1);
    expect(foreignListeners(port, shell.pid!)).toEqual([]);
    expect(foreignListeners(port, v6.pid!)).toEqual(loopbackListeners(port));
    expect(foreignListeners(port6, v6.pid!)).toEqual([]);
    expect(foreignListeners(port6, shell.pid!)).toEqual(loopbackListeners(port6));
    // A listener of this process is no child's.
    const own = net.createServer();
    await new Promise<void>((r) => own.listen(0, '127.0.0.1', r));
    const ownPort = (own.address() as net.AddressInfo).port;
    expect(foreignListeners(ownPort, process.pid)).toEqual([]);
    expect(foreignListeners(ownPort, v6.pid!)).toHaveLength(1);
    own.close();
    // Nothing listening: nothing foreign.
    killGroup(shell);
    await waitFor(async () => loopbackListeners(port).length === 0, 5000, 'the listener to go');
    expect(foreignListeners(port, v6.pid!)).toEqual([]);
  });
});

// The new release writes its PORT where the test (root) can read it, then waits
// before listening and keeps retrying when the port is taken, as many servers do.
const SLOW_V2 = `const http = require('http');
require('fs').writeFileSync('port.txt', process.env.PORT);
const server = http.createServer((q, s) => s.end('v2'));
server.on('error', () => setTimeout(() => server.listen(process.env.PORT), 200));
setTimeout(() => server.listen(process.env.PORT), 3000);
`;

describe.runIf(isRoot)('a co-tenant on the port of a new release, as root', () => {
  it('fails the health check of the new release, and the old release keeps serving', async () => {
    px = await Platform.start();
    const token = await px.createApp('victim');
    const repo = await AppRepo.create(nodeApp('v1'));
    repos.push(repo);
    expect((await repo.push(px.gitUrl('victim', token))).code).toBe(0);
    await repo.commit({ 'server.js': SLOW_V2 }, 'v2');
    const push = repo.push(px.gitUrl('victim', token));
    const releases = path.join(px.data, 'apps', 'victim', 'releases');
    const portFile = await waitFor(async () => fs.readdirSync(releases).map((b) => path.join(releases, b, 'port.txt')).find((f) => fs.existsSync(f)), 30_000, 'the new release to get its port');
    const port = Number(await waitFor(async () => fs.readFileSync(portFile, 'utf8'), 5000, 'the port'));
    // Another user (nobody) binds it first.
    const cotenant = spawn('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', '--', process.execPath, '-e',
      `require('http').createServer((q, s) => s.end('stolen')).listen(${port}, '127.0.0.1', () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
    children.push(cotenant);
    await new Promise((r) => cotenant.stdout!.once('data', r));
    const r = await push;
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`PORT ${port} of web.1 is held by a process the platform did not start (uid 65534): nothing was switched; deploy again to get another port`);
    expect(r.stderr).toContain('The previous release keeps serving');
    expect((await get(px.info.httpPort, 'victim.localhost')).body).toBe('v1');
    const listed = JSON.parse(await px.ok(['releases', 'victim', '--json']));
    expect(listed.map((x: { version: string; status: string }) => [x.version, x.status])).toEqual([['v2', 'failed'], ['v1', 'succeeded']]);
    // Once the port is free again, the same code deploys.
    killGroup(cotenant);
    await repo.commit({}, 'again');
    expect((await repo.push(px.gitUrl('victim', token))).code).toBe(0);
    expect((await get(px.info.httpPort, 'victim.localhost')).body).toBe('v2');
  });
});
