// Dokku's app.json deploy scripts: predeploy in the new release before its
// processes start (a failure rejects the push), postdeploy after the switch (a
// failure is reported, the release stays). Apps here run on the server's Node.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { AppRepo, get } from './support/apps.js';
import { Platform } from './support/platform.js';

let px: Platform;
let repo: AppRepo;
let token: string;

function scriptedApp(body: string, scripts: { predeploy?: string; postdeploy?: string }): Record<string, string> {
  return {
    'package.json': JSON.stringify({ name: 'scripted', version: '1.0.0', scripts: { start: 'node server.js' } }),
    'app.json': JSON.stringify({ scripts: { dokku: scripts } }),
    'server.js': `const fs = require('fs');
const read = (f) => { try { return fs.readFileSync(f, 'utf8').trim(); } catch { return null; } };
require('http').createServer((req, res) => res.end(JSON.stringify({ body: ${JSON.stringify(body)}, pre: read('pre.txt') }))).listen(process.env.PORT);
`,
  };
}

const answer = async () => JSON.parse((await get(px.info.httpPort, 'scripted.localhost')).body) as { body: string; pre: string | null };
const release = (v: number, file: string) => path.join(px.data, 'apps', 'scripted', 'releases', `v${v}`, file);
const steps = (stderr: string) => stderr.split('\n').filter((l) => l.includes('----->')).map((l) => l.replace(/^remote: -----> /, '').trim());

beforeAll(async () => {
  px = await Platform.start();
  token = await px.createApp('scripted');
  repo = await AppRepo.create(scriptedApp('v1', {
    predeploy: 'echo "pre on $(node -v)" > /app/pre.txt && echo predeploy wrote pre.txt',
    postdeploy: 'touch /app/post.txt && echo postdeploy ran',
  }));
});
afterAll(async () => {
  await px.destroy();
  repo.remove();
});

it('predeploy runs in the new release before it starts and what it writes stays; postdeploy runs after the switch', async () => {
  const push = await repo.push(px.gitUrl('scripted', token));
  expect(push.code, push.stderr).toBe(0);
  const s = steps(push.stderr);
  const pre = s.indexOf('Running predeploy (app.json scripts.dokku.predeploy)');
  const post = s.indexOf('Running postdeploy (app.json scripts.dokku.postdeploy)');
  expect(pre).toBeGreaterThan(-1);
  expect(pre).toBeLessThan(s.findIndex((x) => x.startsWith('Starting web.1')));
  expect(post).toBeGreaterThan(s.findIndex((x) => x.startsWith('Released v1')));
  expect(push.stderr).toContain('predeploy wrote pre.txt');
  expect(push.stderr).toContain('postdeploy ran');
  // The app read the file predeploy wrote when it started.
  expect(await answer()).toEqual({ body: 'v1', pre: `pre on ${process.version}` });
  expect(fs.existsSync(release(1, 'post.txt'))).toBe(true);
});

it('a failing predeploy rejects the push and the running release keeps serving', async () => {
  await repo.commit(scriptedApp('v2', { predeploy: 'echo "migration failed" >&2; exit 3' }), 'bad predeploy');
  const push = await repo.push(px.gitUrl('scripted', token));
  expect(push.code).not.toBe(0);
  expect(push.stderr).toContain('migration failed');
  expect(push.stderr).toContain('Push rejected: app.json predeploy failed (exit code 3)');
  expect(push.stderr).not.toContain('Starting web.1');
  expect((await answer()).body).toBe('v1');
});

it('a failing postdeploy is reported in the push output and the platform log, and the new release stays', async () => {
  await repo.commit(scriptedApp('v3', { postdeploy: 'exit 4' }), 'bad postdeploy');
  const push = await repo.push(px.gitUrl('scripted', token));
  expect(push.code, push.stderr).toBe(0);
  expect(push.stderr).toContain('-----> app.json postdeploy failed (exit code 4): v3 stays live');
  expect((await answer()).body).toBe('v3');
  const log = await px.ok(['logs', 'scripted', '--source', 'platform']);
  expect(log).toContain('platform[deploy]: app.json postdeploy failed (exit code 4): v3 stays live');
});

it('a config change reuses the build without running the scripts again', async () => {
  await repo.commit(scriptedApp('v4', { predeploy: 'echo ran >> /app/pre.txt', postdeploy: 'echo ran >> /app/post.txt' }), 'counting scripts');
  expect((await repo.push(px.gitUrl('scripted', token))).code).toBe(0);
  expect(await answer()).toEqual({ body: 'v4', pre: 'ran' });
  const out = await px.ok(['config:set', 'scripted', 'A=1']);
  expect(out).not.toContain('predeploy');
  expect(out).not.toContain('postdeploy');
  // The new release runs the same build, in which each script ran once.
  expect(await answer()).toEqual({ body: 'v4', pre: 'ran' });
  expect(fs.readFileSync(release(4, 'post.txt'), 'utf8')).toBe('ran\n');
});
