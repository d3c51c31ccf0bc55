import crypto from 'node:crypto';
import type { TokenRecord } from '../state/types.js';

/** A new deploy token: the secret goes to the user once, only its hash is kept. */
export function newToken(): { record: TokenRecord; secret: string } {
  const id = `tok_${crypto.randomBytes(4).toString('hex')}`;
  const secret = `pxt_${crypto.randomBytes(24).toString('base64url')}`;
  return { record: { id, hash: hashToken(secret), createdAt: new Date().toISOString(), lastUsed: null }, secret };
}

export function hashToken(secret: string): string {
  return crypto.createHash('sha256').update(secret).digest('hex');
}

/** The token record whose hash matches secret, compared in constant time. */
export function findToken(tokens: readonly TokenRecord[], secret: string): TokenRecord | undefined {
  const hash = Buffer.from(hashToken(secret), 'hex');
  return tokens.find((t) => {
    const stored = Buffer.from(t.hash, 'hex');
    return stored.length === hash.length && crypto.timingSafeEqual(stored, hash);
  });
}
