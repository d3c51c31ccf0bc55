// Automatic certificates from a real ACME CA (pebble) on loopback: issuance
// for two apps chosen by SNI, HTTP/2, a domain whose challenge cannot
// succeed, a domain added later, and a restart with the CA down.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { get, waitFor, type AppRepo } from './support/apps.js';
import { Pebble, hasPebble } from './support/pebble.js';
import { Platform } from './support/platform.js';
import { deployEcho, h2Request, h2Session, httpsGet, peerCert } from './support/tls-client.js';

describe.skipIf(!hasPebble())('HTTPS: automatic certificates over ACME (pebble)', () => {
  let pebble: Pebble;
  let px: Platform;
  let root: string;
  const repos: AppRepo[] = [];
  const certsJson = async (app: string) => JSON.parse(await px.ok(['certs', app, '--json']));

  beforeAll(async () => {
    pebble = new Pebble();
    await pebble.prepare();
    px = await Platform.start(['--acme-directory', pebble.directoryUrl, '--acme-ca', pebble.ca.certFile, '--acme-email', 'ops@pxtest.org']);
    await pebble.start({ httpPort: px.info.httpPort });
    root = await pebble.root();
    repos.push(await deployEcho(px, 'one', ['one.pxtest.org']));
    repos.push(await deployEcho(px, 'two', ['two.pxtest.org', 'www.two.pxtest.org']));
  });
  afterAll(async () => {
    for (const r of repos) r.remove();
    await px?.destroy();
    await pebble?.destroy();
  });

  it('issues certificates for two apps; SNI picks each host\'s own; apps answer over HTTPS and HTTP/2', async () => {
    const one = await px.cli(['certs:auto', 'one']);
    expect(one.code, one.stderr).toBe(0);
    expect(one.stdout).toMatch(/one.pxtest.org: certificate from .*Pebble/);
    const two = await px.cli(['certs:auto', 'two']);
    expect(two.code, two.stderr).toBe(0);

    for (const [host, app] of [['one.pxtest.org', 'one'], ['two.pxtest.org', 'two'], ['www.two.pxtest.org', 'two']]) {
      const peer = await peerCert(px.info.httpsPort!, host, root);
      expect(peer.authorized, `${host}: ${peer.authorizationError}`).toBe(true);
      expect(peer.hosts).toBe(`DNS:${host}`);
      const r = await httpsGet(px.info.httpsPort!, host, '/', { ca: root });
      expect(JSON.parse(r.body).app).toBe(app);
    }
    // Each key 0600 in DATA/certs; the account key too.
    expect(fs.statSync(path.join(px.data, 'certs', 'apps', 'one', 'auto', 'one.pxtest.org.pem')).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.join(px.data, 'certs', 'account-key.pem')).mode & 0o777).toBe(0o600);

    const listed = await certsJson('two');
    expect(listed.settings.auto).toBe(true);
    const auto = listed.certificates.filter((c: { source: string }) => c.source === 'auto');
    expect(auto.map((c: { hosts: string[] }) => c.hosts[0]).sort()).toEqual(['two.pxtest.org', 'www.two.pxtest.org']);
    for (const c of auto) expect(c).toMatchObject({ lastError: null, issuer: expect.stringMatching(/Pebble/) });
    // two.localhost is not public: it keeps the self-signed certificate, and no ACME order was made for it.
    expect(listed.hosts.find((h: { host: string }) => h.host === 'two.localhost').source).toBe('self-signed');

    const s = h2Session(px.info.httpsPort!, 'one.pxtest.org', root);
    try {
      const a = await h2Request(s, { ':path': '/over-h2', ':method': 'PUT', 'content-length': '5' }, 'hello');
      expect(a.status).toBe(200);
      const seen = JSON.parse(a.body);
      expect(seen).toMatchObject({ app: 'one', method: 'PUT', url: '/over-h2', body: 'hello' });
      expect(seen.headers['x-forwarded-proto']).toBe('https');
      expect(seen.headers['x-forwarded-port']).toBe(String(px.info.httpsPort));
    } finally {
      s.close();
    }

    // Plain HTTP now goes to HTTPS, the ACME path excepted.
    const r = await get(px.info.httpPort, 'www.two.pxtest.org', '/page');
    expect(r.status).toBe(308);
    expect(r.headers.location).toBe(`https://www.two.pxtest.org:${px.info.httpsPort}/page`);
    expect((await get(px.info.httpPort, 'www.two.pxtest.org', '/.well-known/acme-challenge/x')).status).toBe(404);
  });

  it('a domain whose challenge cannot succeed records the error and backs off; every app keeps serving; a domain added later gets its certificate by itself', async () => {
    // Nothing listens on 127.0.0.2: the CA's HTTP-01 request is refused.
    await pebble.addA('bad.pxtest.org', '127.0.0.2');
    await px.ok(['domains:add', 'one', 'bad.pxtest.org']);
    await px.ok(['domains:add', 'one', 'late.pxtest.org']);
    const failed = await waitFor(async () => {
      const d = await certsJson('one');
      const bad = d.certificates.find((c: { hosts: string[] }) => c.hosts[0] === 'bad.pxtest.org');
      return bad?.lastError ? bad : undefined;
    }, 60_000, 'the failed attempt to be recorded');
    expect(failed.notAfter).toBeNull();
    expect(Date.parse(failed.nextAttempt) - Date.parse(failed.lastErrorAt)).toBeGreaterThanOrEqual(4 * 60_000);
    const late = await waitFor(async () => {
      const peer = await peerCert(px.info.httpsPort!, 'late.pxtest.org', root);
      return peer.authorized ? peer : undefined;
    }, 60_000, 'late.pxtest.org to get its certificate');
    expect(late.hosts).toBe('DNS:late.pxtest.org');

    // The failing host answers over plain HTTP (no redirect without a certificate) and over HTTPS with the default one.
    const http = await get(px.info.httpPort, 'bad.pxtest.org', '/');
    expect(http.status).toBe(200);
    expect(JSON.parse(http.body).app).toBe('one');
    expect((await peerCert(px.info.httpsPort!, 'bad.pxtest.org')).issuer).toBe('platformx self-signed');
    for (const host of ['one.pxtest.org', 'two.pxtest.org']) {
      expect((await httpsGet(px.info.httpsPort!, host, '/', { ca: root })).status).toBe(200);
    }
    const logs = await px.ok(['logs', 'one', '--num', '200']);
    expect(logs).toMatch(/platform\[certs\]: certificate for bad.pxtest.org failed \(1 in a row\)/);
    const text = await px.ok(['certs', 'one']);
    expect(text).toMatch(/bad.pxtest.org\s+auto\s+-\s+-\s+failing since/);

    // A removed domain retires its certificate and its record.
    await px.ok(['domains:remove', 'one', 'late.pxtest.org']);
    expect(fs.existsSync(path.join(px.data, 'certs', 'apps', 'one', 'auto', 'late.pxtest.org.pem'))).toBe(false);
    expect((await certsJson('one')).certificates.some((c: { hosts: string[] }) => c.hosts[0] === 'late.pxtest.org')).toBe(false);
  });

  it('after a restart with the CA down, the same certificates serve and none is requested again', async () => {
    const before = await peerCert(px.info.httpsPort!, 'one.pxtest.org', root);
    await pebble.stopCa();
    await px.stop();
    const from = px.output.length;
    await px.boot();
    const after = await peerCert(px.info.httpsPort!, 'one.pxtest.org', root);
    expect(after.serial).toBe(before.serial);
    expect(after.authorized).toBe(true);
    expect((await httpsGet(px.info.httpsPort!, 'two.pxtest.org', '/', { ca: root })).status).toBe(200);
    // Only the failing domain would be due, and it is still backing off: no attempt, no new error.
    await new Promise((r) => setTimeout(r, 1500));
    expect(px.output.slice(from)).not.toMatch(/certs: .*(failed|issued|renewed)/);
    const d = await certsJson('two');
    for (const c of d.certificates.filter((x: { source: string }) => x.source === 'auto')) expect(c.lastError).toBeNull();
  });
});
