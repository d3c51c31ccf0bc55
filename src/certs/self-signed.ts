// The certificate HTTPS answers with before the operator gives one: made once
// at first start for localhost and the base domain, so https://APP.localhost
// works out of the box (with the browser's warning a self-signed one brings).
import { randomBytes, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const LIFETIME_DAYS = 3 * 365;

/** The names the self-signed certificate covers for a base domain. */
export function selfSignedHosts(baseDomain: string): string[] {
  return [...new Set(['localhost', '*.localhost', baseDomain, `*.${baseDomain}`])];
}

/** A new ECDSA P-256 key and a self-signed certificate for hosts; both PEM. */
export async function makeSelfSigned(hosts: readonly string[]): Promise<{ key: string; chain: string }> {
  const crypto = webcrypto as unknown as Crypto;
  const keys = (await crypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    // A positive 16-byte serial: the top bit cleared keeps DER from reading it as negative.
    serialNumber: (randomBytes(16)[0]! & 0x7f).toString(16).padStart(2, '0') + randomBytes(15).toString('hex'),
    name: 'CN=platformx self-signed',
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + LIFETIME_DAYS * 86_400_000),
    signingAlgorithm: ALG,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(hosts.map((value) => ({ type: 'dns' as const, value }))),
    ],
  }, crypto);
  const pkcs8 = Buffer.from(await crypto.subtle.exportKey('pkcs8', keys.privateKey));
  const key = `-----BEGIN PRIVATE KEY-----\n${pkcs8.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END PRIVATE KEY-----\n`;
  return { key, chain: cert.toString('pem') + '\n' };
}
