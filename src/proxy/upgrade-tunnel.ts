// After an app answered an upgrade request with 101: its checked head goes to
// the client, then bytes are piped both ways until either side closes. No idle
// timeout applies here: a quiet WebSocket is normal.

import type net from 'node:net';
import type { ResponseHead } from './response-head.js';

/**
 * Joins client and app. `early` is what the client sent after its request
 * head, `rest` what the app sent after its 101 head.
 */
export function tunnel(client: net.Socket, app: net.Socket, head: ResponseHead, early: Buffer, rest: Buffer | null): void {
  const close = () => {
    client.destroy();
    app.destroy();
  };
  client.on('error', close);
  app.on('error', close);
  client.on('close', close);
  app.on('close', close);
  if (client.destroyed) return close();
  // Name and value of each header were checked by the response parser: no CR, LF or controls.
  let text = `HTTP/1.1 101 ${head.reason || 'Switching Protocols'}\r\n`;
  const h = head.headers;
  for (let i = 0; i < h.length; i += 2) text += `${h[i]}: ${h[i + 1]}\r\n`;
  client.write(`${text}\r\n`, 'latin1');
  if (rest) client.write(rest);
  if (early.length) app.write(early);
  app.pipe(client);
  client.pipe(app);
}
