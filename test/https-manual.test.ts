// HTTPS with the self-signed default, manual certificates and the operator's
// default certificate, through the real server, CLI and proxy (no CA needed).
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { get, type AppRepo } from './support/apps.js';
import { TestCa, hasPebble } from './support/pebble.js';
import { Platform } from './support/platform.js';
import { deployEcho, h2Request, h2Session, httpsGet, peerCert } from './support/tls-client.js';

describe.skipIf(!hasPebble())('HTTPS: self-signed, manual and default certificates', () => {
  let px: Platform;
  let ca: TestCa;
  let repo: AppRepo;
  const certsJson = async (app: string) => JSON.parse(await px.ok(['certs', app, '--json']));

  beforeAll(async () => {
    px = await Platform.start();
    ca = new TestCa(fs.mkdtempSync(path.join(px.data, 'ca-')));
    repo = await deployEcho(px, 'shop', ['shop.pxtest.org', 'www.shop.pxtest.org']);
  });
  afterAll(async () => {
    repo?.remove();
    await px?.destroy();
  });

  it('serves APP.localhost out of the box with the self-signed certificate made at first start, over HTTP/1.1 and HTTP/2', async () => {
    expect(px.info.httpsPort).toBeGreaterThan(0);
    const peer = await peerCert(px.info.httpsPort!, 'shop.localhost');
    expect(peer.issuer).toBe('platformx self-signed');
    expect(peer.hosts).toContain('DNS:*.localhost');
    expect(peer.alpn).toBe('h2');
    const stat = fs.statSync(path.join(px.data, 'certs', 'self-signed.pem'));
    expect(stat.mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.join(px.data, 'certs')).mode & 0o777).toBe(0o700);

    const r = await httpsGet(px.info.httpsPort!, 'shop.localhost', '/x?y=1', { headers: { 'x-forwarded-port': '1' } });
    expect(r.status).toBe(200);
    const seen = JSON.parse(r.body);
    expect(seen.headers['x-forwarded-proto']).toBe('https');
    expect(seen.headers['x-forwarded-port']).toBe(String(px.info.httpsPort));
    expect(r.headers['set-cookie']).toEqual(['a=1', 'b=2']);
    // Self-signed is no reason to redirect plain HTTP.
    expect((await get(px.info.httpPort, 'shop.localhost')).status).toBe(200);

    const s = h2Session(px.info.httpsPort!, 'shop.localhost');
    try {
      const a = await h2Request(s, { ':path': '/h2', ':method': 'POST', cookie: ['c=1', 'd=2'] }, 'hello over h2');
      expect(a.status).toBe(200);
      const got = JSON.parse(a.body);
      expect(got).toMatchObject({ method: 'POST', url: '/h2', body: 'hello over h2' });
      expect(got.headers.host).toBe(`shop.localhost:${px.info.httpsPort}`);
      expect(got.headers.cookie).toBe('c=1; d=2');
      expect(a.headers['set-cookie']).toEqual(['a=1', 'b=2']);
      expect(a.headers.connection).toBeUndefined();
    } finally {
      s.close();
    }
  });

  it('refuses a key that does not match, or a certificate for none of the app\'s hosts, and changes nothing', async () => {
    const good = ca.issue('shop', ['shop.pxtest.org', 'www.shop.pxtest.org']);
    const other = ca.issue('other', ['shop.pxtest.org']);
    const before = await certsJson('shop');
    const bad = await px.cli(['certs:add', 'shop', '--cert', good.cert, '--key', other.key]);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/private key does not match the certificate/);
    const stranger = ca.issue('stranger', ['elsewhere.pxtest.org']);
    const wrongHost = await px.cli(['certs:add', 'shop', '--cert', stranger.cert, '--key', stranger.key]);
    expect(wrongHost.code).toBe(1);
    expect(wrongHost.stderr).toMatch(/covers elsewhere.pxtest.org, none of shop's hosts/);
    expect(await certsJson('shop')).toEqual(before);
    expect(fs.existsSync(path.join(px.data, 'certs', 'apps', 'shop', 'manual.pem'))).toBe(false);
    expect((await peerCert(px.info.httpsPort!, 'shop.pxtest.org')).issuer).toBe('platformx self-signed');
  });

  it('serves a manual certificate by SNI, redirects plain HTTP to it, and adds HSTS when asked', async () => {
    const { cert, key } = ca.issue('shop2', ['shop.pxtest.org', 'www.shop.pxtest.org']);
    const out = await px.ok(['certs:add', 'shop', '--cert', cert, '--key', key]);
    expect(out).toMatch(/Added a certificate to shop: shop.pxtest.org, www.shop.pxtest.org/);
    expect(fs.statSync(path.join(px.data, 'certs', 'apps', 'shop', 'manual.pem')).mode & 0o777).toBe(0o600);
    for (const host of ['shop.pxtest.org', 'www.shop.pxtest.org']) {
      const peer = await peerCert(px.info.httpsPort!, host, ca.pem);
      expect(peer.authorized).toBe(true);
      expect(peer.issuer).toBe('platformx test CA');
    }
    const ok = await httpsGet(px.info.httpsPort!, 'shop.pxtest.org', '/', { ca: ca.pem });
    expect(JSON.parse(ok.body).app).toBe('shop');
    expect(ok.headers['strict-transport-security']).toBeUndefined();

    const redirected = await get(px.info.httpPort, 'shop.pxtest.org', '/a/b?c=d');
    expect(redirected.status).toBe(308);
    expect(redirected.headers.location).toBe(`https://shop.pxtest.org:${px.info.httpsPort}/a/b?c=d`);
    // Not redirected: the legacy ping, the ACME path (answered by the proxy itself), the host without a certificate.
    const ping = await get(px.info.httpPort, 'shop.pxtest.org', '/_ping_');
    expect(ping.status).toBe(200);
    expect(JSON.parse(ping.body).url).toBe('/_ping_');
    const acme = await get(px.info.httpPort, 'shop.pxtest.org', '/.well-known/acme-challenge/unknown-token');
    expect(acme.status).toBe(404);
    expect(acme.body).toMatch(/no such ACME challenge/);
    expect((await get(px.info.httpPort, 'shop.localhost')).status).toBe(200);

    await px.ok(['certs:redirect', 'shop', 'off']);
    expect((await get(px.info.httpPort, 'shop.pxtest.org')).status).toBe(200);
    await px.ok(['certs:redirect', 'shop', 'on']);
    expect((await get(px.info.httpPort, 'shop.pxtest.org')).status).toBe(308);

    await px.ok(['certs:hsts', 'shop', 'on']);
    const h1 = await httpsGet(px.info.httpsPort!, 'shop.pxtest.org', '/', { ca: ca.pem });
    expect(h1.headers['strict-transport-security']).toBe('max-age=15724800');
    expect(h1.headers['set-cookie']).toEqual(['a=1', 'b=2']);
    const s = h2Session(px.info.httpsPort!, 'shop.pxtest.org', ca.pem);
    try {
      const h2 = await h2Request(s, { ':path': '/' });
      expect(h2.headers['strict-transport-security']).toBe('max-age=15724800');
    } finally {
      s.close();
    }
    // Never on plain HTTP, never on hosts without a valid certificate.
    expect((await get(px.info.httpPort, 'shop.pxtest.org')).headers['strict-transport-security']).toBeUndefined();
    expect((await httpsGet(px.info.httpsPort!, 'shop.localhost')).headers['strict-transport-security']).toBeUndefined();
    await px.ok(['certs:hsts', 'shop', 'off']);

    const listed = await certsJson('shop');
    expect(listed.certificates[0]).toMatchObject({ source: 'manual', hosts: ['shop.pxtest.org', 'www.shop.pxtest.org'], issuer: 'platformx test CA' });
    const auto = await px.cli(['certs:auto', 'shop']);
    expect(auto.code).toBe(1);
    expect(auto.stderr).toMatch(/has a manual certificate: remove it first/);
  });

  it('WebSockets work over TLS', async () => {
    const tls = await import('node:tls');
    const text = await new Promise<string>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: px.info.httpsPort!, servername: 'shop.pxtest.org', ca: ca.pem, ALPNProtocols: ['http/1.1'] }, () => {
        s.write(`GET /ws HTTP/1.1\r\nHost: shop.pxtest.org\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`);
      });
      let got = '';
      s.on('data', (d) => {
        got += d;
        if (got.includes('\r\n\r\n') && !got.includes('echo:')) s.write('ping');
        if (got.includes('echo:ping')) {
          s.destroy();
          resolve(got);
        }
      });
      s.on('error', reject);
    });
    expect(text).toMatch(/^HTTP\/1.1 101/);
    expect(text).toMatch(/x-proto: https/i);
    expect(text).toMatch(/echo:ping/);
  });

  it('the default certificate answers for hosts under the base domain; certs:remove goes back to what served before', async () => {
    const wildcard = ca.issue('wild', ['*.localhost']);
    const notBase = ca.issue('notbase', ['example.net']);
    const refused = await px.cli(['certs:add', '--default', '--cert', notBase.cert, '--key', notBase.key]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/no host under the base domain localhost/);
    await px.ok(['certs:add', '--default', '--cert', wildcard.cert, '--key', wildcard.key]);
    const peer = await peerCert(px.info.httpsPort!, 'shop.localhost', ca.pem);
    // Node (like browsers) matches no wildcard right under a one-label name, so only the chain is checked here.
    expect(peer.issuer).toBe('platformx test CA');
    expect(peer.authorizationError).toMatch(/ERR_TLS_CERT_ALTNAME_INVALID|Hostname/);
    expect(peer.hosts).toBe('DNS:*.localhost');
    // No SNI (an IP in the URL): the default certificate too.
    expect((await peerCert(px.info.httpsPort!, null)).hosts).toBe('DNS:*.localhost');
    // A valid certificate now covers shop.localhost: it redirects.
    expect((await get(px.info.httpPort, 'shop.localhost')).status).toBe(308);

    await px.ok(['certs:remove', 'shop']);
    expect((await peerCert(px.info.httpsPort!, 'shop.pxtest.org')).hosts).toBe('DNS:*.localhost');
    expect((await get(px.info.httpPort, 'shop.pxtest.org')).status).toBe(200);
    const again = await px.cli(['certs:remove', 'shop']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/has no manual certificate/);
  });

  it('certificates survive a restart', async () => {
    const { cert, key } = ca.issue('shop3', ['shop.pxtest.org']);
    await px.ok(['certs:add', 'shop', '--cert', cert, '--key', key]);
    const before = await peerCert(px.info.httpsPort!, 'shop.pxtest.org', ca.pem);
    const selfSigned = fs.readFileSync(path.join(px.data, 'certs', 'self-signed.pem'), 'utf8');
    await px.stop();
    await px.boot();
    const after = await peerCert(px.info.httpsPort!, 'shop.pxtest.org', ca.pem);
    expect(after.serial).toBe(before.serial);
    expect(after.authorized).toBe(true);
    expect(fs.readFileSync(path.join(px.data, 'certs', 'self-signed.pem'), 'utf8')).toBe(selfSigned);
    // Keys are never logged.
    expect(px.output).not.toMatch(/PRIVATE KEY/);
  });
});
