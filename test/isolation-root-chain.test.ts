// Issue 11, critical 1: an app's config vars must never reach the root side of the
// chain that starts its processes. Two tenants try: one puts its own `setpriv` (and
// friends) first on PATH, one sets LD_PRELOAD to a library it built. Each of their
// programs writes `id` to a host file; none may ever run there (as root or at all),
// for web processes, the release command and build steps alike.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppRepo, get, serverSource } from './support/apps.js';
import { Platform } from './support/platform.js';

const isRoot = process.getuid?.() === 0;
let px: Platform;
let tmp: string;
const repos: AppRepo[] = [];

/** Programs the root side used to look up on the app's PATH, and a few it might. */
const HELPERS = ['setpriv', 'prlimit', 'bwrap', 'perl', 'sh', 'env', 'cp', 'rm', 'chown', 'tar', 'git'];

/** A C library whose constructor records who loaded it, as the LD_PRELOAD tenant ships it. */
function preloadSource(marker: string): string {
  return `#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
__attribute__((constructor)) static void record(void) {
  char comm[64] = "?", line[160];
  int c = open("/proc/self/comm", O_RDONLY);
  if (c >= 0) { int n = read(c, comm, sizeof comm - 1); comm[n > 0 ? n - 1 : 0] = 0; close(c); }
  int fd = open(${JSON.stringify(marker)}, O_WRONLY | O_APPEND | O_CREAT, 0666);
  if (fd < 0) return;
  int n = snprintf(line, sizeof line, "uid=%d euid=%d %s\\n", (int)getuid(), (int)geteuid(), comm);
  write(fd, line, n);
  close(fd);
}
`;
}

/** An app with a build script and a release command, so a push runs every kind of step. */
function appFiles(body: string): Record<string, string> {
  return {
    'package.json': JSON.stringify({ name: 'app', version: '1.0.0', scripts: { start: 'node server.js', build: 'node -e 0' } }),
    Procfile: 'release: node -e 0\n',
    'server.js': serverSource(body),
  };
}

async function deploy(app: string, files: Record<string, string>, prepare?: (dir: string) => void): Promise<{ repo: AppRepo; token: string }> {
  const token = await px.createApp(app);
  const repo = await AppRepo.create(files);
  repos.push(repo);
  if (prepare) {
    prepare(repo.dir);
    await repo.commit({}, 'tools');
  }
  const push = await repo.push(px.gitUrl(app, token));
  expect(push.code, push.stderr).toBe(0);
  return { repo, token };
}

/** Stops everything, writes config vars into the app's state and release records, starts again. */
async function setConfigDirectly(app: string, vars: Record<string, string>): Promise<void> {
  await px.stop();
  const stateFile = path.join(px.data, 'state.json');
  const state = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
  Object.assign(state.apps[app].config, vars);
  fs.writeFileSync(stateFile, JSON.stringify(state));
  const historyFile = path.join(px.data, 'apps', app, 'releases.json');
  const history = JSON.parse(fs.readFileSync(historyFile, 'utf8'));
  for (const r of history.records) Object.assign(r.config, vars);
  fs.writeFileSync(historyFile, JSON.stringify(history));
  await px.boot();
}

async function pushAgain(app: string, token: string, repo: AppRepo, body: string): Promise<void> {
  await repo.commit({ 'server.js': serverSource(body) }, body);
  const push = await repo.push(px.gitUrl(app, token));
  expect(push.code, push.stderr).toBe(0);
  expect(push.stderr).toContain('npm run build');
  expect(push.stderr).toContain('Running release command');
}

/** Every process command line on the host, to show no config value is in one. */
function allCommandLines(): string {
  return fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      return '';
    }
  }).join('\n');
}

function markerText(marker: string): string {
  return fs.existsSync(marker) ? fs.readFileSync(marker, 'utf8') : '';
}

beforeAll(async () => {
  if (!isRoot) return;
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pxiso-'));
  // World-writable: a helper run on the host as any user could leave its line.
  fs.chmodSync(tmp, 0o777);
  px = await Platform.start();
});
afterAll(async () => {
  await px?.destroy();
  for (const r of repos) r.remove();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe.runIf(isRoot)('config vars reach only the app inside its sandbox, as root', () => {
  it("programs on the app's PATH never run on the host: web, release command and build", async () => {
    const marker = path.join(tmp, 'path-marker');
    const { repo, token } = await deploy('pathy', appFiles('pathy v1'), (dir) => {
      fs.mkdirSync(path.join(dir, 'bin'));
      for (const name of HELPERS) {
        const file = path.join(dir, 'bin', name);
        fs.writeFileSync(file, `#!/bin/sh\nid >> ${marker} 2>/dev/null\nexec /usr/bin/${name} "$@"\n`);
        fs.chmodSync(file, 0o755);
      }
    });
    const release = path.join(px.data, 'apps', 'pathy', 'releases', 'v1');
    expect(fs.existsSync(path.join(release, 'bin', 'setpriv'))).toBe(true);
    const appPath = `${release}/bin:${path.dirname(process.execPath)}:/usr/bin:/bin`;
    // A multi-line value with a unique token, to look for in every argv on the host.
    const multi = `first line\nsecond ${'px' + 'token'}-${process.pid} "quoted" $HOME \\ end`;
    // config:set refuses PATH (a platform variable) and LD_*: write them straight into the
    // state, so what is tested is that the runner keeps them away from root, not the refusal.
    await setConfigDirectly('pathy', { PATH: appPath, MULTI: multi });
    expect(markerText(marker)).toBe('');

    const env = JSON.parse((await get(px.info.httpPort, 'pathy.localhost', '/env')).body);
    // npm start puts node_modules/.bin in front, as npm does.
    expect(env.PATH).toBe(`/app/node_modules/.bin:${appPath}`);
    expect(env.MULTI).toBe(multi);
    expect(allCommandLines()).not.toContain(`pxtoken-${process.pid}`);

    await pushAgain('pathy', token, repo, 'pathy v2');
    expect((await get(px.info.httpPort, 'pathy.localhost')).body).toBe('pathy v2');
    expect(markerText(marker)).toBe('');
    expect(fs.existsSync(marker)).toBe(false);
  });

  it('an LD_PRELOAD library of the app never loads into a host process: web, release command and build', async () => {
    const marker = path.join(tmp, 'preload-marker');
    const { repo, token } = await deploy('preload', appFiles('preload v1'), (dir) => {
      fs.writeFileSync(path.join(dir, 'p.c'), preloadSource(marker));
      execFileSync('gcc', ['-shared', '-fPIC', '-o', path.join(dir, 'p.so'), path.join(dir, 'p.c')]);
    });
    const library = path.join(px.data, 'apps', 'preload', 'releases', 'v1', 'p.so');
    expect(fs.existsSync(library)).toBe(true);
    // Straight into the state (server stopped): the refusal of LD_* names by config:set
    // must not be what keeps the library out; the runner must.
    await setConfigDirectly('preload', { LD_PRELOAD: library });
    expect((await get(px.info.httpPort, 'preload.localhost')).body).toBe('preload v1');
    const env = JSON.parse((await get(px.info.httpPort, 'preload.localhost', '/env')).body);
    expect(env.LD_PRELOAD).toBe(library);
    expect(markerText(marker)).toBe('');

    await pushAgain('preload', token, repo, 'preload v2');
    expect((await get(px.info.httpPort, 'preload.localhost')).body).toBe('preload v2');
    expect(markerText(marker)).toBe('');
    expect(fs.existsSync(marker)).toBe(false);
  });
});

