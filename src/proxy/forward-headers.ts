// Header rewriting between client and app. Called once per request with the
// parser's raw header list; names are compared by length first so most headers
// are copied without being lower-cased.

/** A request's headers for the app, plus what the proxy learnt while copying them. */
export interface ForwardedRequest {
  headers: string[];
  /** The request target in origin-form. */
  path: string;
  /** The first Host header as sent ('' if none); Node routes by the first one too. */
  host: string;
  /** Content-Length or Transfer-Encoding was sent: the request has a body to stream. */
  hasBody: boolean;
  /** Transfer-Encoding was sent: the body is forwarded chunked (Node has decoded the client's chunks). */
  chunked: boolean;
}

/**
 * Request headers for the app: hop-by-hop ones dropped, X-Forwarded-* set.
 * `authority` (from an absolute-form target) replaces the Host header.
 */
export function requestHeaders(
  raw: readonly string[], sourceIp: string, proto: string, keepUpgrade: boolean, path: string, authority: string | null,
): ForwardedRequest {
  const out: string[] = [];
  let forwardedFor: string | null = null;
  let host: string | null = null;
  let hasBody = false;
  let chunked = false;
  let connectionTokens: string | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    const value = raw[i + 1];
    const n = name.length;
    // Lengths of: host, te, expect, upgrade/trailer, connection/keep-alive,
    // content-length, x-forwarded-for, proxy-connection/x-forwarded-host,
    // x-forwarded-proto/transfer-encoding.
    if (n === 4 || n === 2 || n === 6 || n === 7 || n === 10 || n === 14 || n === 15 || n === 16 || n === 17) {
      const lower = name.toLowerCase();
      if (lower === 'host') {
        if (host !== null) continue;
        host = authority ?? value;
        out.push(name, host);
        continue;
      } else if (lower === 'content-length') {
        hasBody = true;
      } else if (lower === 'transfer-encoding') {
        hasBody = true;
        chunked = true;
      } else if (lower === 'x-forwarded-for') {
        forwardedFor = forwardedFor === null ? value : `${forwardedFor}, ${value}`;
        continue;
      } else if (lower === 'connection') {
        if (hasExtraConnectionTokens(value)) connectionTokens = connectionTokens ? `${connectionTokens},${value}` : value;
        if (keepUpgrade) out.push(name, value);
        continue;
      } else if (lower === 'upgrade') {
        if (keepUpgrade) out.push(name, value);
        continue;
      } else if (
        // Expect: the proxy has already answered 100-continue to the client.
        // X-Forwarded-Proto/Host: the proxy is the edge; a client's own are not trusted.
        lower === 'te' || lower === 'expect' || lower === 'trailer' || lower === 'keep-alive' ||
        lower === 'proxy-connection' || lower === 'x-forwarded-host' || lower === 'x-forwarded-proto'
      ) {
        continue;
      }
    }
    out.push(name, value);
  }
  if (host === null) {
    host = authority ?? '';
    if (authority !== null) out.push('Host', authority);
  }
  // X-Forwarded-For is appended to, as every proxy does; apps trust its last entry.
  out.push(
    'X-Forwarded-For', forwardedFor === null ? sourceIp : `${forwardedFor}, ${sourceIp}`,
    'X-Forwarded-Proto', proto,
    'X-Forwarded-Host', host,
  );
  return { headers: connectionTokens ? dropNamed(out, connectionTokens, keepUpgrade) : out, path, host, hasBody, chunked };
}

function hasExtraConnectionTokens(value: string): boolean {
  const v = value.length < 11 ? value.toLowerCase() : '';
  return v !== 'keep-alive' && v !== 'close' && v !== 'upgrade';
}

/** Drops headers the sender listed in Connection (RFC 9110 §7.6.1). */
function dropNamed(headers: string[], tokens: string, keepUpgrade: boolean): string[] {
  const named = new Set(
    tokens.split(',').map((t) => t.trim().toLowerCase()).filter((t) => t && !(keepUpgrade && t === 'upgrade')),
  );
  // Headers the proxy itself relies on or sets are never dropped this way.
  for (const h of ['host', 'content-length', 'transfer-encoding', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host']) {
    named.delete(h);
  }
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    if (!named.has(headers[i].toLowerCase())) out.push(headers[i], headers[i + 1]);
  }
  return out;
}
