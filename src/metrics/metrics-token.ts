import crypto from 'node:crypto';
import fs from 'node:fs';
import { hashToken } from '../maestro/tokens.js';

import { writeFileAtomic } from '../state/atomic-file.js';
import { UserError } from '../errors.js';

/**
 * The bearer token that lets a Prometheus server read /metrics. Only its sha256
 * is kept (in DATA/metrics-token, mode 0600); the secret is shown once.
 */
export class MetricsToken {
  constructor(private readonly file: string) {}

  private stored(): Buffer | null {
    try {
      const hex = fs.readFileSync(this.file, 'utf8').trim();
      return /^[0-9a-f]{64}$/.test(hex) ? Buffer.from(hex, 'hex') : null;
    } catch {
      return null;
    }
  }

  /** A new secret; with rotate it replaces the one there is, else there must be none yet. */
  issue(rotate: boolean): string {
    if (!rotate && this.stored()) {
      throw new UserError("a metrics token exists and only its hash is kept: run 'platformx metrics:token --rotate' for a new one (the old one stops working)");
    }
    const secret = `pxm_${crypto.randomBytes(24).toString('base64url')}`;
    writeFileAtomic(this.file, hashToken(secret) + '\n');
    return secret;
  }

  /** True when header is `Bearer SECRET` of the current token, compared in constant time. */
  allows(header: string | undefined): boolean {
    const stored = this.stored();
    const m = /^Bearer ([A-Za-z0-9_-]{1,200})$/.exec(header ?? '');
    if (!stored || !m) return false;
    return crypto.timingSafeEqual(stored, Buffer.from(hashToken(m[1]!), 'hex'));
  }
}
