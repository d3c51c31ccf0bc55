// Issue 11 item 3: every way a git client can abandon or garble a request over
// HTTP leaves the server up, and each malformed request gets a one-line error.
// After each hostile request a normal push still deploys.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { get, serverSource, waitFor, type AppRepo } from './support/apps.js';
import { pkt, postHead, rawHttp, serverWithDeployedApp, WatchedGit } from './support/git-client.js';
import { run, type Platform } from './support/platform.js';

const APP = 'target';
const ZERO = '0'.repeat(40);
let px: Platform;
let token: string;
let repo: AppRepo;
let pushes = 0;

beforeAll(async () => {
  ({ px, token, repo } = await serverWithDeployedApp(APP, 'v0'));
});
afterAll(async () => {
  await px.destroy();
  repo.remove();
});

/** The server process is up and a real push of a new commit deploys it. */
async function aNormalPushStillDeploys(): Promise<void> {
  expect(px.child!.exitCode, px.output).toBeNull();
  const body = `after hostile ${++pushes}`;
  await repo.commit({ 'server.js': serverSource(body) }, body);
  const push = await repo.push(px.gitUrl(APP, token));
  expect(push.code, push.stderr + px.output).toBe(0);
  expect(push.stderr).toContain('Released v');
  expect((await get(px.info.httpPort, `${APP}.localhost`)).body).toBe(body);
}

const post = (service: string, headers: Record<string, string | number>) => postHead(APP, service, token, headers);
const statusAndBody = (response: string): [number, string] => [Number(response.split(' ')[1]), response.split('\r\n\r\n').slice(1).join('').trim()];

describe('git over HTTP: abandoned requests', () => {
  it("an upload-pack POST of a lone flush, abandoned by curl after 2 s (the issue's reproduction)", async () => {
    const r = await run('curl', ['-m', '2', '-s', '-o', '/dev/null', '-w', '%{http_code}', '-u', `x:${token}`, '-X', 'POST',
      '-H', 'Content-Type: application/x-git-upload-pack-request', '--data-binary', '0000',
      `http://127.0.0.1:${px.info.gitHttpPort}/${APP}.git/git-upload-pack`]);
    // A flush asks for nothing: git answers at once with nothing, instead of hanging until curl gives up.
    expect([r.code, r.stdout]).toEqual([0, '200']);
    await new Promise((res) => setTimeout(res, 2500));
    await aNormalPushStillDeploys();
  });

  it('a client that hangs up mid-body', async () => {
    const head = post('git-upload-pack', { 'Content-Type': 'application/x-git-upload-pack-request', 'Content-Length': 100_000 });
    // The pkt-line is cut short, so git is still waiting for the rest when the client goes.
    expect(await rawHttp(px.info.gitHttpPort, head + pkt(`want ${'1'.repeat(40)}\n`).slice(0, 20), 300)).toBe('');
    await aNormalPushStillDeploys();
  });

  it('a receive-pack for ref HEAD, then a disconnect', async () => {
    const head = post('git-receive-pack', { 'Content-Type': 'application/x-git-receive-pack-request', 'Transfer-Encoding': 'chunked' });
    const commands = pkt(`${ZERO} ${'1'.repeat(40)} HEAD\0 report-status\n`) + '0000';
    await rawHttp(px.info.gitHttpPort, head + `${commands.length.toString(16)}\r\n${commands}\r\n`, 300);
    await aNormalPushStillDeploys();
  });

  it('a real git push killed while its release starts: rejected, the branch stays, the next push does not wait', async () => {
    const before = (await repo.git(['rev-parse', 'HEAD'])).stdout.trim();
    await repo.commit({ 'server.js': serverSource('never switched on', { delayListenMs: 3000 }) }, 'slow');
    const push = new WatchedGit(['push', px.gitUrl(APP, token), 'main'], repo.dir);
    await push.waitFor(/Starting web\.1/);
    await push.kill();
    const state = () => ({ releases: px.releases(APP) });
    await waitFor(async () => state().releases.at(-1)!.status === 'failed', 30_000, 'the release of the killed push to be discarded');
    expect(state().releases.at(-1)!.description).toContain('the pusher went away before the switch');
    // git did not move the branch to code that never served.
    const branch = fs.readFileSync(path.join(px.data, 'apps', APP, 'repo.git', 'refs', 'heads', 'main'), 'utf8').trim();
    expect(branch).toBe(before);
    const started = Date.now();
    await aNormalPushStillDeploys();
    // The killed push's deploy lock was given back with its release, not when the ten-minute timer fires.
    expect(Date.now() - started).toBeLessThan(30_000);
  });
});

