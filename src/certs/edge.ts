// The proxy's edge hook: what HTTPS adds to every request before it is routed.
// ACME HTTP-01 challenges are answered here (never redirected, never passed to
// the app), plain HTTP to a host with a valid certificate gets 308 to HTTPS,
// HTTPS answers get HSTS where it is on, and apps see X-Forwarded-Port.
import type http from 'node:http';
import type { ForwardedRequest } from '../proxy/forward-headers.js';
import { hostname } from '../proxy/route-table.js';
import type { EdgeHook } from '../proxy/types.js';
import type { ChallengeTokens } from './acme-issuer.js';
import { kHsts } from './h2-adapter.js';
import type { TlsIndex } from './tls-index.js';

export const ACME_PREFIX = '/.well-known/acme-challenge/';

export interface EdgeOptions {
  index: Pick<TlsIndex, 'policy'>;
  tokens: ChallengeTokens;
  /** The HTTPS port redirects point at. */
  httpsPort: () => number;
}

export function edgeHook(o: EdgeOptions): EdgeHook {
  return (req, res, fwd) => {
    const socket = req.socket as { localPort?: number; encrypted?: boolean };
    setForwardedPort(fwd, socket.localPort);
    if (res === null) return false;
    const url = req.url ?? '';
    if (url.charCodeAt(1) === 46 /* . */ && url.startsWith(ACME_PREFIX)) {
      answerChallenge(res, o.tokens.answer(url.slice(ACME_PREFIX.length), hostname(fwd.host).toLowerCase()));
      return true;
    }
    const policy = o.index.policy(fwd.host);
    if (!policy) return false;
    if (socket.encrypted) {
      if (policy.hsts) (res as { [kHsts]?: boolean })[kHsts] = true;
      return false;
    }
    if (!policy.redirect || url.charCodeAt(0) !== 47 /* / */ || url === '/_ping_' || url.startsWith('/_ping_?')) return false;
    redirect(res, hostname(fwd.host).toLowerCase(), o.httpsPort(), url);
    return true;
  };
}

/** X-Forwarded-Port: the port the client connected to; one the client sent is dropped. */
function setForwardedPort(fwd: ForwardedRequest, port: number | undefined): void {
  const h = fwd.headers;
  for (let i = 0; i < h.length; i += 2) {
    if (h[i]!.length === 16 && h[i]!.toLowerCase() === 'x-forwarded-port') {
      h.splice(i, 2);
      i -= 2;
    }
  }
  h.push('X-Forwarded-Port', String(port ?? ''));
}

function answerChallenge(res: http.ServerResponse, keyAuthorization: string | null): void {
  const body = keyAuthorization ?? 'no such ACME challenge on this server\n';
  res.writeHead(keyAuthorization ? 200 : 404, {
    'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store',
  });
  res.end(body);
}

function redirect(res: http.ServerResponse, host: string, httpsPort: number, url: string): void {
  const location = `https://${host}${httpsPort === 443 ? '' : `:${httpsPort}`}${url}`;
  const body = `Moved to ${location}\n`;
  res.writeHead(308, {
    location, 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), 'x-content-type-options': 'nosniff',
  });
  res.end(body);
}
