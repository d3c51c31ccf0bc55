// The CA is told to check an HTTP-01 challenge only once the proxy answers its
// token. With proxy workers the token reaches each worker over IPC, later than
// the issuer set it, and pebble (PEBBLE_VA_NOSLEEP) checks at once: an issuer
// that did not wait got a 404 and no certificate. Real pebble, the real proxy
// and edge; only the hand-over to the proxy is slowed, as a loaded machine does.
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AcmeFailure, AcmeIssuer, ChallengeTokens } from '../src/certs/acme-issuer.js';
import { CertStore } from '../src/certs/cert-store.js';
import { edgeHook } from '../src/certs/edge.js';
import { startProxy, type RunningProxy } from '../src/proxy/proxy-server.js';
import { Pebble, hasPebble } from './support/pebble.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!hasPebble())('ACME: the CA checks a challenge only after the proxy has its token', () => {
  let pebble: Pebble;
  let proxy: RunningProxy;
  let dir: string;
  /** What the proxy answers from. */
  const served = new ChallengeTokens();
  const issuerFor = (tokens: ChallengeTokens) => new AcmeIssuer({ directoryUrl: pebble.directoryUrl, caPem: pebble.ca.pem, email: null, store: new CertStore(dir), tokens });

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pxacme-order-'));
    proxy = await startProxy({ host: '127.0.0.1', port: 0, edge: edgeHook({ index: { policy: () => undefined }, tokens: served, httpsPort: () => 0 }) });
    pebble = new Pebble();
    await pebble.prepare();
    await pebble.start({ httpPort: proxy.port });
  });
  afterAll(async () => {
    await proxy?.close();
    await pebble?.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a token that reaches the proxy 500 ms late still gets the certificate', async () => {
    const tokens = new ChallengeTokens();
    const arrived: string[] = [];
    tokens.onChange = async (token, entry) => {
      await sleep(500);
      if (entry) {
        served.add(token, entry.host, entry.keyAuthorization);
        arrived.push(token);
      } else served.remove(token);
    };
    const { chain } = await issuerFor(tokens).issue('late.pxtest.org');
    expect(new X509Certificate(chain).subjectAltName).toBe('DNS:late.pxtest.org');
    expect(arrived).toHaveLength(1);
    expect(pebble.output).toMatch(/Attempting to validate w\/ HTTP: http:\/\/late\.pxtest\.org:/);
    // Removed again once the order is done.
    expect(served.answer(arrived[0]!, 'late.pxtest.org')).toBeNull();
  });

  it('a token the proxy could not take fails the order with a one-line reason, and the CA is not asked to check', async () => {
    const tokens = new ChallengeTokens();
    tokens.onChange = async (_token, entry) => {
      if (entry) throw new Error('the data plane is gone');
    };
    const err = await issuerFor(tokens).issue('lost.pxtest.org').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AcmeFailure);
    expect((err as AcmeFailure).code).toBe('failed');
    expect((err as AcmeFailure).message).toBe('the proxy could not take the challenge token: the data plane is gone');
    // pebble logs each validation it tries (as the test above sees); none was for this name.
    expect(pebble.output).not.toMatch(/Attempting to validate w\/ HTTP: http:\/\/lost\.pxtest\.org:/);
  });
});
