// The server's SSH host key: made once, kept in the data folder, so the
// fingerprint users pin in known_hosts never changes across restarts.
import fs from 'node:fs';
import path from 'node:path';
import ssh2 from 'ssh2';
import { fingerprintOf } from './public-keys.js';

const { utils } = ssh2;

export interface HostKey {
  /** OpenSSH private key text, for ssh2's hostKeys. */
  privateKey: string;
  /** "ssh-ed25519 AAAA…" */
  publicKey: string;
  /** "SHA256:…", as ssh-keygen -lf and the ssh client print it. */
  fingerprint: string;
}

function describe(file: string, privateKey: string): HostKey {
  const parsed = utils.parseKey(privateKey);
  if (parsed instanceof Error || Array.isArray(parsed) || !parsed.isPrivateKey()) {
    const why = parsed instanceof Error ? parsed.message : 'not a private key';
    // Never regenerate over a damaged key: clients would see a changed host key with no explanation.
    throw new Error(`cannot use SSH host key ${file}: ${why}; restore it from a backup, or delete it to make a new one (clients will then see a changed host key)`);
  }
  const blob = parsed.getPublicSSH();
  return { privateKey, publicKey: `${parsed.type} ${blob.toString('base64')}`, fingerprint: fingerprintOf(blob) };
}

/** Enough that a parsable key is certain: each try fails with probability 1/256. */
const KEYGEN_TRIES = 16;

/**
 * ssh2 drops every leading zero byte of the public key when it converts a new
 * ed25519 key (mscdex/ssh2#1513), so about 1 key in 256 comes out malformed,
 * and the server would refuse it at once and at every start after. Such a key
 * is simply drawn again.
 */
export function generateEd25519(): { private: string; public: string } {
  for (let i = 0; i < KEYGEN_TRIES; i++) {
    const pair = utils.generateKeyPairSync('ed25519', { comment: 'platformx host key' });
    if (!(utils.parseKey(pair.private) instanceof Error) && !(utils.parseKey(pair.public) instanceof Error)) return pair;
  }
  throw new Error(`could not generate a usable ed25519 host key in ${KEYGEN_TRIES} tries`);
}

/** Loads the host key at `file`, creating an ed25519 key (mode 0600) the first time. */
export function loadOrCreateHostKey(file: string): HostKey {
  try {
    const st = fs.statSync(file);
    // sshd refuses a readable host key; we own the data folder, so we tighten it instead.
    if ((st.mode & 0o077) !== 0) fs.chmodSync(file, 0o600);
    return describe(file, fs.readFileSync(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const pair = generateEd25519();
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = fs.openSync(tmp, 'wx', 0o600);
  try {
    fs.writeSync(fd, pair.private);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  try {
    // link, not rename: if another process made the key meanwhile, theirs wins and we use it.
    fs.linkSync(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  const key = describe(file, fs.readFileSync(file, 'utf8'));
  fs.writeFileSync(`${file}.pub`, `${key.publicKey} platformx host key\n`, { mode: 0o644 });
  return key;
}
