// Legacy rsync uploads: the argv check against what the real rsync client sends,
// and the real `rsync --server` receiver run through handleRsyncUpload, with the
// real rsync client on the other end. The transport (rsync -e) is a small node
// script that calls the compiled module the way the SSH server's exec hook does.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRsyncUpload, RsyncRefused } from '../src/legacy/rsync-command.js';
import { snapshotUpload } from '../src/legacy/upload-snapshot.js';
import { DataPaths } from '../src/state/paths.js';
import { StateStore } from '../src/state/store.js';
import { DEFAULT_LIMITS, type AppRecord } from '../src/state/types.js';
import { ROOT, run } from './support/platform.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pxl-rsync-'));
const dist = (p: string) => path.join(ROOT, 'dist', p);

/** A transport that records the remote command's argv (as the SSH server would split it) and fails. */
function captureTransport(): string {
  const script = path.join(tmp, 'capture.sh');
  fs.writeFileSync(script, `#!/bin/sh\nshift 3\nprintf '%s\\0' "$@" > "$CAPTURE"\nexit 1\n`, { mode: 0o755 });
  return script;
}

/** rsync's remote command for these client args, as the list of words the SSH server receives. */
async function clientArgv(args: string[], dest = 'git@HOST:hello/'): Promise<string[]> {
  const capture = path.join(tmp, `argv-${Math.random().toString(36).slice(2)}`);
  fs.mkdirSync(path.join(tmp, 'src'), { recursive: true });
  await run('rsync', [...args, '-e', captureTransport(), `${path.join(tmp, 'src')}/`, dest], { env: { ...process.env, CAPTURE: capture } });
  const words = fs.readFileSync(capture, 'utf8').split('\0').slice(0, -1);
  fs.rmSync(capture);
  return words;
}

const uploadDir = (app: string) => `/data/apps/${app}/upload`;

function refusal(argv: string[]): string {
  try {
    parseRsyncUpload(argv, uploadDir);
  } catch (err) {
    expect(err).toBeInstanceOf(RsyncRefused);
    const message = (err as Error).message;
    expect(message).not.toContain('\n');
    return message;
  }
  throw new Error(`accepted: ${argv.join(' ')}`);
}

