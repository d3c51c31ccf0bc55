// Apps on the Node they ask for, with real Node releases from the registry (the
// suite's runtimes cache makes the ~50 MB downloads once per machine), and
// Dokku's nodejs-express test app (engines.node 18.x.x, app.json deploy scripts).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { AppRepo, get } from './support/apps.js';
import { Platform } from './support/platform.js';
import { keepRuntimes, seedRuntimes } from './support/runtimes.js';

let px: Platform;
const repos = new Map<string, AppRepo>();
const tokens = new Map<string, string>();

beforeAll(async () => {
  px = new Platform(fs.mkdtempSync(path.join(os.tmpdir(), 'pxt-')));
  seedRuntimes(px.data);
  await px.boot();
});
afterAll(async () => {
  keepRuntimes(px.data);
  await px.destroy();
  for (const r of repos.values()) r.remove();
});

/** An app whose build writes down the node and npm it ran on, and which answers with its own process.version. */
function versionApp(range: string | null, body = 'v1'): Record<string, string> {
  return {
    'package.json': JSON.stringify({
      name: 'versioned', version: '1.0.0',
      ...(range === null ? {} : { engines: { node: range } }),
      scripts: {
        start: 'node server.js',
        build: `node -e "require('fs').writeFileSync('built.txt', process.version + ' ' + process.env.npm_config_user_agent)"`,
      },
    }),
    'server.js': `const built = require('fs').readFileSync('built.txt', 'utf8');
require('http').createServer((req, res) => res.end(JSON.stringify({ body: ${JSON.stringify(body)}, version: process.version, built }))).listen(process.env.PORT);
`,
  };
}

async function deploy(app: string, files: Record<string, string>) {
  if (!tokens.has(app)) tokens.set(app, await px.createApp(app));
  const repo = await AppRepo.create(files);
  repos.set(app, repo);
  return { repo, push: await repo.push(px.gitUrl(app, tokens.get(app)!)) };
}

const answer = async (app: string) => JSON.parse((await get(px.info.httpPort, `${app}.localhost`)).body) as { body: string; version: string; built: string };
const nodeOf = async (app: string) => JSON.parse(await px.ok(['apps:info', app, '--json'])).node as { version: string; server: boolean };

let node18 = '';
/** A cold cache downloads two releases, and npm installs run below serving traffic: generous on a busy machine. */
const SLOW = 300_000;

