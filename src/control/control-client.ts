import net from 'node:net';
import { encodeJsonLine, readJsonLines } from '../wire/json-lines.js';
import type { ControlMessage, ControlRequest } from './protocol.js';

/**
 * Sends one request to the server's control socket, writes its output as it
 * comes, and resolves to the exit code.
 */
export function controlRequest(
  socketPath: string,
  req: ControlRequest,
  out: { stdout: (t: string) => void; stderr: (t: string) => void },
): Promise<number> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(socketPath);
    let exit: number | null = null;
    sock.on('connect', () => sock.write(encodeJsonLine(req)));
    sock.on('data', readJsonLines((m) => {
      const msg = m as ControlMessage;
      if ('out' in msg) out.stdout(msg.out);
      else if ('err' in msg) out.stderr(msg.err);
      else if ('exit' in msg) exit = msg.exit;
    }));
    sock.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') {
        reject(new Error(`no platformx server is running with data folder of ${socketPath}: start it with 'platformx server' (or set --data / PLATFORMX_DATA)`));
      } else reject(err);
    });
    sock.on('close', () => {
      // The server went away mid-command: it may or may not have finished, so say how to find out.
      if (exit === null) out.stderr("error: the server closed the connection before the command finished (did it stop?): see 'platformx releases APP' for what went live\n");
      resolve(exit ?? 1);
    });
  });
}
