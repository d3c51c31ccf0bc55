// The control socket speaks newline-delimited JSON (framed by wire/json-lines.ts). A client sends one request;
// the server streams output messages and ends with an exit message.

import type { HookRequest } from '../git/push-deploy.js';

export type ControlRequest =
  | { type: 'command'; argv: string[]; stdin?: string }
  | ({ type: 'hook' } & HookRequest);

export type ControlMessage = { out: string } | { err: string } | { exit: number };
