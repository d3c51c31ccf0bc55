import type http from 'node:http';
import { performance } from 'node:perf_hooks';
import type { AccessEntry } from './types.js';

/** The access entry of one request once its response closed; `start` is performance.now() at its arrival. */
export function accessEntry(
  req: http.IncomingMessage, res: http.ServerResponse, host: string, sourceIp: string,
  app: string | null, targetPort: number | null, start: number,
): AccessEntry {
  return {
    app, host, method: req.method ?? '', path: req.url ?? '', sourceIp, targetPort,
    // 499: the client left before an answer (nginx's convention).
    // 101: the app's own head went out raw (upgrade-tunnel.ts).
    status: res.headersSent || res.statusCode === 101 ? res.statusCode : 499,
    ms: Math.round(performance.now() - start),
  };
}
