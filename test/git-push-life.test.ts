// The life of a deploying push (src/git/push-life.ts): each edge of the state
// machine on its own, then the edges a real push takes when it dies between
// its hooks or its hook is killed.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PushLife, type ParkedRelease } from '../src/git/push-life.js';
import { get, serverSource, waitFor, type AppRepo } from './support/apps.js';
import { serverWithDeployedApp, WatchedGit } from './support/git-client.js';
import type { Platform } from './support/platform.js';

/** A push that holds the lock, with a release that records what was done to it. */
function lockedPush(abandonAfterMs = 60_000) {
  const calls: string[] = [];
  const ends: string[] = [];
  const life = new PushLife({ abandonAfterMs, onEnd: (s) => ends.push(s) });
  const release: ParkedRelease = {
    app: 'a',
    commit: 'c'.repeat(40),
    promote: async (write) => {
      write('switched');
      calls.push('promote');
    },
    discard: async (why) => void calls.push(`discard: ${why}`),
  };
  life.locked(() => calls.push('unlock'));
  return { life, release, calls, ends };
}

describe('PushLife edges', () => {
  it('waiting → preparing → parked → promoting → promoted: switched once, then the lock goes back', async () => {
    const { life, release, calls, ends } = lockedPush();
    expect(life.state).toBe('preparing');
    expect(await life.park(release, true)).toBe('parked');
    expect(life.parked).toBe(release);
    const lines: string[] = [];
    await life.promote((l) => lines.push(l));
    expect([life.state, calls, ends, lines]).toEqual(['promoted', ['promote', 'unlock'], ['promoted'], ['switched']]);
    expect(life.parked).toBeNull();
  });

  it('preparing → refused (stale branch, failed build): the lock goes back, nothing to discard', () => {
    const { life, calls, ends } = lockedPush();
    life.refuse();
    expect([life.state, calls, ends]).toEqual(['refused', ['unlock'], ['refused']]);
  });

  it('preparing → abandoned when the pusher is gone by the time the release is built', async () => {
    const { life, release, calls } = lockedPush();
    expect(await life.park(release, false)).toBe('abandoned');
    expect(calls).toEqual(['discard: the pusher went away before the switch', 'unlock']);
  });

  it('parked → abandoned when the push ends between the hooks; a late post-receive finds nothing parked', async () => {
    const { life, release, calls } = lockedPush();
    await life.park(release, true);
    await life.abandon('the push ended before the switch');
    expect([life.state, calls]).toEqual(['abandoned', ['discard: the push ended before the switch', 'unlock']]);
    expect(life.parked).toBeNull();
    await expect(life.promote(() => {})).rejects.toThrow('push cannot go from abandoned to promoting');
    expect(calls).toHaveLength(2);
  });

  it('parked → abandoned when no post-receive arrives in time', async () => {
    const { life, release, calls } = lockedPush(30);
    await life.park(release, true);
    await waitFor(async () => life.state === 'abandoned', 2000, 'the timer');
    expect(calls).toEqual(['discard: no post-receive arrived', 'unlock']);
  });

  it('the lock goes back only once the release has stopped, and an abandon while it stops does nothing more', async () => {
    const { life, release, calls } = lockedPush();
    let stopped!: () => void;
    release.discard = (why) => new Promise<void>((r) => (stopped = () => { calls.push(`discard: ${why}`); r(); }));
    await life.park(release, true);
    const first = life.abandon('the push ended before the switch');
    await life.abandon('no post-receive arrived');
    expect(calls).toEqual([]);
    stopped();
    await first;
    expect(calls).toEqual(['discard: the push ended before the switch', 'unlock']);
  });

  it('promoting → failed when the switch throws: the lock goes back and the error is passed on', async () => {
    const { life, release, calls, ends } = lockedPush();
    release.promote = async () => { throw new Error('proxy gone'); };
    await life.park(release, true);
    await expect(life.promote(() => {})).rejects.toThrow('proxy gone');
    expect([life.state, calls, ends]).toEqual(['failed', ['unlock'], ['failed']]);
  });

  it('abandon is ignored while the release is still being prepared; steps out of order throw', async () => {
    const { life, release, calls } = lockedPush();
    await life.abandon('the push ended before the switch');
    expect([life.state, calls]).toEqual(['preparing', []]);
    expect(() => life.locked(() => {})).toThrow('push cannot go from preparing to preparing');
    await expect(life.promote(() => {})).rejects.toThrow('push cannot go from preparing to promoting');
    await life.park(release, true);
    expect(() => life.refuse()).toThrow('push cannot go from parked to refused');
  });
});

