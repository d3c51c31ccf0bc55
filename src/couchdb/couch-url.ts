import { UserError } from '../errors.js';

/** A CouchDB server the platform reaches with its admin credentials. */
export interface CouchEndpoint {
  /** http(s)://host:port, no path, no credentials: safe to log. */
  origin: string;
  /** The path prefix the server answers under ('' or '/couch'), without a trailing slash. */
  base: string;
  user: string;
  password: string;
}

/**
 * Reads `--couchdb URL` or `--couchdb-replica URL`. Credentials ride in the URL
 * (admin ones: the app never sees them); the message names the flag but never
 * echoes the URL, which holds a password.
 */
export function parseCouchUrl(flag: string, text: string): CouchEndpoint {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new UserError(`${flag} must be a URL like http://admin:PASSWORD@127.0.0.1:5984 (the value given is not a URL)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UserError(`${flag} must be an http:// or https:// URL, not ${u.protocol}`);
  if (u.search || u.hash) throw new UserError(`${flag} must not have a query or fragment: give the server's URL, like http://admin:PASSWORD@127.0.0.1:5984`);
  return {
    origin: u.origin,
    base: u.pathname.replace(/\/+$/, ''),
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
  };
}

/** The endpoint as the server's log may show it: the password replaced. */
export function describeEndpoint(e: CouchEndpoint): string {
  return `${e.origin}${e.base}${e.user ? ` (as ${e.user})` : ''}`;
}

/** A database URL with the endpoint's credentials, for `_replicator` documents (admin-only readable). */
export function databaseUrl(e: CouchEndpoint, db: string): string {
  const u = new URL(`${e.origin}${e.base}/${encodeURIComponent(db)}`);
  u.username = encodeURIComponent(e.user);
  u.password = encodeURIComponent(e.password);
  return u.href;
}

/** The Authorization header for the endpoint's credentials, or null for an admin-party server. */
export function basicAuth(e: Pick<CouchEndpoint, 'user' | 'password'>): string | null {
  if (!e.user && !e.password) return null;
  return `Basic ${Buffer.from(`${e.user}:${e.password}`).toString('base64')}`;
}
