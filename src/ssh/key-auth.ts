// Public-key authentication against the keys in the state store, read at every
// attempt so keys:add/remove/grant/revoke apply to the next connection.
import type { PublicKeyAuthContext } from 'ssh2';
import type { Caller } from '../control/types.js';
import type { StateStore } from '../state/store.js';
import type { KeyRecord } from '../state/types.js';
import { fingerprintOf, parsePublicKey, type PublicKeyInfo } from './public-keys.js';

/** Parsed stored keys, cached by their text: parsing on every attempt would cost a PEM conversion each. */
const parsedCache = new Map<string, PublicKeyInfo | null>();

function parsedStoredKey(record: KeyRecord): PublicKeyInfo | null {
  let info = parsedCache.get(record.publicKey);
  if (info === undefined) {
    try {
      info = parsePublicKey(record.publicKey);
    } catch {
      info = null;
    }
    if (parsedCache.size > 10_000) parsedCache.clear();
    parsedCache.set(record.publicKey, info);
  }
  return info;
}

export type KeyCheck =
  /** The key is known and the client only asked whether it would be accepted: reply "ok, sign". */
  | { result: 'probe' }
  | { result: 'accepted'; key: KeyRecord }
  | { result: 'rejected' };

/**
 * Checks a publickey request: the blob must be a stored key, the algorithm must
 * match it, and the signature over the session must verify with the stored key.
 * RSA signatures with SHA-1 (plain "ssh-rsa") are refused.
 */
export function checkPublicKey(store: StateStore, ctx: PublicKeyAuthContext): KeyCheck {
  const fingerprint = fingerprintOf(ctx.key.data);
  const record = store.get().keys.find((k) => k.fingerprint === fingerprint);
  if (!record) return { result: 'rejected' };
  const stored = parsedStoredKey(record);
  if (!stored || !stored.parsed.getPublicSSH().equals(ctx.key.data) || ctx.key.algo !== stored.type) return { result: 'rejected' };
  if (!ctx.signature || !ctx.blob) return { result: 'probe' };
  if (stored.type === 'ssh-rsa' && !ctx.hashAlgo) return { result: 'rejected' };
  const ok = stored.parsed.verify(ctx.blob, ctx.signature, ctx.hashAlgo);
  return ok === true ? { result: 'accepted', key: record } : { result: 'rejected' };
}

export function callerOf(key: KeyRecord): Caller {
  return { kind: 'key', name: key.name, admin: key.admin, apps: [...key.apps] };
}

const LAST_USED_RESOLUTION_MS = 60_000;

/** Records the key's last use; skipped within a minute of the last record, so a burst of pushes costs one write. */
export function recordKeyUse(store: StateStore, fingerprint: string, now = new Date()): void {
  const current = store.get().keys.find((k) => k.fingerprint === fingerprint);
  if (!current) return;
  if (current.lastUsed && now.getTime() - Date.parse(current.lastUsed) < LAST_USED_RESOLUTION_MS) return;
  store.update((draft) => {
    const k = draft.keys.find((x) => x.fingerprint === fingerprint);
    if (k) k.lastUsed = now.toISOString();
  });
}
