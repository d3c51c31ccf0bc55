// The embedded CouchDB (no --couchdb URL): PouchDB Server started on first
// use, on loopback, its data under DATA/couchdb; restarted when it dies; its
// data and the app's COUCHDB_URL outlive a platform restart; it runs no
// JavaScript of an app's (node:vm is no sandbox).
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from './support/apps.js';
import { INSTALL_TIMEOUT_MS, request, sharedPouchdbInstall } from './support/couchdb.js';
import { alive, Platform } from './support/platform.js';

let px: Platform;
let url: string;

const embeddedPid = () => Number(fs.readFileSync(path.join(px.data, 'couchdb', 'embedded.pid'), 'utf8'));
const state = () => JSON.parse(fs.readFileSync(path.join(px.data, 'couchdb', 'state.json'), 'utf8'));

beforeAll(async () => {
  px = await Platform.start(['--pouchdb-server', await sharedPouchdbInstall()]);
  await px.ok(['apps:create', 'notes']);
}, INSTALL_TIMEOUT_MS);
afterAll(async () => {
  await px?.destroy();
});

describe('the embedded CouchDB', () => {
  it('starts on first use, on loopback only, with the data under DATA/couchdb', async () => {
    expect(fs.existsSync(path.join(px.data, 'couchdb', 'embedded.pid'))).toBe(false);
    await px.ok(['couchdb:create', 'notes']);
    url = (await px.ok(['config:get', 'notes', 'COUCHDB_URL'])).trim();
    expect((await request('PUT', `${url}/first`, { text: 'kept' })).status).toBe(201);
    const port = state().embeddedPort;
    const listening = fs.readFileSync('/proc/net/tcp', 'utf8').split('\n').filter((l) => l.split(/\s+/)[4] === '0A')
      .map((l) => l.trim().split(/\s+/)[1]!).filter((local) => parseInt(local.split(':')[1]!, 16) === port);
    expect(listening).toEqual(['0100007F:' + port.toString(16).toUpperCase().padStart(4, '0')]);
    expect(fs.readdirSync(path.join(px.data, 'couchdb', 'data'))).toContain('notes');
    const info = JSON.parse(await px.ok(['couchdb:info', 'notes', '--json']));
    expect(info).toMatchObject({ database: 'notes', using: 'primary', replica: null, replication: null, primary: { server: `embedded (127.0.0.1:${port})`, up: true } });
  });

  it('runs no JavaScript of an app\'s: JavaScript design documents and filters are refused, Mango works', async () => {
    const ddoc = await request('PUT', `${url}/_design/evil`, { views: { v: { map: 'function (doc) { emit(typeof process, 1) }' } } });
    expect([ddoc.status, ddoc.body.reason]).toEqual([403, expect.stringContaining('runs no JavaScript')]);
    const filter = await request('GET', `${url}/_changes?filter=evil/f`);
    expect(filter.status).toBe(403);
    // Through the other doors a design document can come in, its code still never runs.
    expect((await request('POST', `${url}/_bulk_docs`, { docs: [{ _id: '_design/sneak', validate_doc_update: 'function () { throw({ forbidden: typeof process }) }', views: { v: { map: 'function (d) { emit(typeof require, 1) }' } } }] })).status).toBe(201);
    expect((await request('PUT', `${url}/after-sneak`, { ok: true })).status).toBe(201);
    const view = await request('GET', `${url}/_design/sneak/_view/v`);
    expect(JSON.stringify(view.body)).not.toMatch(/object|function/);
    expect((await request('POST', `${url}/_index`, { index: { fields: ['text'] } })).status).toBe(200);
    const found = await request('POST', `${url}/_find`, { selector: { text: 'kept' } });
    expect(found.body.docs.map((d: { _id: string }) => d._id)).toEqual(['first']);
    expect((await request('GET', `${url}/first`)).status).toBe(200);
  });

  it('is restarted when it is killed, its documents kept', async () => {
    const before = embeddedPid();
    process.kill(before, 'SIGKILL');
    const after = await waitFor(async () => {
      const pid = embeddedPid();
      return pid !== before && alive(pid) && (await request('GET', `${url}/first`)).status === 200 && pid;
    }, 20_000, 'the embedded CouchDB to be back');
    expect(after).not.toBe(before);
    expect(px.output).toMatch(/the embedded CouchDB exited \(SIGKILL\): restarting it in 1 s/);
  });

  it('keeps its data, its port and the app\'s COUCHDB_URL across a platform restart', async () => {
    const pid = embeddedPid();
    await px.stop();
    expect(alive(pid)).toBe(false);
    await px.boot();
    expect((await px.ok(['config:get', 'notes', 'COUCHDB_URL'])).trim()).toBe(url);
    const doc = await request('GET', `${url}/first`);
    expect([doc.status, doc.body.text]).toEqual([200, 'kept']);
    expect(embeddedPid()).not.toBe(pid);
  });

  it('is stopped first when a killed platform server left it running', async () => {
    const pid = embeddedPid();
    await px.kill9();
    expect(alive(pid)).toBe(true);
    await px.boot();
    expect(alive(pid)).toBe(false);
    expect((await request('GET', `${url}/first`)).status).toBe(200);
  });

  it('couchdb:destroy removes the database and the credentials', async () => {
    await px.ok(['couchdb:destroy', 'notes', '--confirm', 'notes']);
    expect((await request('GET', `${url}/first`)).status).toBe(401);
    expect(fs.readdirSync(path.join(px.data, 'couchdb', 'data'))).not.toContain('notes');
    expect(state().apps).toEqual({});
  });
});
