// The HTTPS listener's request and response classes. They let the plain
// proxy's handlers serve HTTP/2 unchanged: an h2 request shows HTTP/1.1
// headers (Host from :authority, no pseudo-headers, cookies joined, a body
// without Content-Length framed chunked), and an h2 response drops the
// hop-by-hop headers Node's HTTP/2 refuses to send. Both HTTP versions add
// Strict-Transport-Security when the edge hook marked the response.
import http from 'node:http';
import http2 from 'node:http2';

export const HSTS_VALUE = 'max-age=15724800';
/** Set by the edge hook on responses whose host has HSTS on. */
export const kHsts = Symbol('hsts');

type Headers = http.OutgoingHttpHeaders | http.OutgoingHttpHeader[] | undefined;

/** HTTP/1.1 over TLS: Node's own response, plus HSTS. */
export class TlsResponse extends http.ServerResponse {
  [kHsts] = false;

  override writeHead(status: number, reason?: string | Headers, headers?: Headers): this {
    if (typeof reason !== 'string') [reason, headers] = [undefined, reason];
    if (this[kHsts]) headers = withHsts(this, headers);
    return reason === undefined ? super.writeHead(status, headers) : super.writeHead(status, reason, headers);
  }
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te']);

export class H2Response extends http2.Http2ServerResponse<H2Request> {
  [kHsts] = false;

  // The reason phrase does not exist in HTTP/2 (Node warns if given one).
  override writeHead(status: number, reason?: string | Headers, headers?: Headers): this {
    if (typeof reason !== 'string') headers = reason;
    headers = withoutHopByHop(headers);
    if (this[kHsts]) headers = withHsts(this, headers);
    // Node accepts the flat name/value list here too (its types say only objects).
    return super.writeHead(status, headers as http.OutgoingHttpHeaders);
  }
}

function withHsts(res: { setHeader(name: string, value: string): unknown }, headers: Headers): Headers {
  if (headers === undefined) {
    // An implicit head (end() without writeHead): headers were set one by one.
    res.setHeader('strict-transport-security', HSTS_VALUE);
    return headers;
  }
  if (Array.isArray(headers)) return [...headers, 'Strict-Transport-Security', HSTS_VALUE];
  return { ...headers, 'strict-transport-security': HSTS_VALUE };
}

function withoutHopByHop(headers: Headers): Headers {
  if (headers === undefined) return headers;
  if (Array.isArray(headers)) {
    // The proxy passes name/value pairs in one flat list.
    const out: http.OutgoingHttpHeader[] = [];
    for (let i = 0; i < headers.length; i += 2) {
      const n = String(headers[i]);
      if (!(n.length <= 17 && HOP_BY_HOP.has(n.toLowerCase()))) out.push(n, headers[i + 1]!);
    }
    return out;
  }
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) if (!HOP_BY_HOP.has(k.toLowerCase())) out[k] = v;
  return out;
}

const kRaw = Symbol('http1RawHeaders');
const h2RawHeaders = Object.getOwnPropertyDescriptor(http2.Http2ServerRequest.prototype, 'rawHeaders')!.get!;

export class H2Request extends http2.Http2ServerRequest {
  [kRaw]: string[] | undefined;
}

// rawHeaders is what the proxy reads; an accessor cannot override a declared property in TypeScript.
Object.defineProperty(H2Request.prototype, 'rawHeaders', {
  get(this: H2Request) {
    return (this[kRaw] ??= http1Headers(h2RawHeaders.call(this) as string[], this.stream.endAfterHeaders));
  },
});

/** HTTP/2 request headers as an HTTP/1.1 request to the app carries them (RFC 9113 §8.3.1, §8.2.3). */
export function http1Headers(raw: readonly string[], noBody: boolean): string[] {
  const out: string[] = [];
  let authority: string | null = null;
  let host: string | null = null;
  let cookies: string | null = null;
  let length = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    if (name.charCodeAt(0) === 58 /* : */) {
      if (name === ':authority') authority = value;
      continue;
    }
    // Node delivers h2 header names lower-cased.
    if (name === 'cookie') cookies = cookies === null ? value : `${cookies}; ${value}`;
    else if (name === 'host') host ??= value;
    else {
      if (name === 'content-length') length = true;
      out.push(name, value);
    }
  }
  const head = ['Host', authority ?? host ?? ''];
  if (cookies !== null) head.push('Cookie', cookies);
  if (!noBody && !length) out.push('Transfer-Encoding', 'chunked');
  return head.concat(out);
}
