// Admission control for SSH connections: a cap in total and per client address,
// so one slow or abusive client cannot take every slot.

export interface SshLimits {
  /** Open connections at once, all clients together. */
  maxConnections: number;
  /** Open connections at once from one address. */
  maxConnectionsPerIp: number;
  /** Open channels (sessions, forwards) at once on one connection. */
  maxChannelsPerConnection: number;
  /** Failed authentication attempts (each refused key or password) before the connection is dropped. */
  maxAuthAttempts: number;
  /** Time from TCP accept to a successful authentication. */
  authTimeoutMs: number;
  /** An authenticated connection running nothing (no command, push or forward) is closed after this long. */
  idleTimeoutMs: number;
}

export const DEFAULT_SSH_LIMITS: SshLimits = {
  maxConnections: 64,
  maxConnectionsPerIp: 16,
  maxChannelsPerConnection: 8,
  maxAuthAttempts: 10,
  authTimeoutMs: 20_000,
  idleTimeoutMs: 5 * 60_000,
};

/** "::ffff:127.0.0.1" and "127.0.0.1" are one client. */
export function normalizeIp(ip: string | undefined): string {
  if (!ip) return 'unknown';
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

export class ConnectionCounter {
  private total = 0;
  private readonly perIp = new Map<string, number>();

  constructor(private readonly limits: Pick<SshLimits, 'maxConnections' | 'maxConnectionsPerIp'>) {}

  /** Takes a slot for `ip` and returns its release function, or a reason when full. */
  admit(ip: string): { release: () => void } | { refused: string } {
    if (this.total >= this.limits.maxConnections) return { refused: 'server busy: too many SSH connections, try again shortly' };
    const n = this.perIp.get(ip) ?? 0;
    if (n >= this.limits.maxConnectionsPerIp) return { refused: 'too many SSH connections from your address, close some and retry' };
    this.total++;
    this.perIp.set(ip, n + 1);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.total--;
        const left = (this.perIp.get(ip) ?? 1) - 1;
        if (left > 0) this.perIp.set(ip, left);
        else this.perIp.delete(ip);
      },
    };
  }

  get open(): number {
    return this.total;
  }
}
