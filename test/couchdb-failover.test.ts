// The data layer against two real PouchDB Servers standing for the local
// primary and the remote replica: a pushed app writes through COUCHDB_URL (the
// gateway), its writes reach the replica; one app's credentials reach nothing
// of another's; kill -9 of the primary moves the app to the replica within
// seconds; once the primary is back every document is on both sides and
// traffic and replication are as before.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppRepo, get, waitFor } from './support/apps.js';
import { docIds, INSTALL_TIMEOUT_MS, PouchServer, request } from './support/couchdb.js';
import { Platform } from './support/platform.js';

let primary: PouchServer;
let replica: PouchServer;
let px: Platform;
let repo: AppRepo;
let alphaUrl: string;
let betaUrl: string;

/** An app that writes and reads its documents through COUCHDB_URL. */
const DB_APP = {
  'package.json': JSON.stringify({ name: 'dbapp', version: '1.0.0', scripts: { start: 'node server.js' } }),
  'server.js': `const http = require('http');
const db = new URL(process.env.COUCHDB_URL || 'http://none:none@127.0.0.1:9/none');
const auth = 'Basic ' + Buffer.from(decodeURIComponent(db.username) + ':' + decodeURIComponent(db.password)).toString('base64');
function couch(method, p, body) {
  return new Promise((resolve) => {
    const req = http.request({ host: db.hostname, port: db.port, path: db.pathname + p, method, headers: { authorization: auth, 'content-type': 'application/json' } }, (res) => {
      let t = '';
      res.on('data', (c) => (t += c));
      res.on('end', () => resolve({ status: res.statusCode, body: t }));
    });
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ status: 599, body: e.message }));
    req.end(body ? JSON.stringify(body) : undefined);
  });
}
http.createServer(async (req, res) => {
  const u = new URL(req.url, 'http://x');
  const id = encodeURIComponent(u.searchParams.get('id') || '');
  let r = { status: 200, body: 'ok' };
  if (u.pathname === '/env') r.body = JSON.stringify(process.env);
  if (u.pathname === '/write') r = await couch('PUT', '/' + id, { at: Date.now() });
  if (u.pathname === '/read') r = await couch('GET', '/' + id);
  res.statusCode = r.status;
  res.end(r.body);
}).listen(process.env.PORT);
`,
};

const appWrite = (id: string) => get(px.info.httpPort, 'alpha.localhost', `/write?id=${id}`);
const info = async (app: string) => JSON.parse(await px.ok(['couchdb:info', app, '--json']));
const appLog = () => fs.readFileSync(path.join(px.data, 'apps', 'alpha', 'logs', 'app.log'), 'utf8');
const dbDocs = async (server: PouchServer, db: string) => (await docIds(`${server.url}/${db}`)).filter((id) => !id.startsWith('_design/'));

beforeAll(async () => {
  [primary, replica] = await Promise.all([PouchServer.start(), PouchServer.start()]);
  px = await Platform.start(['--couchdb', primary.url, '--couchdb-replica', replica.url, '--boot-timeout', '20']);
  const token = await px.createApp('alpha');
  await px.ok(['apps:create', 'beta']);
  repo = await AppRepo.create(DB_APP);
  const push = await repo.push(px.gitUrl('alpha', token));
  expect(push.code, push.stderr).toBe(0);
  const created = await px.ok(['couchdb:create', 'alpha']);
  expect(created).toMatch(/^Created database alpha; COUCHDB_URL is set: v2 is live/m);
  await px.ok(['couchdb:create', 'beta']);
  alphaUrl = (await px.ok(['config:get', 'alpha', 'COUCHDB_URL'])).trim();
  betaUrl = (await px.ok(['config:get', 'beta', 'COUCHDB_URL'])).trim();
}, INSTALL_TIMEOUT_MS);
afterAll(async () => {
  await px?.destroy();
  await Promise.all([primary?.destroy(), replica?.destroy()]);
  repo?.remove();
});

