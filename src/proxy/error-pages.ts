import http from 'node:http';

// The proxy's own answers. Plain text with nosniff: the 404 body echoes the
// client's Host header, which must never be rendered as HTML.

const TEXT = 'text/plain; charset=utf-8';

function send(res: http.ServerResponse, status: number, body: string): void {
  // Headers of an app's answer that failed to go out are not ours to send, and
  // the reason phrase is always the standard one, never an app's.
  for (const name of res.getHeaderNames()) res.removeHeader(name);
  res.writeHead(status, http.STATUS_CODES[status], {
    'content-type': TEXT,
    'content-length': Buffer.byteLength(body),
    'x-content-type-options': 'nosniff',
    'cache-control': 'no-store',
  });
  res.end(body);
}

export function unknownHostBody(hostname: string): string {
  return `host '${hostname}' not found on this server.`;
}

export const NO_BACKEND_BODY = 'Application error\n\nThis app has no running web process. If you run it, check its logs.\n';
export const BAD_GATEWAY_BODY = 'Bad gateway\n\nThe app did not answer. If you run it, check its logs.\n';

export function sendUnknownHost(res: http.ServerResponse, hostname: string): void {
  send(res, 404, unknownHostBody(hostname));
}

/** The legacy Maestro load-balancer health check. */
export function sendPong(res: http.ServerResponse): void {
  send(res, 200, 'pong');
}

export function sendNoBackend(res: http.ServerResponse): void {
  send(res, 503, NO_BACKEND_BODY);
}

export function sendBadGateway(res: http.ServerResponse): void {
  send(res, 502, BAD_GATEWAY_BODY);
}

export function gatewayTimeoutBody(app: string, timeoutMs: number): string {
  return `App '${app}' sent no response within ${timeoutMs / 1000} s (the server's --request-timeout).\n`;
}

export function sendGatewayTimeout(res: http.ServerResponse, app: string, timeoutMs: number): void {
  send(res, 504, gatewayTimeoutBody(app, timeoutMs));
}

/** A request the proxy will not forward (client-request.ts); the connection is closed after it. */
export function sendRefusal(res: http.ServerResponse, status: number, why: string): void {
  res.shouldKeepAlive = false;
  send(res, status, `${why}\n`);
}
