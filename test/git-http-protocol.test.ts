// Issue 19: git over HTTP passes the client's Git-Protocol header to git (as
// GIT_PROTOCOL, checked first), so fetches speak protocol v2 as they do over SSH.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, test } from 'vitest';
import { checkedGitProtocol, protocolVersion } from '../src/git/git-protocol.js';
import type { AppRepo } from './support/apps.js';
import { GIT_CLIENT_ENV, rawHttp, serverWithDeployedApp } from './support/git-client.js';
import { run, type Platform } from './support/platform.js';

let px: Platform;
let token: string;
let repo: AppRepo;
let scratch: string;

beforeAll(async () => {
  ({ px, token, repo } = await serverWithDeployedApp('proto', 'v2 please'));
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'pxp-'));
});
afterAll(async () => {
  await px.destroy();
  repo.remove();
  fs.rmSync(scratch, { recursive: true, force: true });
});

const traced = (args: string[], cwd: string) => run('git', args, { cwd, env: { ...GIT_CLIENT_ENV, GIT_TRACE_PACKET: '1' } });

describe('git over HTTP speaks the protocol version the client asks for', () => {
  it('ls-remote with protocol.version=2 gets a v2 answer', async () => {
    const r = await traced(['-c', 'protocol.version=2', 'ls-remote', px.gitUrl('proto', token)], scratch);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/ls-remote< version 2/);
    expect(r.stderr).toMatch(/ls-remote> command=ls-refs/);
    expect(r.stdout).toContain('refs/heads/main');
  });

  it('clone and fetch with protocol.version=2 run the v2 fetch command and get the commit', async () => {
    const head = (await repo.git(['rev-parse', 'HEAD'])).stdout.trim();
    const clone = path.join(scratch, 'clone');
    const c = await traced(['-c', 'protocol.version=2', 'clone', px.gitUrl('proto', token), clone], scratch);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stderr).toMatch(/clone> command=fetch/);
    expect((await run('git', ['rev-parse', 'HEAD'], { cwd: clone })).stdout.trim()).toBe(head);
    const f = await traced(['-c', 'protocol.version=2', 'fetch', px.gitUrl('proto', token), 'main'], clone);
    expect(f.code, f.stderr).toBe(0);
    expect(f.stderr).toMatch(/fetch< version 2/);
  });

  it('a v0 client still gets the v0 advertisement', async () => {
    const r = await traced(['-c', 'protocol.version=0', 'ls-remote', px.gitUrl('proto', token)], scratch);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/version 2/);
    expect(r.stdout).toContain('refs/heads/main');
  });

  it("a Git-Protocol header that is not git's shape never reaches git: the answer is v0", async () => {
    const get = (value: string) => rawHttp(px.info.gitHttpPort, [
      'GET /proto.git/info/refs?service=git-upload-pack HTTP/1.1', 'Host: x', 'Connection: close',
      `Authorization: Basic ${Buffer.from(`x:${token}`).toString('base64')}`, `Git-Protocol: ${value}`, '', ''].join('\r\n'));
    const body = (response: string) => response.split('\r\n\r\n')[1]!.replace(/^[0-9a-f]+\r\n/, '');
    expect(body(await get('version=2'))).toMatch(/^000eversion 2\n/);
    for (const hostile of ['version=2 --upload-pack=touch', 'version=2;id', 'version=2:$(id)', 'version=2,version=1']) {
      const answer = body(await get(hostile));
      expect(answer, hostile).toMatch(/^001e# service=git-upload-pack\n0000/);
      expect(answer, hostile).not.toContain('version 2');
    }
  });
});

describe('checkedGitProtocol / protocolVersion', () => {
  test.each([
    ['version=2', 'version=2'],
    ['version=2:object-format=sha256', 'version=2:object-format=sha256'],
    ['version=1', 'version=1'],
    ['flag', 'flag'],
    ['', undefined],
    ['version=2:', undefined],
    [':version=2', undefined],
    ['version=2::x', undefined],
    ['version==2', undefined],
    ['version=2 x', undefined],
    ['version=2\nX: y', undefined],
    ['v=' + 'x'.repeat(100), undefined],
  ])('%j → %j', (value, expected) => {
    expect(checkedGitProtocol(value)).toBe(expected);
  });

  test.each([
    ['version=2', 2],
    ['version=1', 1],
    ['version=1:version=2', 2],
    // git ignores versions it does not know, and so do we.
    ['version=2:version=3', 2],
    ['object-format=sha256', 0],
    [undefined, 0],
  ] as const)('%j speaks v%d', (value, expected) => {
    expect(protocolVersion(value)).toBe(expected);
  });
});
