import crypto from 'node:crypto';
import type { Caller } from '../control/types.js';

/** How long a printed login URL works (once). */
export const LOGIN_TTL_MS = 10 * 60_000;
/** A session ends after this long without a request… */
export const SESSION_IDLE_MS = 60 * 60_000;
/** …and in any case this long after its login. */
export const SESSION_MAX_MS = 12 * 60 * 60_000;
/** Unused login URLs kept at once; the oldest go first. */
const MAX_PENDING_LOGINS = 50;

/** Who ran dashboard:login (an admin): the session acts as them, and stops when they are no longer admin. */
export type LoginCaller = Pick<Caller, 'kind' | 'name'>;

export interface Session {
  readonly caller: LoginCaller;
  /** Sent back in every form; a state-changing request without it is refused. */
  readonly csrf: string;
  readonly createdAt: number;
  lastSeen: number;
}

const secret = () => crypto.randomBytes(32).toString('base64url');
// Maps are keyed by a hash of the secret, so what the server holds cannot be replayed as a cookie.
const key = (s: string) => crypto.createHash('sha256').update(s).digest('hex');

/**
 * One-time login URLs and the sessions they open. Kept in memory: a server
 * restart signs everyone out, and no secret ever reaches a file.
 */
export class DashboardAuth {
  private readonly logins = new Map<string, { caller: LoginCaller; expires: number }>();
  private readonly sessions = new Map<string, Session>();
  private readonly ended = new Set<(sessionKey: string) => void>();

  constructor(private readonly clock: () => number = Date.now) {}

  /** A new login secret for the URL dashboard:login prints. */
  issueLogin(caller: LoginCaller): string {
    this.prune();
    while (this.logins.size >= MAX_PENDING_LOGINS) this.logins.delete(this.logins.keys().next().value!);
    const s = secret();
    this.logins.set(key(s), { caller: { kind: caller.kind, name: caller.name }, expires: this.clock() + LOGIN_TTL_MS });
    return s;
  }

  /** Trades a login secret for a session: once, within its time; null otherwise. Returns the session's cookie value. */
  redeem(loginSecret: string): { cookie: string; session: Session } | null {
    const k = key(loginSecret);
    const login = this.logins.get(k);
    this.logins.delete(k);
    if (!login || login.expires <= this.clock()) return null;
    const cookie = secret();
    const now = this.clock();
    const session: Session = { caller: login.caller, csrf: secret(), createdAt: now, lastSeen: now };
    this.sessions.set(key(cookie), session);
    return { cookie, session };
  }

  /** The live session of a cookie value, its idle time restarted; null when unknown or expired. */
  session(cookie: string | undefined): Session | null {
    const s = this.live(cookie);
    if (s) s.lastSeen = this.clock();
    return s;
  }

  /** The session, if still live, without counting this as activity (a stream's periodic check). */
  live(cookie: string | undefined): Session | null {
    if (!cookie) return null;
    const s = this.sessions.get(key(cookie));
    if (!s) return null;
    if (this.expired(s)) {
      this.end(cookie);
      return null;
    }
    return s;
  }

  private expired(s: Session): boolean {
    const now = this.clock();
    return now - s.lastSeen > SESSION_IDLE_MS || now - s.createdAt > SESSION_MAX_MS;
  }

  /** Logout: the session is gone, and whatever streams it had open are told. */
  end(cookie: string): void {
    const k = key(cookie);
    if (!this.sessions.delete(k)) return;
    for (const cb of this.ended) cb(k);
  }

  /** The key streams of this cookie's session are filed under (see onEnd). */
  sessionKey(cookie: string): string {
    return key(cookie);
  }

  onEnd(cb: (sessionKey: string) => void): () => void {
    this.ended.add(cb);
    return () => this.ended.delete(cb);
  }

  /** The form's token matches the session's, compared in constant time. */
  static csrfMatches(session: Session, sent: string | undefined): boolean {
    const a = Buffer.from(session.csrf);
    const b = Buffer.from(sent ?? '');
    return a.length === b.length && crypto.timingSafeEqual(a, b);
  }

  private prune(): void {
    const now = this.clock();
    for (const [k, l] of this.logins) if (l.expires <= now) this.logins.delete(k);
    for (const [k, s] of this.sessions) if (this.expired(s)) this.sessions.delete(k);
  }
}
