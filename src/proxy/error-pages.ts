import type http from 'node:http';
import type net from 'node:net';

// The proxy's own answers. Plain text with nosniff: the 404 body echoes the
// client's Host header, which must never be rendered as HTML.

const TEXT = 'text/plain; charset=utf-8';

function send(res: http.ServerResponse, status: number, body: string): void {
  res.writeHead(status, {
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

/** The same answers on a raw socket, for upgrade requests that cannot be proxied. */
export function rejectUpgrade(socket: net.Socket, status: 404 | 502 | 503, body: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const reason = status === 404 ? 'Not Found' : status === 502 ? 'Bad Gateway' : 'Service Unavailable';
  // Closed fully once written: the client gets no further use of this connection.
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\ncontent-type: ${TEXT}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
      `x-content-type-options: nosniff\r\nconnection: close\r\n\r\n${body}`,
    () => socket.destroy(),
  );
}
