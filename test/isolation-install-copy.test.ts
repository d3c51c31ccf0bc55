// Issue 11, critical 2: a code-only push reuses the serving build's node_modules by
// copying it, and the serving app can change that folder while it is copied. With
// renameat2(RENAME_EXCHANGE) in a loop it swaps a folder the copy already found to be
// a folder for a link into another app's release: the copy then descends into the
// victim's tree. A bind mount of the victim's release on that folder puts the copy in
// exactly the state the won race leaves it in, every time. The copy must run as the
// attacker itself, so the victim's private files stay out of the attacker's release.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppRepo, get, nodeApp, serverSource } from './support/apps.js';
import { Platform } from './support/platform.js';

const isRoot = process.getuid?.() === 0;
let px: Platform;
const repos: AppRepo[] = [];
const mounts: string[] = [];
const SECRET = `victim-secret-${process.pid}`;

const HELPER = { 'helper/package.json': JSON.stringify({ name: 'helper', version: '1.0.0', main: 'index.js' }), 'helper/index.js': 'module.exports = 1;\n' };
const ATTACKER_PACKAGE = { name: 'attacker', version: '1.0.0', scripts: { start: 'node server.js' }, dependencies: { helper: 'file:./helper' } };
// What `npm install --package-lock-only` writes for it (a lockfile makes the install reusable).
const ATTACKER_LOCK = {
  name: 'attacker', version: '1.0.0', lockfileVersion: 3, requires: true,
  packages: {
    '': { name: 'attacker', version: '1.0.0', dependencies: { helper: 'file:./helper' } },
    helper: { version: '1.0.0' },
    'node_modules/helper': { resolved: 'helper', link: true },
  },
};

async function deploy(app: string, files: Record<string, string>): Promise<{ repo: AppRepo; token: string; output: string }> {
  const token = await px.createApp(app);
  const repo = await AppRepo.create(files);
  repos.push(repo);
  const push = await repo.push(px.gitUrl(app, token));
  expect(push.code, push.stderr).toBe(0);
  return { repo, token, output: push.stderr };
}

/** Every regular file below dir whose content holds needle (links are not followed). */
function filesHolding(dir: string, needle: string): string[] {
  const found: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && fs.readFileSync(p).includes(needle)) found.push(p);
    }
  };
  walk(dir);
  return found;
}

beforeAll(async () => {
  if (isRoot) px = await Platform.start();
});
afterAll(async () => {
  for (const m of mounts) execFileSync('umount', ['-l', m]);
  await px?.destroy();
  for (const r of repos) r.remove();
});

describe.runIf(isRoot)('the node_modules reuse copy, as root', () => {
  it("copies as the app's own user: a folder of the serving build that resolves into another app's release brings nothing of it", async () => {
    await deploy('victim', nodeApp('victim ok', { 'secret.txt': SECRET }));
    const victimRelease = path.join(px.data, 'apps', 'victim', 'releases', 'v1');
    fs.chmodSync(path.join(victimRelease, 'secret.txt'), 0o600);
    expect(fs.statSync(victimRelease).mode & 0o777).toBe(0o700);

    const { repo, token, output } = await deploy('attacker', {
      ...nodeApp('attacker v1', { ...HELPER, 'package-lock.json': JSON.stringify(ATTACKER_LOCK) }),
      'package.json': JSON.stringify(ATTACKER_PACKAGE),
    });
    expect(output).toContain('npm ci');
    // An untouched serving build is reused as before: copied whole, by the app's user.
    await repo.commit({ 'server.js': `require('helper');\n${serverSource('attacker v2')}` }, 'code only');
    const clean = await repo.push(px.gitUrl('attacker', token));
    expect(clean.code, clean.stderr).toBe(0);
    expect(clean.stderr).toContain('reusing node_modules of v1');
    expect(clean.stderr).not.toContain('installing instead');
    expect((await get(px.info.httpPort, 'attacker.localhost')).body).toBe('attacker v2');
    const serving = path.join(px.data, 'apps', 'attacker', 'releases', 'v2');
    expect(fs.lstatSync(path.join(serving, 'node_modules', 'helper')).isSymbolicLink()).toBe(true);
    expect(fs.statSync(path.join(serving, 'node_modules')).uid).toBe(fs.statSync(serving).uid);
    const uid = fs.statSync(serving).uid;
    // The serving app's own folder, as it could make it (its release is writable to it) …
    const stash = path.join(serving, 'node_modules', 'stash');
    fs.mkdirSync(stash);
    fs.chownSync(stash, uid, uid);
    // … and what a won RENAME_EXCHANGE makes of it while the copy walks the tree.
    execFileSync('mount', ['--bind', victimRelease, stash]);
    mounts.push(stash);
    expect(fs.readFileSync(path.join(stash, 'secret.txt'), 'utf8')).toBe(SECRET);

    await repo.commit({ 'server.js': serverSource('attacker v3') }, 'code only, during the swap');
    const push = await repo.push(px.gitUrl('attacker', token));
    expect(push.code, push.stderr).toBe(0);
    expect(push.stderr).toContain('reusing node_modules of v2');
    expect((await get(px.info.httpPort, 'attacker.localhost')).body).toBe('attacker v3');

    const next = path.join(px.data, 'apps', 'attacker', 'releases', 'v3');
    expect(fs.existsSync(path.join(next, 'server.js'))).toBe(true);
    expect(filesHolding(next, SECRET)).toEqual([]);
    expect(fs.existsSync(path.join(next, 'node_modules', 'stash', 'secret.txt'))).toBe(false);
    // The app's user may not enter the victim's folder, so the copy stops and npm ci builds instead.
    expect(push.stderr).toMatch(/stash': Permission denied/);
    expect(push.stderr).toContain('installing instead');
    expect((await get(px.info.httpPort, 'victim.localhost')).body).toBe('victim ok');
  });
});

