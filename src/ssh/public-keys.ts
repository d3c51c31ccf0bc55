// OpenSSH public keys as users paste them: parsed and checked with ssh2's own
// parser, so what keys:add accepts is exactly what the server can verify.
import { createHash, createPublicKey } from 'node:crypto';
import ssh2 from 'ssh2';
import type { ParsedKey } from 'ssh2';
import { UserError } from '../errors.js';

const { utils } = ssh2;

/** Key types keys:add takes; DSA is refused (OpenSSH itself dropped it). */
const ACCEPTED_TYPES = new Set(['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'ssh-rsa']);
const MIN_RSA_BITS = 2048;
const MAX_KEY_TEXT = 16 * 1024;

export interface PublicKeyInfo {
  /** "ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa", … */
  type: string;
  /** Canonical one-line form "TYPE BASE64" (the comment is dropped: it is free text from the user). */
  line: string;
  /** OpenSSH's "SHA256:…" fingerprint. */
  fingerprint: string;
  comment: string;
  parsed: ParsedKey;
}

/** OpenSSH fingerprint of a public key blob: "SHA256:" + unpadded base64 of its sha256. */
export function fingerprintOf(blob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

const HOW = "give the one-line public key from a .pub file, like 'ssh-ed25519 AAAA… you@host' (make one with ssh-keygen -t ed25519)";

/**
 * Parses one OpenSSH public key line. Throws a one-line UserError for a private
 * key (so it is never stored), several keys, another format or garbage.
 */
export function parsePublicKey(text: string): PublicKeyInfo {
  if (typeof text !== 'string' || text.trim() === '') throw new UserError(`no public key given: ${HOW}`);
  if (text.length > MAX_KEY_TEXT) throw new UserError(`public key too long (${text.length} bytes): ${HOW}`);
  if (/PRIVATE KEY|PuTTY-User-Key-File/.test(text)) {
    throw new UserError('that is a private key: never share it; give the matching .pub file (for example ~/.ssh/id_ed25519.pub)');
  }
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  if (lines.length !== 1) throw new UserError(`expected exactly one public key line, got ${lines.length}: add keys one at a time`);
  const line = lines[0]!;
  if (/^sk-/.test(line)) throw new UserError('security-key (FIDO) keys are not supported: use an ed25519, ecdsa or RSA key (ssh-keygen -t ed25519)');
  if (!/^(ssh-|ecdsa-)/.test(line)) throw new UserError(`not an OpenSSH public key (it must start with its type, like ssh-ed25519): ${HOW}`);
  const parsed = utils.parseKey(line);
  if (parsed instanceof Error || Array.isArray(parsed)) throw new UserError(`malformed public key: ${HOW}`);
  if (parsed.isPrivateKey()) throw new UserError('that is a private key: never share it; give the matching .pub file');
  if (!ACCEPTED_TYPES.has(parsed.type)) {
    throw new UserError(`key type '${parsed.type}' is not accepted: use ed25519, ecdsa or RSA (ssh-keygen -t ed25519)`);
  }
  if (parsed.type === 'ssh-rsa') {
    const bits = createPublicKey(parsed.getPublicPEM()).asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS) throw new UserError(`RSA key of ${bits} bits is too weak: use at least ${MIN_RSA_BITS} bits, or ssh-keygen -t ed25519`);
  }
  const blob = parsed.getPublicSSH();
  return {
    type: parsed.type,
    line: `${parsed.type} ${blob.toString('base64')}`,
    fingerprint: fingerprintOf(blob),
    comment: parsed.comment,
    parsed,
  };
}

/** True when a key blob presented by a client is the stored key (same type and bytes). */
export function sameKey(stored: PublicKeyInfo, presented: Buffer): boolean {
  const blob = stored.parsed.getPublicSSH();
  return blob.length === presented.length && blob.equals(presented);
}