describe('git over HTTP: garbled requests get a one-line error and a closed connection', () => {
  const cases: [string, () => string | Buffer, number, RegExp][] = [
    ['garbage instead of pkt-lines (upload-pack)', () => {
      const body = 'this is not git';
      return post('git-upload-pack', { 'Content-Type': 'application/x-git-upload-pack-request', 'Content-Length': body.length }) + body;
    }, 400, /^git-upload-pack refused the request: protocol error: bad line length character: this$/],
    ['garbage instead of pkt-lines (receive-pack)', () => {
      const body = 'zzzz-not-a-push';
      return post('git-receive-pack', { 'Content-Type': 'application/x-git-receive-pack-request', 'Content-Length': body.length }) + body;
    }, 400, /^git-receive-pack refused the request: protocol error: bad line length character: zzzz$/],
    ['a wrong content type', () => post('git-upload-pack', { 'Content-Type': 'text/plain', 'Content-Length': 4 }) + '0000',
      415, /^unsupported content type 'text\/plain': git-upload-pack takes application\/x-git-upload-pack-request$/],
    ['an unknown content encoding', () => post('git-upload-pack', { 'Content-Type': 'application/x-git-upload-pack-request', 'Content-Encoding': 'br', 'Content-Length': 4 }) + '0000',
      415, /^unsupported content encoding 'br'/],
    ['a body that claims gzip but is not', () => post('git-upload-pack', { 'Content-Type': 'application/x-git-upload-pack-request', 'Content-Encoding': 'gzip', 'Content-Length': 8 }) + 'notgzip!',
      400, /^the request body is not valid gzip/],
    ['a declared body over the limit', () => post('git-upload-pack', { 'Content-Type': 'application/x-git-upload-pack-request', 'Content-Length': 50 * 1024 * 1024 }),
      413, /^request body too large: git-upload-pack takes at most 10 MB$/],
    ['a gzip body that inflates past the limit', () => {
      // A protocol v2 ls-refs request git keeps reading: 12 MB of ref prefixes, 50 kB on the wire.
      const body = zlib.gzipSync(pkt('command=ls-refs\n') + '0001' + pkt('ref-prefix refs/heads/x\n').repeat(12 * 1024 * 1024 / 28));
      return Buffer.concat([Buffer.from(post('git-upload-pack', { 'Content-Type': 'application/x-git-upload-pack-request', 'Git-Protocol': 'version=2', 'Content-Encoding': 'gzip', 'Content-Length': body.length })), body]);
    }, 413, /^request body too large: git-upload-pack takes at most 10 MB$/],
    ['a service that is not git', () => post('git-shell', { 'Content-Length': 0 }), 404, /^not found: use http:\/\/HOST:PORT\/APP\.git$/],
    ['a dumb-protocol ref listing', () => `GET /${APP}.git/info/refs HTTP/1.1\r\nHost: x\r\nAuthorization: Basic ${Buffer.from(`x:${token}`).toString('base64')}\r\n\r\n`,
      403, /^only smart HTTP is served/],
    ['a GET of a POST-only service', () => `GET /${APP}.git/git-upload-pack HTTP/1.1\r\nHost: x\r\nAuthorization: Basic ${Buffer.from(`x:${token}`).toString('base64')}\r\n\r\n`,
      405, /^git-upload-pack takes POST$/],
  ];
  for (const [what, request, status, message] of cases) {
    it(what, async () => {
      // No hangUpAfterMs: the server itself must answer and close.
      const [gotStatus, body] = statusAndBody(await rawHttp(px.info.gitHttpPort, request()));
      expect(gotStatus, body).toBe(status);
      expect(body).toMatch(message);
      await aNormalPushStillDeploys();
    });
  }
});