describe('a real push that dies part-way', () => {
  let px: Platform;
  let token: string;
  let repo: AppRepo;
  const APP = 'edges';
  const state = () => ({ ...JSON.parse(fs.readFileSync(path.join(px.data, 'state.json'), 'utf8')).apps[APP] as { current: number }, releases: px.releases(APP) });
  const branch = () => fs.readFileSync(path.join(px.data, 'apps', APP, 'repo.git', 'refs', 'heads', 'main'), 'utf8').trim();

  beforeAll(async () => {
    ({ px, token, repo } = await serverWithDeployedApp(APP, 'v1'));
  });
  afterAll(async () => {
    await px.destroy();
    repo.remove();
  });

  async function nextPushDeploysPromptly(body: string): Promise<void> {
    await repo.commit({ 'server.js': serverSource(body) }, body);
    const started = Date.now();
    const push = await repo.push(px.gitUrl(APP, token));
    expect(push.code, push.stderr).toBe(0);
    expect(push.stderr).not.toContain('waiting for it to finish');
    expect(Date.now() - started).toBeLessThan(30_000);
    expect((await get(px.info.httpPort, `${APP}.localhost`)).body).toBe(body);
  }

  it('dies between the hooks (git cannot move the branch): the parked release is discarded and the lock given back', async () => {
    const before = branch();
    // A stale lock file: pre-receive builds and parks, then git fails to update the ref and runs no post-receive.
    const lockFile = path.join(px.data, 'apps', APP, 'repo.git', 'refs', 'heads', 'main.lock');
    fs.writeFileSync(lockFile, '');
    await repo.commit({ 'server.js': serverSource('parked, never switched') }, 'parked');
    const push = await repo.push(px.gitUrl(APP, token));
    fs.rmSync(lockFile);
    expect(push.code).not.toBe(0);
    expect(push.stderr).toMatch(/main\.lock/);
    await waitFor(async () => state().releases.at(-1)!.status === 'failed', 30_000, 'the parked release to be discarded');
    expect(state().releases.at(-1)!.description).toContain('the push ended before the switch');
    expect(branch()).toBe(before);
    expect((await get(px.info.httpPort, `${APP}.localhost`)).body).toBe('v1');
    await nextPushDeploysPromptly('after a push died between hooks');
  });

  it('its pre-receive hook is killed mid-build: the push is rejected, the release discarded once built', async () => {
    const before = branch();
    await repo.commit({ 'server.js': serverSource('hook killed', { delayListenMs: 2000 }) }, 'hook killed');
    const push = new WatchedGit(['push', px.gitUrl(APP, token), 'main'], repo.dir);
    await push.waitFor(/Starting web\.1/);
    const hook = preReceiveHookOf(px);
    expect(hook, 'the pre-receive hook of this server').not.toBeNull();
    process.kill(hook!, 'SIGKILL');
    const r = await push.done;
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/pre-receive hook declined/);
    await waitFor(async () => state().releases.at(-1)!.status === 'failed', 30_000, 'the release of the killed hook to be discarded');
    expect(state().releases.at(-1)!.description).toContain('the pusher went away before the switch');
    expect(branch()).toBe(before);
    await nextPushDeploysPromptly('after a killed hook');
  });
});

/** The pid of the pre-receive hook talking to this server's control socket, or null. */
function preReceiveHookOf(px: Platform): number | null {
  const socket = `PLATFORMX_CONTROL_SOCKET=${path.join(px.data, 'control.sock')}`;
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      const environ = fs.readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0');
      if (cmdline.includes('hooks/pre-receive') && environ.includes(socket)) return Number(entry);
    } catch {
      // gone, or not ours to read
    }
  }
  return null;
}
