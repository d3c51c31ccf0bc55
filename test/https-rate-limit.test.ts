// A CA that answers with a rate limit: the answer is recorded with its
// Retry-After and no further request reaches the CA, not on another
// certs:auto, not after a restart. The CA is a raw HTTPS server on loopback
// speaking just enough ACME (directory, nonce) to be asked for an account.
import fs from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { get } from './support/apps.js';
import { TestCa, hasPebble } from './support/pebble.js';
import { Platform } from './support/platform.js';

describe.skipIf(!hasPebble())('HTTPS: a CA rate limit is recorded and backed off, never retried in a loop', () => {
  let px: Platform;
  let ca: https.Server;
  const requests: string[] = [];

  beforeAll(async () => {
    const dir = fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', 'pxrl-'));
    const testCa = new TestCa(dir);
    const tls = testCa.issue('ca-listener', ['127.0.0.1']);
    ca = https.createServer({ key: fs.readFileSync(tls.key), cert: fs.readFileSync(tls.cert) }, (req, res) => {
      requests.push(`${req.method} ${req.url}`);
      req.resume();
      const base = `https://127.0.0.1:${(ca.address() as AddressInfo).port}`;
      if (req.url === '/dir') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ newNonce: `${base}/nonce`, newAccount: `${base}/account`, newOrder: `${base}/order`, revokeCert: `${base}/revoke`, keyChange: `${base}/key` }));
      } else if (req.url === '/nonce') {
        res.writeHead(200, { 'replay-nonce': `n${requests.length}`, 'cache-control': 'no-store' });
        res.end();
      } else {
        res.writeHead(429, { 'content-type': 'application/problem+json', 'retry-after': '7200', 'replay-nonce': 'n' });
        res.end(JSON.stringify({ type: 'urn:ietf:params:acme:error:rateLimited', detail: 'too many new registrations from this address', status: 429 }));
      }
    });
    await new Promise<void>((r) => ca.listen(0, '127.0.0.1', r));
    px = await Platform.start(['--acme-directory', `https://127.0.0.1:${(ca.address() as AddressInfo).port}/dir`, '--acme-ca', testCa.certFile]);
    await px.ok(['apps:create', 'busy', '--domain', 'busy.pxtest.org']);
  });
  afterAll(async () => {
    await px?.destroy();
    await new Promise((r) => ca?.close(r));
  });

  it('records the rate limit with its Retry-After; neither certs:auto nor a restart asks the CA again before then', async () => {
    const first = await px.cli(['certs:auto', 'busy']);
    expect(first.code).toBe(1);
    expect(first.stderr).toMatch(/busy.pxtest.org: no certificate yet: rate limited by the CA: too many new registrations/);
    const asked = requests.length;
    expect(requests).toContain('POST /account');
    const [view] = JSON.parse(await px.ok(['certs', 'busy', '--json'])).certificates;
    expect(Date.parse(view.nextAttempt) - Date.parse(view.lastErrorAt)).toBeGreaterThanOrEqual(7200_000 - 5000);

    const again = await px.cli(['certs:auto', 'busy']);
    expect(again.code).toBe(1);
    await px.stop();
    await px.boot();
    await new Promise((r) => setTimeout(r, 1000));
    expect(requests.length).toBe(asked);
    // Serving is untouched: plain HTTP answers (no certificate, no redirect).
    expect((await get(px.info.httpPort, 'busy.pxtest.org')).status).toBe(503);
    expect(fs.readFileSync(path.join(px.data, 'certs', 'status.json'), 'utf8')).toMatch(/rate-limited/);
  });
});