describe('couchdb:create', () => {
  it('gives the app a gateway URL of its own, restarts it with it, and never logs the secret', async () => {
    const u = new URL(alphaUrl);
    expect([u.protocol, u.hostname, u.username, u.pathname]).toEqual(['http:', '127.0.0.1', 'alpha', '/alpha']);
    expect(u.password.length).toBeGreaterThanOrEqual(32);
    expect(Number(u.port)).toBe(JSON.parse(fs.readFileSync(path.join(px.data, 'server.json'), 'utf8')).couchdbGatewayPort);
    // The app's processes run with it (the release it restarted into).
    const env = JSON.parse((await get(px.info.httpPort, 'alpha.localhost', '/env')).body);
    expect(env.COUCHDB_URL).toBe(alphaUrl);
    for (const text of [px.output, appLog(), fs.readFileSync(path.join(px.data, 'couchdb', 'state.json'), 'utf8')]) expect(text).not.toContain(u.password);
    // A second create says so and changes nothing.
    const again = await px.cli(['couchdb:create', 'alpha']);
    expect([again.code, again.stderr]).toEqual([1, "error: app 'alpha' already has a database: see 'platformx couchdb:info alpha'\n"]);
    expect((await px.ok(['config:get', 'alpha', 'COUCHDB_URL'])).trim()).toBe(alphaUrl);
  });

  it("writes through the app's COUCHDB_URL reach the replica within seconds", async () => {
    const w = await appWrite('before-1');
    expect(w.status, w.body).toBe(201);
    const t0 = Date.now();
    await waitFor(async () => (await request('GET', `${replica.url}/alpha/before-1`)).status === 200, 10_000, 'before-1 on the replica');
    expect(Date.now() - t0).toBeLessThan(10_000);
    const i = await info('alpha');
    expect(i).toMatchObject({ database: 'alpha', using: 'primary', failover: 'none', primary: { up: true }, replica: { up: true } });
    expect(i.replication.direction).toBe('primary → replica');
    expect(i.replication.state).toBe('triggered');
    await waitFor(async () => (await info('alpha')).replication.pending === 0, 10_000, 'nothing waiting');
  });
});

describe('the gateway', () => {
  it("lets an app's credentials reach only its own database, and only its documents, queries and indexes", async () => {
    const g = new URL(alphaUrl);
    const base = `http://alpha:${g.password}@127.0.0.1:${g.port}`;
    const beta = new URL(betaUrl);
    const betaBase = `http://beta:${beta.password}@127.0.0.1:${beta.port}`;
    // Another app's database, and every server-wide path: refused alike.
    for (const p of ['/beta', '/beta/_all_docs', '/_all_dbs', '/_users', '/_users/org.couchdb.user:x', '/_replicator', '/_config', '/_session', '/_utils/', '/_active_tasks', '/nosuchdb']) {
      const r = await request('GET', base + p);
      expect([p, r.status]).toEqual([p, 403]);
    }
    expect((await request('GET', `${betaBase}/alpha/before-1`)).status).toBe(403);
    expect((await request('PUT', `${betaBase}/alpha/from-beta`, { x: 1 })).status).toBe(403);
    expect(await dbDocs(primary, 'alpha')).not.toContain('from-beta');
    // Credentials that are not the app's own.
    expect((await request('GET', `http://alpha:${beta.password}@127.0.0.1:${g.port}/alpha`)).status).toBe(401);
    expect((await request('GET', `http://beta:${g.password}@127.0.0.1:${g.port}/beta`)).status).toBe(401);
    expect((await request('GET', `http://127.0.0.1:${g.port}/alpha`)).status).toBe(401);
    // The database itself and its security are the platform's.
    expect((await request('DELETE', `${base}/alpha`)).status).toBe(403);
    expect((await request('GET', `${base}/alpha/_security`)).status).toBe(403);
    expect((await request('PUT', `${base}/alpha/_design/x/_rewrite/y`, {})).status).toBe(403);
    // What the app may do.
    expect((await request('POST', `${base}/alpha/_bulk_docs`, { docs: [{ _id: 'bulk-1', n: 1 }, { _id: 'bulk-2', n: 2 }] })).status).toBe(201);
    expect((await request('POST', `${base}/alpha/_index`, { index: { fields: ['n'] } })).status).toBe(200);
    const found = await request('POST', `${base}/alpha/_find`, { selector: { n: { $gt: 1 } } });
    expect(found.body.docs.map((d: { _id: string }) => d._id)).toEqual(['bulk-2']);
    expect((await request('POST', `${base}/alpha/_bulk_get`, { docs: [{ id: 'bulk-1' }] })).status).toBe(200);
    expect((await request('GET', `${base}/alpha/_changes?limit=1`)).status).toBe(200);
    expect((await request('GET', `${base}/alpha/_all_docs`)).body.rows.length).toBeGreaterThanOrEqual(3);
    // The app's data never reached the other app's database.
    expect(await dbDocs(primary, 'beta')).toEqual([]);
  });
});

