// The server kills itself (SIGKILL) at a named step (PLATFORMX_CRASH_AT), is started
// again on the same data folder, and what serves, what state says and what git says agree.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AppRepo, get, nodeApp, serverSource } from './support/apps.js';
import { dataScope } from '../src/apprunner/data-scope.js';
import { Platform, run } from './support/platform.js';

let px: Platform | undefined;
let repo: AppRepo | undefined;
afterEach(async () => {
  await px?.destroy();
  repo?.remove();
  px = undefined;
  repo = undefined;
});

type State = { apps: Record<string, { current: number | null; config: Record<string, string> }> };
const state = (p: Platform) => JSON.parse(fs.readFileSync(path.join(p.data, 'state.json'), 'utf8')) as State;

/** An app with one live release (v1) that shows its env at /env. */
async function appWithRelease(extraArgs: string[] = []): Promise<{ p: Platform; token: string; r: AppRepo }> {
  const p = await Platform.start(extraArgs);
  const token = await p.createApp('crashy');
  const r = await AppRepo.create(nodeApp('v1 body'));
  expect((await r.push(p.gitUrl('crashy', token))).code).toBe(0);
  px = p;
  repo = r;
  return { p, token, r };
}

/** Restarts the server with PLATFORMX_CRASH_AT set, so the next command crashes it there. */
async function armCrash(p: Platform, point: string): Promise<void> {
  await p.stop();
  p.env = { PLATFORMX_CRASH_AT: point };
  await p.boot();
}

/** Waits for the crash, then boots again without it. */
async function recover(p: Platform): Promise<void> {
  await p.exited();
  p.env = {};
  await p.boot();
}

const greeting = async (p: Platform) => (JSON.parse((await get(p.info.httpPort, 'crashy.localhost', '/env')).body) as Record<string, string>).GREETING;
const head = async (p: Platform) => (await run('git', ['--git-dir', path.join(p.data, 'apps', 'crashy', 'repo.git'), 'rev-parse', 'refs/heads/main'])).stdout.trim();

