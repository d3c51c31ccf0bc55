// What the proxy refuses from a client beyond what Node's parser already
// refuses, and where an absolute-form request goes (RFC 9112 §3.2.2).

import type http from 'node:http';

/** More request headers get a 431; Node's server is told to keep them all so the count is exact. */
export const MAX_REQUEST_HEADERS = 2000;

/** Where an absolute-form request goes. */
export interface AbsoluteTarget {
  /** Its authority, which replaces Host. */
  authority: string;
  /** The target in origin-form, as the app gets it. */
  path: string;
}

export interface Refusal {
  status: 400 | 431;
  why: string;
}

const ABSOLUTE = /^https?:\/\/([^/?#]*)(.*)$/i;

/** null for the common case: an origin-form (or `*`) target whose Host routes it. */
export function checkRequest(req: http.IncomingMessage): AbsoluteTarget | Refusal | null {
  if (req.rawHeaders.length > MAX_REQUEST_HEADERS * 2) {
    return { status: 431, why: `More than ${MAX_REQUEST_HEADERS} request headers.` };
  }
  const url = req.url ?? '';
  if (url.charCodeAt(0) === 47 /* / */ || url === '*') return null;
  // Absolute-form: the target's authority decides the app, not the Host header.
  const m = ABSOLUTE.exec(url);
  if (!m || m[1] === '' || m[1]!.includes('@')) {
    return { status: 400, why: 'The request target must be a path or an http(s) URL with a host and no user info.' };
  }
  const rest = m[2]!;
  return { authority: m[1]!, path: rest === '' ? '/' : rest.charCodeAt(0) === 63 /* ? */ ? `/${rest}` : rest };
}