describe('rsync argv check, fed with what the real rsync client sends', () => {
  it('accepts the SDK upload and rewrites its destination to the upload folder, links munged', async () => {
    const argv = await clientArgv(['-az', '--delete']);
    expect(argv.slice(0, 2)).toEqual(['rsync', '--server']);
    const upload = parseRsyncUpload(argv, uploadDir);
    expect(upload.app).toBe('hello');
    expect(upload.argv.slice(-2)).toEqual(['.', '/data/apps/hello/upload/']);
    expect(upload.argv).toContain('--munge-links');
    expect(upload.argv).toContain('--delete');
    expect(upload.argv[2]).toMatch(/^-[a-zA-Z]*e\./);
  });

  it('accepts the usual upload flag sets and the old absolute destination', async () => {
    for (const args of [['-a'], ['-avz'], ['-rz'], ['-r'], ['-az', '--checksum'], ['-avzP'], ['-az', '--delete', '--progress'],
      ['-azv', '--delete', '--stats'], ['-rlptz'], ['-a', '--delete-after'], ['-azi'], ['-azH'], ['-az', '--partial'],
      ['-az', '--compress-level=9'], ['-azq'], ['-azn'], ['-az', '--bwlimit=100'], ['-az', '--timeout=30'], ['-az', '--exclude=node_modules']]) {
      const argv = await clientArgv(args);
      expect(parseRsyncUpload(argv, uploadDir).app, `${args.join(' ')} → ${argv.join(' ')}`).toBe('hello');
    }
    for (const dest of ['git@HOST:/srv/http/platform.x/applications/hello/', 'git@HOST:/srv/http/platform.x/applications/hello', 'git@HOST:hello']) {
      const upload = parseRsyncUpload(await clientArgv(['-az', '--delete'], dest), uploadDir);
      expect(upload.app).toBe('hello');
      expect(upload.argv.at(-1)).toBe('/data/apps/hello/upload/');
    }
  });

  it('refuses downloads, dangerous options and unknown ones with a one-line reason', async () => {
    // A download: the client asks the server to be the sender.
    const download = fs.mkdtempSync(path.join(tmp, 'dl-'));
    const capture = path.join(tmp, 'argv-download');
    await run('rsync', ['-az', '-e', captureTransport(), 'git@HOST:hello/', `${download}/`], { env: { ...process.env, CAPTURE: capture } });
    const down = fs.readFileSync(capture, 'utf8').split('\0').slice(0, -1);
    expect(down).toContain('--sender');
    expect(refusal(down)).toMatch(/downloads are not offered/);

    const cases: [string[], RegExp][] = [
      [['-az', '-M--log-file=/tmp/pxl-log'], /'--log-file=\/tmp\/pxl-log' is not allowed/],
      [['-az', '-M--rsh=sh'], /'--rsh=sh' is not allowed/],
      [['-az', '-M--files-from=/etc/passwd'], /--files-from/],
      [['-az', '--remove-source-files'], /--remove-source-files/],
      [['-az', '--temp-dir=/tmp'], /--temp-dir/],
      [['-az', '--link-dest=/etc'], /--link-dest/],
      [['-az', '--partial-dir=../x'], /--partial-dir/],
      [['-az', '--super'], /--super/],
      [['-az', '-s'], /--protect-args/],
      [['-azR'], /'-R' is not allowed/],
      [['-azX'], /'-X' is not allowed/],
      [['-az', '--keep-dirlinks'], /'-K' is not allowed/],
      [['-az', '-M--frobnicate'], /'--frobnicate' is not allowed/],
      [['-az', '--usermap=*:0'], /--usermap/],
    ];
    for (const [args, reason] of cases) expect(refusal(await clientArgv(args)), args.join(' ')).toMatch(reason);
    // --rsync-path replaces the remote program: what arrives is not rsync at all.
    expect(refusal(await clientArgv(['-az', '--rsync-path=/bin/sh']))).toMatch(/only the rsync client's server mode/);
  });

  it('refuses destinations outside an app upload folder', async () => {
    const cases: [string, RegExp][] = [
      ['git@HOST:../other/', /leaves the upload folder/],
      ['git@HOST:hello/../other/', /leaves the upload folder/],
      ['git@HOST:/etc/', /outside the upload area/],
      ['git@HOST:/srv/http/platform.x/applications/../../etc/', /leaves the upload folder/],
      ['git@HOST:~/hello/', /outside the upload area/],
      ['git@HOST:hello/sub/', /names a folder inside an app/],
      ['git@HOST:', /no app named/],
      ['git@HOST:Hello!/', /not an app name/],
    ];
    for (const [dest, reason] of cases) expect(refusal(await clientArgv(['-az', '--delete'], dest)), dest).toMatch(reason);
    expect(refusal(['rsync', '--server', '-logDtprze.iLsfxCIvu', '.', 'a/', 'b/'])).toMatch(/exactly one destination/);
    expect(refusal(['rsync', '--server', '.', 'hello/'])).toMatch(/no transfer flags/);
  });
});

describe('the rsync receiver, driven by the real rsync client', () => {
  const data = path.join(tmp, 'data');
  const paths = new DataPaths(data);
  const bundle = path.join(tmp, 'bundle');
  const transport = path.join(tmp, 'transport.mjs');
  const APP_UID = 54321;

  function appRecord(name: string, uid: number | null): AppRecord {
    return {
      name, domains: [], createdAt: new Date().toISOString(), tokens: [], current: null,
      config: {}, formation: { web: 1 }, limits: { ...DEFAULT_LIMITS }, uid,
    };
  }

  beforeAll(() => {
    for (const f of ['legacy/rsync-receiver.js', 'legacy/upload-folders.js']) {
      const built = dist(f);
      const source = path.join(ROOT, 'src', f.replace(/\.js$/, '.ts'));
      if (!fs.existsSync(built) || fs.statSync(built).mtimeMs < fs.statSync(source).mtimeMs) {
        throw new Error(`${built} is missing or older than its source: run 'npx tsc -p .' (npm test does) first`);
      }
    }
    fs.mkdirSync(data, { recursive: true, mode: 0o700 });
    const store = new StateStore(paths.stateFile);
    store.update((s) => {
      s.apps.hello = appRecord('hello', null);
      s.apps.other = appRecord('other', null);
      s.apps.third = appRecord('third', null);
      s.apps.sandboxed = appRecord('sandboxed', APP_UID);
    });
    // What the SSH server's exec hook does, with this process's stdio as the channel.
    fs.writeFileSync(transport, `
const { handleRsyncUpload } = await import(${JSON.stringify(dist('legacy/rsync-receiver.js'))});
const { UploadFolders } = await import(${JSON.stringify(dist('legacy/upload-folders.js'))});
const { DataPaths } = await import(${JSON.stringify(dist('state/paths.js'))});
const { StateStore } = await import(${JSON.stringify(dist('state/store.js'))});
const argv = process.argv.slice(2).slice(3); // -l git HOST
const paths = new DataPaths(process.env.PXL_DATA);
const state = StateStore.read(paths.stateFile);
const apps = { get(name) { const a = state.apps[name]; if (!a) throw new Error('no app ' + name); return a; } };
const ctx = { argv, caller: JSON.parse(process.env.PXL_CALLER), stdin: process.stdin, stdout: process.stdout, stderr: process.stderr };
const code = await handleRsyncUpload(ctx, { apps, uploads: new UploadFolders(paths), rsyncBinary: process.env.PXL_RSYNC || undefined });
process.stdout.write('', () => process.exit(code));
`);
    fs.mkdirSync(path.join(bundle, 'lib'), { recursive: true });
    fs.writeFileSync(path.join(bundle, 'apprunner.js'), 'console.log("v1")\n');
    fs.writeFileSync(path.join(bundle, 'lib', 'a.js'), 'module.exports = 1\n');
    fs.writeFileSync(path.join(bundle, 'old.txt'), 'to be deleted\n');
    fs.symlinkSync('/etc', path.join(bundle, 'etc-link'));
    fs.symlinkSync('lib/a.js', path.join(bundle, 'inner-link'));
  });
  afterAll(() => {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  const scoped = (apps: string[]) => JSON.stringify({ kind: 'key', name: 'alice', admin: false, apps });
  function upload(dest: string, caller: string, extra: string[] = [], env: Record<string, string> = {}) {
    return run('rsync', ['-az', '--delete', ...extra, '-e', `${process.execPath} ${transport}`, `${bundle}/`, dest], {
      env: { ...process.env, NODE_OPTIONS: '', PXL_DATA: data, PXL_CALLER: caller, ...env },
    });
  }

  it('uploads a bundle into the app folder (0700), links munged; --delete removes files on re-upload', async () => {
    const r = await upload('git@HOST:hello/', scoped(['hello']));
    expect(r.code, r.stderr).toBe(0);
    const dir = paths.upload('hello');
    expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
    expect(fs.readFileSync(path.join(dir, 'apprunner.js'), 'utf8')).toBe('console.log("v1")\n');
    expect(fs.readFileSync(path.join(dir, 'lib', 'a.js'), 'utf8')).toBe('module.exports = 1\n');
    expect(fs.readlinkSync(path.join(dir, 'etc-link'))).toBe('/rsyncd-munged//etc');
    expect(() => fs.readdirSync(path.join(dir, 'etc-link'))).toThrow();

    fs.rmSync(path.join(bundle, 'old.txt'));
    fs.writeFileSync(path.join(bundle, 'apprunner.js'), 'console.log("v2 is longer")\n');
    const again = await upload('git@HOST:/srv/http/platform.x/applications/hello/', scoped(['hello']));
    expect(again.code, again.stderr).toBe(0);
    expect(fs.readFileSync(path.join(dir, 'apprunner.js'), 'utf8')).toBe('console.log("v2 is longer")\n');
    expect(fs.existsSync(path.join(dir, 'old.txt'))).toBe(false);
  });

  it('a symlink uploaded first cannot carry a later upload out of the folder', async () => {
    const outside = fs.mkdtempSync(path.join(tmp, 'outside-'));
    const evil = path.join(tmp, 'evil');
    fs.mkdirSync(evil);
    fs.symlinkSync(outside, path.join(evil, 'escape'));
    const first = await run('rsync', ['-a', '-e', `${process.execPath} ${transport}`, `${evil}/`, 'git@HOST:other/'], {
      env: { ...process.env, NODE_OPTIONS: '', PXL_DATA: data, PXL_CALLER: scoped(['other']) },
    });
    expect(first.code, first.stderr).toBe(0);
    fs.rmSync(path.join(evil, 'escape'));
    fs.mkdirSync(path.join(evil, 'escape'));
    fs.writeFileSync(path.join(evil, 'escape', 'pwned'), 'x');
    // Without --delete the receiver meets the old link where the folder goes.
    await run('rsync', ['-a', '--keep-dirlinks', '-e', `${process.execPath} ${transport}`, `${evil}/`, 'git@HOST:other/'], {
      env: { ...process.env, NODE_OPTIONS: '', PXL_DATA: data, PXL_CALLER: scoped(['other']) },
    });
    await run('rsync', ['-a', '-e', `${process.execPath} ${transport}`, `${evil}/`, 'git@HOST:other/'], {
      env: { ...process.env, NODE_OPTIONS: '', PXL_DATA: data, PXL_CALLER: scoped(['other']) },
    });
    expect(fs.readdirSync(outside)).toEqual([]);
  });

  it('a key for one app cannot upload into another: it looks like a missing app', async () => {
    const r = await upload('git@HOST:third/', scoped(['hello']));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("rsync refused: app 'third' does not exist");
    expect(fs.existsSync(paths.upload('third'))).toBe(false);
    const missing = await upload('git@HOST:nope/', scoped(['hello', 'nope']));
    expect(missing.stderr).toContain("rsync refused: app 'nope' does not exist");
    expect(fs.existsSync(paths.upload('nope'))).toBe(false);
  });

  it('a refused request tells the client why in one line, and writes nothing', async () => {
    const r = await upload('git@HOST:hello/', scoped(['hello']), ['-M--log-file=/tmp/pxl-rsync-log']);
    expect(r.code).not.toBe(0);
    expect(r.stderr.split('\n')[0]).toMatch(/^rsync refused: option '--log-file=\/tmp\/pxl-rsync-log' is not allowed here/);
    expect(fs.existsSync('/tmp/pxl-rsync-log')).toBe(false);
    const escape = await upload('git@HOST:hello/../other/', scoped(['hello', 'other']));
    expect(escape.stderr.split('\n')[0]).toMatch(/leaves the upload folder/);
  });

  it('says in one line when rsync is not installed on the server', async () => {
    const r = await upload('git@HOST:hello/', scoped(['hello']), [], { PXL_RSYNC: 'rsync-not-installed-here' });
    expect(r.code).not.toBe(0);
    expect(r.stderr.split('\n')[0]).toBe('rsync is not installed on this server: ask its administrator to install it (apt-get install rsync); git push still works');
  });

  it.runIf(process.getuid?.() === 0)('runs the receiver as the app user when the app has one', async () => {
    const r = await upload('git@HOST:sandboxed/', scoped(['sandboxed']));
    expect(r.code, r.stderr).toBe(0);
    const dir = paths.upload('sandboxed');
    expect(fs.statSync(dir).uid).toBe(APP_UID);
    expect(fs.statSync(path.join(dir, 'apprunner.js')).uid).toBe(APP_UID);
    expect(fs.statSync(path.join(dir, 'lib')).uid).toBe(APP_UID);
  });

  it('the snapshot for a release restores links inside the bundle and leaves out the rest', async () => {
    const dest = path.join(tmp, 'release-1');
    const result = await snapshotUpload(paths.upload('hello'), dest);
    expect(result.files).toBe(2);
    expect(fs.readlinkSync(path.join(dest, 'inner-link'))).toBe('lib/a.js');
    expect(fs.readFileSync(path.join(dest, 'inner-link'), 'utf8')).toBe('module.exports = 1\n');
    expect(fs.existsSync(path.join(dest, 'etc-link'))).toBe(false);
    expect(result.skippedLinks).toEqual(['etc-link -> /etc']);
    // Links that only escape in combination are caught by their real resolution.
    const combo = path.join(tmp, 'combo');
    fs.mkdirSync(path.join(combo, 'x'), { recursive: true });
    fs.writeFileSync(path.join(combo, 'f'), '');
    fs.symlinkSync('/rsyncd-munged/..', path.join(combo, 'x', 'up'));
    fs.symlinkSync('/rsyncd-munged/up/..', path.join(combo, 'x', 'out'));
    const r2 = await snapshotUpload(combo, path.join(tmp, 'release-2'));
    expect(fs.readlinkSync(path.join(tmp, 'release-2', 'x', 'up'))).toBe('..');
    expect(fs.existsSync(path.join(tmp, 'release-2', 'x', 'out'))).toBe(false);
    expect(r2.skippedLinks).toEqual(['x/out -> up/..']);
  });
});