describe('crash points', () => {
  it('config:set killed right after the switch, before state: the old config serves and is what config says', async () => {
    const { p } = await appWithRelease();
    await armCrash(p, 'release-switched');
    const set = await p.cli(['config:set', 'crashy', 'GREETING=x']);
    expect(set.code).not.toBe(0);
    expect(set.stderr).toContain("see 'platformx releases APP' for what went live");
    await recover(p);
    expect(await greeting(p)).toBeUndefined();
    expect(state(p).apps.crashy.config.GREETING).toBeUndefined();
    expect(p.releases('crashy').at(-1)).toMatchObject({ status: 'failed' });
  });

  it('config:set killed right after the release was stored: the new config serves and is stored with it', async () => {
    const { p } = await appWithRelease();
    await armCrash(p, 'release-succeeded');
    expect((await p.cli(['config:set', 'crashy', 'GREETING=x'])).code).not.toBe(0);
    await recover(p);
    expect(await greeting(p)).toBe('x');
    expect(JSON.parse(await p.ok(['config', 'crashy', '--json']))).toEqual({ GREETING: 'x' });
    // The next change builds on the stored config: GREETING stays.
    await p.ok(['config:set', 'crashy', 'OTHER=1']);
    expect(await greeting(p)).toBe('x');
  });

  it('rollback killed after its release was stored: the rolled-back config serves and is stored', async () => {
    const { p } = await appWithRelease();
    await p.ok(['config:set', 'crashy', 'GREETING=one']);
    await p.ok(['config:set', 'crashy', 'GREETING=two']);
    await armCrash(p, 'release-succeeded');
    expect((await p.cli(['rollback', 'crashy', 'v2'])).code).not.toBe(0);
    await recover(p);
    expect(await greeting(p)).toBe('one');
    expect(state(p).apps.crashy.config.GREETING).toBe('one');
  });

  it('a build pruned at the moment of the kill is gone whole and never offered for rollback', async () => {
    const { p, token, r } = await appWithRelease(['--keep', '1']);
    await r.commit({ 'server.js': serverSource('v2 body') }, 'v2');
    await armCrash(p, 'build-moved-aside');
    await r.push(p.gitUrl('crashy', token));
    const releases = path.join(p.data, 'apps', 'crashy', 'releases');
    await p.exited();
    // The kill came after the rename and before the delete: v1's files sit aside, not under v1.
    expect(fs.readdirSync(releases).some((n) => n.startsWith('.removing-v1-'))).toBe(true);
    expect(fs.existsSync(path.join(releases, 'v1'))).toBe(false);
    p.env = {};
    await p.boot();
    expect(fs.readdirSync(releases)).toEqual(['v2']);
    expect((await get(p.info.httpPort, 'crashy.localhost')).body).toBe('v2 body');
    const back = await p.cli(['rollback', 'crashy', 'v1']);
    expect(back.code).toBe(1);
    expect(back.stderr).toContain('the build of v1 was removed');
  });

  it('a push killed after git moved main but before the switch: main is put back, and pushing again deploys it', async () => {
    const { p, token, r } = await appWithRelease();
    const v1 = await head(p);
    await r.commit({ 'server.js': serverSource('v2 body') }, 'v2');
    await armCrash(p, 'post-receive');
    expect((await r.push(p.gitUrl('crashy', token))).code).not.toBe(0);
    await recover(p);
    expect(await head(p)).toBe(v1);
    expect((await get(p.info.httpPort, 'crashy.localhost')).body).toBe('v1 body');
    expect(p.releases('crashy').at(-1)).toMatchObject({ version: 2, status: 'failed' });
    const again = await r.push(p.gitUrl('crashy', token));
    expect(again.code).toBe(0);
    expect(again.stderr).toContain('Note: v2 (git push');
    expect(again.stderr).toContain('main was put back to');
    expect((await get(p.info.httpPort, 'crashy.localhost')).body).toBe('v2 body');
  });

  it('a push killed between the switch and the record: the previous release serves and main matches it', async () => {
    const { p, token, r } = await appWithRelease();
    const v1 = await head(p);
    await r.commit({ 'server.js': serverSource('v2 body') }, 'v2');
    await armCrash(p, 'release-switched');
    expect((await r.push(p.gitUrl('crashy', token))).code).not.toBe(0);
    await recover(p);
    expect(await head(p)).toBe(v1);
    expect((await get(p.info.httpPort, 'crashy.localhost')).body).toBe('v1 body');
    expect(state(p).apps.crashy.current).toBe(1);
  });

  it('the data plane killed right after spawning an app process: nothing of it survives the next start', async () => {
    const { p, token, r } = await appWithRelease();
    const uid = JSON.parse(fs.readFileSync(path.join(p.data, 'state.json'), 'utf8')).apps.crashy.uid as number | null;
    await r.commit({ 'server.js': serverSource('v2 body') }, 'v2');
    // A data plane started with the crash point set dies at its next spawn (the new release's web.1).
    await p.stop();
    p.env = { PLATFORMX_CRASH_AT: 'process-spawned' };
    await p.boot().catch(() => {});
    const push = await r.push(p.gitUrl('crashy', token)).catch(() => ({ code: 1 }));
    expect(push.code).not.toBe(0);
    await p.exited();
    p.env = {};
    await p.boot();
    expect((await get(p.info.httpPort, 'crashy.localhost')).body).toBe('v1 body');
    const ps = JSON.parse(await p.ok(['ps', 'crashy', '--json'])) as Array<{ pid: number; release: string }>;
    expect(ps.map((x) => x.release)).toEqual(['v1']);
    // ps matches /proc: the only processes in this data folder's cgroups are the ones ps lists (and their sandbox).
    const scope = `platformx-${dataScope(p.data)}`;
    const pids = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number);
    const inScope = pids.filter((pid) => {
      try {
        return fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').includes(scope) && fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]![0] !== 'Z';
      } catch {
        return false;
      }
    });
    const parent = (pid: number) => {
      try {
        const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
        return Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
      } catch {
        return 0;
      }
    };
    const under = (pid: number, root: number): boolean => pid === root || (pid > 1 && under(parent(pid), root));
    expect(inScope.filter((pid) => !under(pid, ps[0]!.pid))).toEqual([]);
    void uid;
  });

  it('a server killed during its own start, after the first app came up: the next start serves every app once', async () => {
    const { p, token } = await appWithRelease();
    const second = await AppRepo.create(nodeApp('second body'));
    const t2 = await p.createApp('second');
    expect((await second.push(p.gitUrl('second', t2))).code).toBe(0);
    void token;
    await p.stop();
    p.env = { PLATFORMX_CRASH_AT: 'boot-first-app' };
    await p.boot().catch(() => {});
    await p.exited();
    p.env = {};
    await p.boot();
    expect((await get(p.info.httpPort, 'crashy.localhost')).body).toBe('v1 body');
    expect((await get(p.info.httpPort, 'second.localhost')).body).toBe('second body');
    for (const app of ['crashy', 'second']) expect(JSON.parse(await p.ok(['ps', app, '--json']))).toHaveLength(1);
    second.remove();
  });

  it('start-up removes folders of failed releases (a crash during recovery) and stale state temp files', async () => {
    const { p } = await appWithRelease();
    await p.kill9();
    const history = path.join(p.data, 'apps', 'crashy', 'releases.json');
    const h = JSON.parse(fs.readFileSync(history, 'utf8'));
    h.records.push({ ...h.records[0], version: 2, build: 'v2', status: 'failed', description: 'half removed' });
    fs.writeFileSync(history, JSON.stringify(h));
    const s = state(p);
    const half = path.join(p.data, 'apps', 'crashy', 'releases', 'v2');
    fs.mkdirSync(half);
    fs.writeFileSync(path.join(half, 'server.js'), '');
    const temp = path.join(p.data, 'state.json.99999.tmp');
    fs.writeFileSync(temp, JSON.stringify(s), { mode: 0o600 });
    await p.boot();
    expect(fs.existsSync(half)).toBe(false);
    expect(fs.existsSync(temp)).toBe(false);
    expect((await get(p.info.httpPort, 'crashy.localhost')).body).toBe('v1 body');
  });
});
