// One DNode session of Maestro 0.3's RPC on any duplex stream (a TCP socket, an
// SSH direct-tcpip channel), for one Caller. dnode 1.2.2 itself throws on some
// malformed messages from inside a stream write, which would take the server
// down; so lines are framed (wire/json-lines.ts), parsed and checked here and
// handed to dnode as objects, and every callback into the client is guarded.
import dnode from 'dnode';
import type { Duplex } from 'node:stream';
import type { Caller } from '../control/types.js';
import { LineTooLongError, splitLines } from '../wire/json-lines.js';
import type { LegacyApps } from './legacy-apps.js';

const MAX_LINE = 256 * 1024;
const MAX_PATHS = 32;
const MAX_PATH_DEPTH = 16;
/** restart_app calls of one connection that may wait at once; more are answered with an error. */
const MAX_IN_FLIGHT = 4;
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

export interface DnodeSession {
  /** Resolves when the session has ended (client gone or closed). */
  closed: Promise<void>;
  close(): void;
}

type Reply = (err: { message: string } | null, value?: unknown) => void;
type Method = (args: unknown[], reply: Reply) => void | Promise<void>;

function isPath(p: unknown): boolean {
  return Array.isArray(p) && p.length >= 1 && p.length <= MAX_PATH_DEPTH &&
    p.every((k) => (typeof k === 'string' && k.length <= 64 && !FORBIDDEN_KEYS.has(k)) || (Number.isInteger(k) && (k as number) >= 0));
}

/** Why a parsed line is not a dnode-protocol message we accept, or null when it is fine. */
export function checkDnodeMessage(row: unknown): string | null {
  if (typeof row !== 'object' || row === null || Array.isArray(row)) return 'a message must be a JSON object';
  const m = row as Record<string, unknown>;
  const method = m.method;
  if (!(typeof method === 'string' && method.length <= 64) && !(Number.isInteger(method) && (method as number) >= 0)) {
    return 'the method must be a name or a callback number';
  }
  if (m.arguments !== undefined && !Array.isArray(m.arguments)) return 'arguments must be an array';
  if (m.callbacks !== undefined) {
    if (typeof m.callbacks !== 'object' || m.callbacks === null || Array.isArray(m.callbacks)) return 'callbacks must be an object';
    const entries = Object.entries(m.callbacks);
    if (entries.length > MAX_PATHS) return 'too many callbacks in one message';
    for (const [id, p] of entries) {
      if (!/^\d{1,9}$/.test(id) || !isPath(p)) return 'a callback entry is malformed';
    }
  }
  if (m.links !== undefined) {
    if (!Array.isArray(m.links) || m.links.length > MAX_PATHS) return 'links must be a short array';
    for (const l of m.links as unknown[]) {
      if (typeof l !== 'object' || l === null || !isPath((l as { from?: unknown }).from) || !isPath((l as { to?: unknown }).to)) return 'a link entry is malformed';
    }
  }
  return null;
}

/**
 * Serves methods on stream with dnode. Each method gets the arguments before the
 * client's callback and a reply function; a call without a callback is ignored.
 */
function serveMethods(stream: Duplex, methods: Record<string, Method>, log: (line: string) => void): DnodeSession {
  let ended = false;
  let resolveClosed!: () => void;
  const closed = new Promise<void>((r) => (resolveClosed = r));

  const exposed: Record<string, (...args: unknown[]) => void> = {};
  for (const [name, method] of Object.entries(methods)) {
    exposed[name] = (...args: unknown[]) => {
      const cb = args[args.length - 1];
      if (typeof cb !== 'function') {
        log(`dnode: ${name} called without a callback; ignored`);
        return;
      }
      let answered = false;
      const reply: Reply = (err, value) => {
        if (answered || ended) return;
        answered = true;
        try {
          if (err) cb({ message: err.message });
          else cb(null, value);
        } catch (e) {
          log(`dnode: answering ${name} failed: ${(e as Error).message}`);
        }
      };
      try {
        const done = method(args.slice(0, -1), reply);
        if (done) done.catch((e: Error) => reply({ message: e.message }));
      } catch (e) {
        reply({ message: (e as Error).message });
      }
    };
  }

  const d = dnode(exposed, { weak: false });
  d.on('data', (line: string) => {
    if (!ended && stream.writable && !stream.destroyed) stream.write(line);
  });
  // 'error': our own code threw inside dnode; 'fail': the client asked for something that does not exist.
  d.on('error', (err: Error) => log(`dnode: ${err.message}`));
  d.on('fail', (err: Error) => log(`dnode: client error: ${err.message}`));

  const end = (why?: string) => {
    if (ended) return;
    ended = true;
    if (why) log(`dnode: closing a session: ${why}`);
    d.end();
    if (!stream.destroyed) stream.end();
    resolveClosed();
  };

  const feed = splitLines((line) => {
    // A session ended by an earlier line of the same chunk reads no further.
    if (ended || line.trim() === '') return;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch {
      return end('a line that is not JSON');
    }
    const bad = checkDnodeMessage(row);
    if (bad) return end(`malformed message (${bad})`);
    try {
      d.write(row as never);
    } catch (e) {
      return end(`message rejected by dnode (${(e as Error).message})`);
    }
  }, MAX_LINE);
  stream.on('data', (chunk: string | Buffer) => {
    if (ended) return;
    try {
      feed(chunk);
    } catch (e) {
      if (!(e instanceof LineTooLongError)) throw e;
      end(`a message longer than ${MAX_LINE} bytes`);
    }
  });
  stream.on('error', () => end());
  stream.on('end', () => end());
  stream.on('close', () => end());
  return { closed, close: () => end() };
}

/**
 * Serves Maestro 0.3's RPC for one caller: register_app(app, cb) and
 * restart_app(name, [hostname,] cb), both answering cb(null, applications) or
 * cb({message}). The SSH server calls this for a forward to the DNode port
 * (the key's scope), the TCP listener for an allowed direct connection.
 */
export function serveDnode(stream: Duplex, caller: Caller, legacy: LegacyApps, log: (line: string) => void = () => {}): DnodeSession {
  let inFlight = 0;
  return serveMethods(stream, {
    register_app: (args, reply) => {
      reply(null, legacy.register(caller, args[0]));
    },
    restart_app: async (args, reply) => {
      if (args.length > 2) throw new Error('restart_app takes (name, callback) or (name, hostname, callback)');
      if (inFlight >= MAX_IN_FLIGHT) throw new Error(`too many restarts waiting on this connection (${MAX_IN_FLIGHT}): wait for their answers`);
      inFlight++;
      try {
        reply(null, await legacy.restart(caller, args[0], args[1]));
      } finally {
        inFlight--;
      }
    },
  }, log);
}

/** A session that answers every call with `message`, then closes: for connections that may not use the RPC. */
export function refuseDnode(stream: Duplex, message: string, log: (line: string) => void = () => {}): DnodeSession {
  const refuse: Method = (_args, reply) => {
    reply({ message });
    setImmediate(() => session.close());
  };
  const session = serveMethods(stream, { register_app: refuse, restart_app: refuse }, log);
  const timer = setTimeout(() => session.close(), 30_000);
  void session.closed.then(() => clearTimeout(timer));
  return session;
}
