// The control socket speaks newline-delimited JSON. A client sends one request;
// the server streams output messages and ends with an exit message.

import type { HookRequest } from '../git/push-deploy.js';

export type ControlRequest =
  | { type: 'command'; argv: string[]; stdin?: string }
  | ({ type: 'hook' } & HookRequest);

export type ControlMessage = { out: string } | { err: string } | { exit: number };

/** Splits a byte stream into JSON messages, one a line. */
export function lineReader(onMessage: (msg: unknown) => void): (chunk: Buffer | string) => void {
  let buffer = '';
  return (chunk) => {
    buffer += chunk.toString();
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      if (line.trim()) onMessage(JSON.parse(line));
    }
  };
}
