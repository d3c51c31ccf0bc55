// A proxy worker process: forked by the data plane (proxy-workers.ts), it runs
// the whole proxy (HTTP, the edge, HTTPS) on the shared ports and nothing else,
// so no deploy work ever runs on its event loop. It gets the route table, the
// settings and the certificates before it listens, applies each change the
// primary sends and answers it, and sends its access entries back in batches.
import type { AccessEntry, RouteControl } from '../proxy/types.js';
import { startProxyStack, type ProxyStack } from './proxy-stack.js';
import type { FromWorker, RouteEntry, ToWorker, WorkerCall, WorkerStats } from './worker-protocol.js';

const FLUSH_MS = 50;
const MAX_BATCH = 2000;

const send = (m: FromWorker) => {
  if (process.connected) process.send!(m);
};
let access: AccessEntry[] = [];
let timer: NodeJS.Timeout | null = null;
let requests = 0;
const flush = () => {
  timer = null;
  if (access.length) send({ t: 'access', entries: access });
  access = [];
};
const onAccess = (e: AccessEntry) => {
  requests++;
  access.push(e);
  if (access.length >= MAX_BATCH) flush();
  else timer ??= setTimeout(flush, FLUSH_MS);
};

let stack: ProxyStack | null = null;
/** Calls sent while the listeners open wait here, in order. */
const early: Array<{ id: number; call: WorkerCall }> = [];
const shifts = new Map<string, Promise<void>>();

async function apply(s: ProxyStack, call: WorkerCall): Promise<unknown> {
  const { routes } = s;
  switch (call.op) {
    case 'setHosts': return routes.setHosts(call.app, call.hosts);
    case 'setBackends': return routes.setBackends(call.app, call.ports);
    case 'shiftBackends': {
      const shift = await routes.shiftBackends(call.app, call.ports, call.ms, call.busy);
      shifts.set(call.app, shift.done);
      return shift.gradual;
    }
    case 'shiftDone': return shifts.get(call.app);
    case 'removeApp': return routes.removeApp(call.app);
    case 'drain': return routes.drain(call.port, call.timeoutMs);
    case 'configure': return s.configure(call.settings);
    case 'tls': return s.tls(call.tls);
    case 'acmeToken': return s.acmeToken(call.token, call.entry);
    case 'stats': return { connections: s.connections(), requests, open: s.open() } satisfies WorkerStats;
  }
}

function seed(routes: RouteControl, table: RouteEntry[]): void {
  for (const r of table) {
    try {
      routes.setHosts(r.app, r.hosts);
      routes.setBackends(r.app, r.ports);
    } catch (err) {
      // Every other worker refused the same change: leave this app as they have it.
      process.stderr.write(`proxy worker ${process.pid}: route of ${r.app} not applied: ${(err as Error).message}\n`);
    }
  }
}

function answer(s: ProxyStack, id: number, call: WorkerCall): void {
  apply(s, call).then(
    (value) => send({ t: 'reply', id, ok: true, value }),
    (err: Error) => send({ t: 'reply', id, ok: false, error: err.message }),
  );
}

process.on('message', (m: ToWorker) => {
  if (m.t === 'init') {
    startProxyStack({ listen: m.listen, state: m.state, onAccess, seed: (r) => seed(r, m.table) }).then(
      (s) => {
        stack = s;
        for (const c of early.splice(0)) answer(s, c.id, c.call);
        send({ t: 'ready', port: s.port, httpsPort: s.httpsPort });
      },
      (err: Error) => {
        send({ t: 'failed', error: err.message });
        process.exit(1);
      },
    );
    return;
  }
  if (stack) answer(stack, m.id, m.call);
  else early.push({ id: m.id, call: m.call });
});

// The primary's orders only: a signal to the process group is not one.
process.on('SIGHUP', () => {});
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {
  flush();
  void (stack?.close() ?? Promise.resolve()).then(() => process.exit(0));
});
// Without its primary a worker has no routes of record: it goes too.
process.on('disconnect', () => process.exit(0));
send({ t: 'booted' });
