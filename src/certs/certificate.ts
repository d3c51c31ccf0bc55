// Certificates as the platform handles them: a PEM bundle of one private key
// and a chain, read with Node's own X.509 parser. Every check that can refuse
// an operator's certificate throws a UserError naming what was wrong.
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { UserError } from '../errors.js';


export type CertSource = 'auto' | 'manual' | 'default' | 'self-signed';

export interface Certificate {
  /** PEM of the private key: never logged, never shown. */
  readonly key: string;
  /** PEM of the leaf certificate followed by its intermediates. */
  readonly chain: string;
  /** DNS names the leaf covers (subjectAltName, else its CN), lower-cased; may hold wildcards. */
  readonly hosts: readonly string[];
  readonly issuer: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly serial: string;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n[A-Za-z0-9+/=\r\n]+?-----END \1-----/g;

/**
 * Parses a bundle: certificates (leaf first) and exactly one private key, in
 * any order. `what` names the input in errors ("the --cert and --key files").
 */
export function parseBundle(pem: string, what: string): Certificate {
  const certs: string[] = [];
  const keys: string[] = [];
  for (const m of pem.matchAll(PEM_BLOCK)) {
    if (m[1] === 'CERTIFICATE') certs.push(m[0]);
    else if (m[1]!.endsWith('PRIVATE KEY')) keys.push(m[0]);
  }
  if (certs.length === 0) throw new UserError(`${what} hold no PEM certificate (-----BEGIN CERTIFICATE-----): give the certificate, then its chain`);
  if (keys.length !== 1) throw new UserError(`${what} hold ${keys.length} private keys: give exactly one, unencrypted (-----BEGIN PRIVATE KEY-----)`);
  let leaf: X509Certificate;
  let key: KeyObject;
  try {
    leaf = new X509Certificate(certs[0]!);
    for (const c of certs.slice(1)) new X509Certificate(c);
  } catch (err) {
    throw new UserError(`${what}: a certificate cannot be read (${(err as Error).message}): give PEM certificates`);
  }
  try {
    key = createPrivateKey(keys[0]!);
  } catch (err) {
    throw new UserError(`${what}: the private key cannot be read (${(err as Error).message}); an encrypted key must be decrypted first (openssl pkey -in KEY -out PLAIN)`);
  }
  if (!leaf.checkPrivateKey(key)) throw new UserError(`${what}: the private key does not match the certificate: give the key the certificate was made for`);
  return {
    key: keys[0]! + '\n',
    chain: certs.join('\n') + '\n',
    hosts: leafHosts(leaf),
    issuer: commonName(leaf.issuer) ?? leaf.issuer.replace(/\n/g, ', '),
    notBefore: new Date(leaf.validFrom),
    notAfter: new Date(leaf.validTo),
    serial: leaf.serialNumber.toLowerCase(),
  };
}

/** The bundle as stored in one file: key first, then the chain. */
export function bundlePem(cert: Pick<Certificate, 'key' | 'chain'>): string {
  return cert.key + cert.chain;
}

function leafHosts(leaf: X509Certificate): string[] {
  const san = leaf.subjectAltName;
  if (san) {
    return san.split(', ').filter((e) => e.startsWith('DNS:')).map((e) => e.slice(4).toLowerCase());
  }
  const cn = commonName(leaf.subject);
  return cn ? [cn.toLowerCase()] : [];
}

function commonName(dn: string): string | null {
  const line = dn.split('\n').find((l) => l.startsWith('CN='));
  return line ? line.slice(3) : null;
}

/** Whether the certificate's names cover host: exactly, or a wildcard for its first label. */
export function covers(cert: Pick<Certificate, 'hosts'>, host: string): boolean {
  const dot = host.indexOf('.');
  const wildcard = dot > 0 ? `*${host.slice(dot)}` : null;
  return cert.hosts.some((h) => h === host || h === wildcard);
}

/** In its validity period at `now`. */
export function isCurrent(cert: Pick<Certificate, 'notBefore' | 'notAfter'>, now = Date.now()): boolean {
  return cert.notBefore.getTime() <= now && now < cert.notAfter.getTime();
}