it('apps pinned to 18.x and 22.x build and answer on their own Node; npm for the 18 build is one that runs on it', async () => {
  const [a18, a22] = await Promise.all([deploy('on18', versionApp('18.x')), deploy('on22', versionApp('22.x'))]);
  expect(a18.push.code, a18.push.stderr).toBe(0);
  expect(a22.push.code, a22.push.stderr).toBe(0);
  node18 = /-----> Using Node (18\.\d+\.\d+) \(engines\.node "18\.x"\)/.exec(a18.push.stderr)?.[1] ?? '';
  const node22 = /-----> Using Node (22\.\d+\.\d+) \(engines\.node "22\.x"\)/.exec(a22.push.stderr)?.[1] ?? '';
  expect(node18, a18.push.stderr).not.toBe('');
  expect(node22, a22.push.stderr).not.toBe('');
  // npm 11 needs Node >= 20.17: the 18 runtime brings an npm 10.
  const npm18 = /npm (10\.\d+\.\d+) for builds \(the server's npm [\d.]+ needs Node /.exec(a18.push.stderr)?.[1];
  expect(npm18, a18.push.stderr).toBeDefined();

  const on18 = await answer('on18');
  expect(on18.version).toBe(`v${node18}`);
  expect(on18.built).toMatch(new RegExp(`^v${node18} npm/${npm18} node/v${node18} `));
  const on22 = await answer('on22');
  expect(on22.version).toBe(`v${node22}`);
  expect(on22.built).toMatch(new RegExp(`^v${node22} npm/[\\d.]+ node/v${node22} `));
  expect(a18.push.stderr).not.toContain('EBADENGINE');

  expect(await nodeOf('on18')).toEqual({ version: node18, server: false });
  expect(JSON.parse(await px.ok(['ps', 'on22', '--json']))[0].node).toBe(node22);
  expect(await px.ok(['ps', 'on18'])).toContain(` ${node18} `);

  // A config change and a restart run the same build on the same Node.
  await px.ok(['config:set', 'on18', 'GREETING=hi']);
  await px.ok(['restart', 'on18']);
  expect((await answer('on18')).version).toBe(`v${node18}`);
}, SLOW);

it('without engines.node an app runs on the server\'s own Node, and the push says so', async () => {
  const { push } = await deploy('plain', versionApp(null));
  expect(push.code, push.stderr).toBe(0);
  expect(push.stderr).toContain(`-----> Using Node ${process.versions.node} (the server's own: package.json sets no engines.node)`);
  expect((await answer('plain')).version).toBe(process.version);
  expect(await nodeOf('plain')).toEqual({ version: process.versions.node, server: true });
});

it('a second app on the same line installs nothing new', async () => {
  const dir = path.join(px.data, 'runtimes');
  const before = fs.readdirSync(dir).sort();
  const inode = fs.statSync(path.join(dir, node18, 'bin', 'node')).ino;
  const { push } = await deploy('also18', versionApp('^18.0.0'));
  expect(push.code, push.stderr).toBe(0);
  expect(push.stderr).toContain(`-----> Using Node ${node18} (engines.node "^18.0.0")`);
  expect(push.stderr).not.toContain('installing');
  expect(fs.readdirSync(dir).sort()).toEqual(before);
  expect(fs.statSync(path.join(dir, node18, 'bin', 'node')).ino).toBe(inode);
  expect((await answer('also18')).version).toBe(`v${node18}`);
});

it('an unsatisfiable range is refused in one line, and the old release keeps serving on its Node', async () => {
  const repo = repos.get('on18')!;
  await repo.commit(versionApp('99.x', 'v2'), 'node 99');
  const push = await repo.push(px.gitUrl('on18', tokens.get('on18')!));
  expect(push.code).not.toBe(0);
  expect(push.stderr).toMatch(/Push rejected: engines\.node "99\.x" matches no Node release the registry serves; available: \d+\.\d+\.\d+, /);
  const still = await answer('on18');
  expect(still).toMatchObject({ body: 'v1', version: `v${node18}` });
});

it("Dokku's nodejs-express app (engines.node 18.x.x, express, app.json deploy scripts) deploys and shows both scripts", async () => {
  // The same shape as dokku/dokku tests/apps/nodejs-express.
  const { push } = await deploy('express', {
    'package.json': JSON.stringify({ name: 'node-example', version: '0.0.1', dependencies: { express: '5.2.x' }, engines: { node: '18.x.x' } }, null, 2),
    'app.json': JSON.stringify({
      healthchecks: { web: [{ attempts: 2, content: 'nodejs/express', name: 'check-1', path: '/', timeout: 5, type: 'startup', wait: 2 }] },
      scripts: { dokku: { postdeploy: 'touch /app/postdeploy.test', predeploy: 'touch /app/predeploy.test' } },
    }, null, 2),
    'Procfile': 'cron: node worker.js\nweb: node web.js # testing inline comment\nworker: node worker.js\ncustom: echo -n\nrelease: touch /app/release.test\n',
    'web.js': `const app = require('express')();
app.get('/', (req, res) => res.send('nodejs/express'));
app.listen(process.env.PORT || 5000, () => console.log('Listening on ' + process.env.PORT));
`,
    'worker.js': 'setInterval(() => console.log("sleeping"), 60000);\n',
  });
  expect(push.code, push.stderr).toBe(0);
  expect(push.stderr).toContain(`-----> Using Node ${node18} (engines.node "18.x.x")`);
  expect(push.stderr).toContain('-----> Installing dependencies (npm install, no lockfile)');
  expect(push.stderr).not.toContain('EBADENGINE');
  const steps = push.stderr.split('\n').filter((l) => l.includes('----->')).map((l) => l.replace(/^remote: -----> /, '').trim());
  const at = (prefix: string) => steps.findIndex((s) => s.startsWith(prefix));
  expect(at('Running predeploy (app.json scripts.dokku.predeploy)')).toBeGreaterThan(at('Installing dependencies'));
  expect(at('Running release command')).toBeGreaterThan(at('Running predeploy'));
  expect(at('Starting web.1')).toBeGreaterThan(at('Running release command'));
  expect(at('Running postdeploy (app.json scripts.dokku.postdeploy)')).toBeGreaterThan(at('Released v1'));
  expect((await get(px.info.httpPort, 'express.localhost')).body).toBe('nodejs/express');
  const release = path.join(px.data, 'apps', 'express', 'releases', 'v1');
  for (const f of ['predeploy.test', 'release.test', 'postdeploy.test']) expect(fs.existsSync(path.join(release, f)), f).toBe(true);
  expect(await nodeOf('express')).toEqual({ version: node18, server: false });
}, SLOW);

it('runtimes lists each installed Node with the apps on it', async () => {
  const listed = JSON.parse(await px.ok(['runtimes', '--json']));
  const on18 = listed.installed.find((r: { node: string }) => r.node === node18);
  expect(on18).toMatchObject({ apps: ['also18', 'express', 'on18'] });
  expect(on18.npm).toMatch(/^10\./);
  expect(listed.installed.find((r: { apps: string[] }) => r.apps.includes('on22'))).toBeDefined();
  expect(listed.server).toEqual({ node: process.versions.node, apps: ['plain'] });
  const text = await px.ok(['runtimes']);
  expect(text).toMatch(new RegExp(`${node18.replace(/\./g, '\\.')}\\s+10\\.\\S+\\s+\\d+ MB\\s+also18, express, on18`));
  expect(text).toContain(`${process.versions.node} (server's own)`);
});

it('a server restart starts each app on its own Node again, and a rollback keeps the Node of its build', async () => {
  await px.stop();
  await px.boot();
  const on18 = await answer('on18');
  expect(on18.version).toBe(`v${node18}`);
  expect((await answer('plain')).version).toBe(process.version);
  await px.ok(['rollback', 'on18']);
  expect((await answer('on18')).version).toBe(`v${node18}`);
  expect(await nodeOf('on18')).toEqual({ version: node18, server: false });
});
