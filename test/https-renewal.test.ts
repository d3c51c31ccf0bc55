// Renewal against a real ACME CA (pebble) issuing short-lived certificates:
// a certificate a third into its life is replaced by itself, new handshakes
// get the new one at once, and connections open across the switch are unharmed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor, type AppRepo } from './support/apps.js';
import { Pebble, hasPebble } from './support/pebble.js';
import { Platform } from './support/platform.js';
import { deployEcho, h2Request, h2Session, httpsGet, peerCert } from './support/tls-client.js';
import https from 'node:https';

const LIFETIME_S = 30;

describe.skipIf(!hasPebble())('HTTPS: renewal of a certificate close to expiry', () => {
  let pebble: Pebble;
  let px: Platform;
  let repo: AppRepo;
  let root: string;

  beforeAll(async () => {
    pebble = new Pebble();
    await pebble.prepare();
    px = await Platform.start(['--acme-directory', pebble.directoryUrl, '--acme-ca', pebble.ca.certFile]);
    await pebble.start({ httpPort: px.info.httpPort, validitySeconds: LIFETIME_S });
    root = await pebble.root();
    repo = await deployEcho(px, 'renew', ['renew.pxtest.org']);
  });
  afterAll(async () => {
    repo?.remove();
    await px?.destroy();
    await pebble?.destroy();
  });

  it('replaces the certificate before it expires, without a restart, and in-flight connections keep working', async () => {
    const on = await px.cli(['certs:auto', 'renew']);
    expect(on.code, on.stderr).toBe(0);
    const first = await peerCert(px.info.httpsPort!, 'renew.pxtest.org', root);
    expect(first.authorized).toBe(true);
    const listed = JSON.parse(await px.ok(['certs', 'renew', '--json'])).certificates.find((c: { source: string }) => c.source === 'auto');
    const life = Date.parse(listed.notAfter) - Date.parse(listed.renewAt);
    // Short-lived: renewal is due once a third of its life has passed, not at once.
    expect(life).toBeGreaterThan(0);
    expect(life).toBeLessThan(LIFETIME_S * 1000);

    // Traffic on connections opened before the renewal: one HTTP/2 session and keep-alive HTTP/1.1 sockets.
    const session = h2Session(px.info.httpsPort!, 'renew.pxtest.org', root);
    const agent = new https.Agent({ keepAlive: true, maxSockets: 2 });
    let running = true;
    let ok = 0;
    const failures: string[] = [];
    const loops = [
      (async () => {
        while (running) {
          try {
            const r = await h2Request(session, { ':path': '/h2' });
            if (r.status === 200) ok++;
            else failures.push(`h2 ${r.status}`);
          } catch (err) {
            failures.push(`h2 ${(err as Error).message}`);
          }
          await new Promise((r) => setTimeout(r, 20));
        }
      })(),
      (async () => {
        while (running) {
          try {
            const r = await httpsGet(px.info.httpsPort!, 'renew.pxtest.org', '/h1', { ca: root, agent });
            if (r.status === 200) ok++;
            else failures.push(`h1 ${r.status}`);
          } catch (err) {
            failures.push(`h1 ${(err as Error).message}`);
          }
          await new Promise((r) => setTimeout(r, 20));
        }
      })(),
    ];
    try {
      const renewed = await waitFor(async () => {
        const peer = await peerCert(px.info.httpsPort!, 'renew.pxtest.org', root);
        return peer.serial !== first.serial ? peer : undefined;
      }, LIFETIME_S * 1000, 'the renewed certificate');
      expect(renewed.authorized).toBe(true);
      const okAtSwitch = ok;
      await new Promise((r) => setTimeout(r, 1000));
      expect(ok).toBeGreaterThan(okAtSwitch);
    } finally {
      running = false;
      await Promise.all(loops);
      session.close();
      agent.destroy();
    }
    expect(failures).toEqual([]);
    // The traffic above writes thousands of router lines after the renewal: read them all.
    const logs = await px.ok(['logs', 'renew', '--num', '100000']);
    expect(logs).toMatch(/platform\[certs\]: certificate for renew.pxtest.org renewed/);
    expect(px.output).toMatch(/certs: renew: certificate for renew.pxtest.org renewed/);
  });
});
