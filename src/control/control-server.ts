import fs from 'node:fs';
import net from 'node:net';
import { Readable } from 'node:stream';
import type { PushDeploys } from '../git/push-deploy.js';
import { encodeJsonLine, readJsonLines } from '../wire/json-lines.js';
import type { ControlMessage, ControlRequest } from './protocol.js';
import type { Caller, Dispatch } from './types.js';

/** The local CLI is root on this machine: it may do everything. */
export const LOCAL_CALLER: Caller = { kind: 'local', name: 'local', admin: true, apps: [] };

const MAX_REQUEST_BYTES = 1024 * 1024;

/**
 * The control socket (mode 0600 in the data folder): the local CLI's commands and
 * the git hooks' hand-over of pushes both come in here.
 */
export async function startControlServer(socketPath: string, dispatch: Dispatch, pushes: PushDeploys): Promise<net.Server> {
  fs.rmSync(socketPath, { force: true });
  const server = net.createServer((sock) => {
    const abort = new AbortController();
    let received = 0;
    let handled = false;
    const send = (m: ControlMessage) => {
      if (!sock.destroyed) sock.write(encodeJsonLine(m));
    };
    sock.on('close', () => abort.abort());
    sock.on('error', () => abort.abort());
    const read = readJsonLines((msg) => {
      if (handled) return;
      handled = true;
      void handle(msg as ControlRequest).then(
        (code) => sock.end(encodeJsonLine({ exit: code } satisfies ControlMessage)),
        (err: Error) => {
          send({ err: `error: ${err.message}\n` });
          sock.end(encodeJsonLine({ exit: 2 } satisfies ControlMessage));
        },
      );
    });
    sock.on('data', (chunk) => {
      received += chunk.length;
      if (received > MAX_REQUEST_BYTES) return sock.destroy();
      try {
        read(chunk);
      } catch {
        sock.destroy();
      }
    });

    async function handle(req: ControlRequest): Promise<number> {
      if (req.type === 'hook') {
        return pushes.handle(req, (line) => send({ err: line + '\n' }));
      }
      if (req.type === 'command' && Array.isArray(req.argv) && req.argv.every((a) => typeof a === 'string')) {
        return dispatch(req.argv, LOCAL_CALLER, {
          stdout: (t) => send({ out: t }),
          stderr: (t) => send({ err: t }),
          stdin: typeof req.stdin === 'string' ? Readable.from([req.stdin]) : undefined,
          signal: abort.signal,
        });
      }
      send({ err: 'error: malformed control request\n' });
      return 2;
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const old = process.umask(0o177);
    server.listen(socketPath, () => {
      process.umask(old);
      resolve();
    });
  });
  fs.chmodSync(socketPath, 0o600);
  return server;
}