describe('failover', () => {
  it('kill -9 of the primary: the app reads and writes on the replica within seconds; back up: every document on both sides', async () => {
    const written: string[] = ['before-1', 'bulk-1', 'bulk-2'];
    for (let i = 2; i <= 5; i++) {
      expect((await appWrite(`before-${i}`)).status).toBe(201);
      written.push(`before-${i}`);
    }
    await waitFor(async () => (await dbDocs(replica, 'alpha')).length >= written.length, 10_000, 'the replica has everything written before the kill');
    await primary.kill9();
    const killedAt = Date.now();
    let firstWriteMs = -1;
    for (let n = 0; Date.now() - killedAt < 15_000; n++) {
      const r = await appWrite(`during-${n}`).catch(() => null);
      if (r?.status === 201) {
        firstWriteMs = Date.now() - killedAt;
        written.push(`during-${n}`);
        break;
      }
      await new Promise((res) => setTimeout(res, 100));
    }
    expect(firstWriteMs).toBeGreaterThan(0);
    expect(firstWriteMs).toBeLessThan(8_000);
    // Reads keep working (documents replicated before the kill), and so do writes.
    expect((await get(px.info.httpPort, 'alpha.localhost', '/read?id=before-3')).status).toBe(200);
    for (let i = 0; i < 5; i++) {
      expect((await appWrite(`failed-over-${i}`)).status).toBe(201);
      written.push(`failed-over-${i}`);
    }
    expect(await info('alpha')).toMatchObject({ using: 'replica', failover: 'on the replica', primary: { up: false } });
    expect(appLog()).toMatch(/platform\[couchdb\]: the primary CouchDB does not answer: database traffic goes to the replica/);

    await primary.boot();
    await waitFor(async () => (await info('alpha')).failover === 'none', 30_000, 'the failover to end');
    expect((await info('alpha')).using).toBe('primary');
    expect(appLog()).toMatch(/platform\[couchdb\]: the primary CouchDB has every change written on the replica: database traffic is back on the primary/);
    expect(appLog()).toMatch(/platform\[couchdb\]: replication runs primary → replica only again/);
    // Nothing was lost: every document is on both sides.
    for (const server of [primary, replica]) {
      const ids = await dbDocs(server, 'alpha');
      for (const id of written) expect(ids, `${id} on ${server === primary ? 'the primary' : 'the replica'}`).toContain(id);
    }
    // Only primary → replica runs now.
    const jobs = (await request('GET', `${primary.url}/_replicator/_all_docs`)).body.rows.map((r: { id: string }) => r.id);
    expect(jobs.filter((id: string) => id.startsWith('platformx-alpha'))).toEqual(['platformx-alpha-push']);
    // And it still runs: a new write reaches the replica.
    expect((await appWrite('after-1')).status).toBe(201);
    await waitFor(async () => (await request('GET', `${replica.url}/alpha/after-1`)).status === 200, 10_000, 'after-1 on the replica');
  });
});

describe('couchdb:destroy', () => {
  it('needs --confirm, removes the database and COUCHDB_URL, and keeps the replica copy unless --replica-too', async () => {
    const r = await px.cli(['couchdb:destroy', 'beta']);
    expect([r.code, r.stderr]).toEqual([1, "error: destroying the database of 'beta' deletes its documents: repeat the name with --confirm beta\n"]);
    await px.ok(['couchdb:destroy', 'beta', '--confirm', 'beta']);
    expect((await request('GET', `${primary.url}/beta`)).status).toBe(404);
    expect((await request('GET', `${replica.url}/beta`)).status).toBe(200);
    expect((await px.cli(['config:get', 'beta', 'COUCHDB_URL'])).code).toBe(1);
    const b = new URL(betaUrl);
    expect((await request('GET', `http://beta:${b.password}@127.0.0.1:${b.port}/beta`)).status).toBe(401);
    const gone = await px.cli(['couchdb:info', 'beta']);
    expect([gone.code, gone.stderr]).toEqual([1, "error: app 'beta' has no database: make one with 'platformx couchdb:create beta'\n"]);
  });
});
