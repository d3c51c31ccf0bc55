// The data plane with two proxy worker processes, steered over its socket as the
// server steers it: every route change is in force in every worker when it
// resolves, drain and slow start see all workers, a killed worker is replaced
// with the whole table, and access entries of all workers arrive in one stream.
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ChallengeTokens } from '../src/certs/acme-issuer.js';
import { bundlePem, parseBundle } from '../src/certs/certificate.js';
import { makeSelfSigned } from '../src/certs/self-signed.js';
import { TlsIndex } from '../src/certs/tls-index.js';
import { QUICK_DEATH_MS } from '../src/dataplane/proxy-workers.js';
import { reusePortWorks } from '../src/dataplane/serving-proxy.js';
import { PROXY_WORKER_FLAGS } from '../src/dataplane/worker-flags.js';
import { get, waitFor } from './support/apps.js';
import { backend, servedByEach, startDataplaneProcess, type Backend, type RunningDataplane } from './support/dataplane.js';
import { httpsGet, peerCert, resumeWith } from './support/tls-client.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let dp: RunningDataplane;
const backends: Backend[] = [];
let app = 0;

afterAll(async () => {
  await Promise.all(backends.map((b) => b.close()));
});

/** A fresh app (hostname `appN.test`) routed to a fresh backend. */
async function routedApp(): Promise<{ name: string; host: string; a: Backend; b: Backend }> {
  const name = `app${++app}`;
  const [a, b] = [await backend('a'), await backend('b')];
  backends.push(a, b);
  dp.client.routes.setHosts(name, [`${name}.test`]);
  // shiftBackends with 0 ms is the switch promote makes; it resolves when the data plane answers.
  await dp.client.routes.shiftBackends(name, [a.port], 0);
  return { name, host: `${name}.test`, a, b };
}

/** Requests on keep-alive connections and on new ones, until stop(); each with the time it was sent. */
function hammer(host: string) {
  const sent: Array<{ at: number; body: string; status: number }> = [];
  const errors: string[] = [];
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  let running = true;
  const loop = async (a: http.Agent | false) => {
    while (running) {
      const at = performance.now();
      try {
        const r = await get(dp.port, host, '/', a);
        sent.push({ at, body: r.body, status: r.status });
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
  };
  const loops = [...Array.from({ length: 8 }, () => loop(agent)), ...Array.from({ length: 4 }, () => loop(false))];
  return {
    sent, errors,
    async stop() {
      running = false;
      await Promise.all(loops);
      agent.destroy();
    },
  };
}

// Round-robin and the shared socket run on every Node; SO_REUSEPORT listeners need Node >= 22.12.
const balances = reusePortWorks() ? (['cluster', 'shared', 'reuseport'] as const) : (['cluster', 'shared'] as const);

describe.each(balances)('two proxy workers in the data plane (%s)', (balance) => {
  beforeAll(async () => {
    dp = await startDataplaneProcess(2, balance);
  });
  afterAll(async () => {
    await dp.stop();
  });
  afterEach(() => {
    for (const b of backends) b.release();
  });

  it('both workers serve, and the access entries of both arrive in one stream', async () => {
    const { name, host } = await routedApp();
    const before = await dp.workers();
    expect(before.map((w) => [w.slot, w.state])).toEqual([[1, 'serving'], [2, 'serving']]);
    const from = dp.access.length;
    const bodies: string[] = [];
    await Promise.all(Array.from({ length: 10 }, async () => {
      for (let i = 0; i < 20; i++) bodies.push((await get(dp.port, host)).body);
    }));
    expect(bodies).toEqual(Array(200).fill('a'));
    const after = await dp.workers();
    const served = after.map((w, i) => w.requests! - before[i]!.requests!);
    expect(served[0]! + served[1]!).toBe(200);
    await waitFor(async () => dp.access.length - from >= 200, 5000, 'the access entries');
    const mine = dp.access.slice(from).filter((e) => e.app === name);
    expect(mine.length).toBe(200);
    expect(mine.every((e) => e.status === 200 && e.host === host)).toBe(true);
    // Both served (counted apart: a shared socket can give one worker every burst of 10).
    expect((await servedByEach(() => dp.workers(), before, async () => expect((await get(dp.port, host)).body).toBe('a'))).every((n) => n > 0)).toBe(true);
  });

  it('a switch resolves only once every worker applied it: nothing sent after it reaches the old backend', async () => {
    const { name, host, a, b } = await routedApp();
    const traffic = hammer(host);
    await sleep(300);
    const [, stopped] = await dp.workers();
    // A worker that cannot run yet: the switch must wait for it.
    process.kill(stopped!.pid!, 'SIGSTOP');
    let resolvedAt = 0;
    const change = dp.client.routes.shiftBackends(name, [b.port], 0).then(() => (resolvedAt = performance.now()));
    await sleep(400);
    const resumedAt = performance.now();
    process.kill(stopped!.pid!, 'SIGCONT');
    await change;
    await sleep(500);
    await traffic.stop();

    expect(resolvedAt).toBeGreaterThan(resumedAt);
    expect(traffic.errors).toEqual([]);
    const late = traffic.sent.filter((r) => r.at > resolvedAt);
    expect(late.length).toBeGreaterThan(50);
    expect(late.filter((r) => r.body !== 'b')).toEqual([]);
    expect(a.received).toBeGreaterThan(0);
  });

  it('drain waits for the requests open in every worker', async () => {
    const { name, host, a, b } = await routedApp();
    // Held requests on new connections until each worker has some.
    const held: Array<Promise<{ body: string }>> = [];
    while (held.length < 16) {
      held.push(get(dp.port, host, '/hold'));
      await waitFor(async () => a.held === held.length, 5000, `${held.length} held requests`);
      if ((await dp.workers()).every((w) => w.connections! >= 1)) break;
    }
    expect((await dp.workers()).map((w) => w.connections! >= 1)).toEqual([true, true]);
    await dp.client.routes.shiftBackends(name, [b.port], 0);
    expect(await dp.client.routes.drain(a.port, 300)).toBe(held.length);
    let drained: number | null = null;
    const drain = dp.client.routes.drain(a.port, 20_000).then((n) => (drained = n));
    await sleep(300);
    expect(drained).toBeNull();
    a.release();
    expect(await drain).toBe(0);
    expect((await Promise.all(held)).map((r) => r.body)).toEqual(Array(held.length).fill('a'));
  });

  it('slow start sees the app\'s rate across workers, not one worker\'s share', async () => {
    const { name, host, b } = await routedApp();
    // 80 requests a second in all, on new connections: each worker sees about 40, below the 50 of slow start.
    // Open loop: requests leave on schedule however slowly answers come, so a loaded machine
    // delays the answers, not the rate the data plane counts.
    const RATE = 80;
    let running = true;
    const pace = (async () => {
      const t0 = performance.now();
      const answers: Promise<unknown>[] = [];
      for (let sent = 0; running; await sleep(10)) {
        for (const due = Math.floor(((performance.now() - t0) / 1000) * RATE); sent < due; sent++) answers.push(get(dp.port, host));
      }
      await Promise.all(answers);
    })();
    // The rate is a count per whole second (AppRates): 2.2 s of traffic holds one whole second, and its last entries' batch.
    await sleep(2200);
    const shift = await dp.client.routes.shiftBackends(name, [b.port], 1500);
    running = false;
    await pace;
    expect(shift.gradual).toBe(true);
    await shift.done;
  });

  it('a worker killed with SIGKILL is replaced with the whole table; connections to the other serve on', async () => {
    const { host } = await routedApp();
    // One keep-alive connection per lane; a lane stops at its first failure.
    let running = true;
    const lanes = Array.from({ length: 8 }, () => ({ agent: new http.Agent({ keepAlive: true, maxSockets: 1 }), ok: 0, failed: '', okAfterKill: 0 }));
    let killed = false;
    const runs = lanes.map(async (lane) => {
      while (running && !lane.failed) {
        try {
          const r = await get(dp.port, host, '/', lane.agent);
          if (r.body !== 'a') lane.failed = `${r.status} ${r.body}`;
          else if (killed) lane.okAfterKill++;
          else lane.ok++;
        } catch (err) {
          lane.failed = (err as Error).message;
        }
      }
    });
    await sleep(500);
    const [victim, other] = await dp.workers();
    expect(victim!.connections! + other!.connections!).toBe(8);
    // Older than a crash loop's quick death, whatever ran before this test (or nothing did).
    await sleep(Math.max(0, victim!.startedAt! + QUICK_DEATH_MS + 100 - Date.now()));
    process.kill(victim!.pid!, 'SIGKILL');
    killed = true;
    const replaced = await waitFor(async () => {
      const w = (await dp.workers())[0]!;
      return w.pid !== victim!.pid && w.state === 'serving' && w;
    }, 5000, 'a new worker 1');
    await sleep(300);
    running = false;
    await Promise.all(runs);
    for (const l of lanes) l.agent.destroy();

    // At once, not after the crash-loop delay (how fast a process starts is the bench's business, not this test's).
    expect(dp.output()).toMatch(/proxy worker 1 \(pid \d+\) exited \(SIGKILL\); replacing it$/m);
    expect(replaced.restarts).toBe(1);
    const failed = lanes.filter((l) => l.failed);
    // Only the killed worker's own connections failed; every other went on answering.
    expect(failed.length).toBeLessThanOrEqual(victim!.connections!);
    expect(lanes.filter((l) => !l.failed).every((l) => l.okAfterKill > 0)).toBe(true);
    // The new worker has the routes: new connections are all answered by the app.
    const bodies = await Promise.all(Array.from({ length: 40 }, () => get(dp.port, host).then((r) => r.body)));
    expect(bodies).toEqual(Array(40).fill('a'));
    // And some of them by the new worker. One at a time: on a shared socket the worker that wakes
    // first accepts a whole burst, so the 40 above may all have gone to the other.
    await servedByEach(async () => (await dp.workers()).slice(0, 1), [{ requests: 0 }], async () => expect((await get(dp.port, host)).body).toBe('a'));
    const fresh = (await dp.workers())[0]!;
    expect(fresh.pid).toBe(replaced.pid);
    // A replacement runs with the proxy's V8 flags, as the first workers do.
    for (const w of [fresh, other!]) expect(fs.readFileSync(`/proc/${w.pid}/cmdline`, 'utf8').split('\0')).toEqual(expect.arrayContaining([...PROXY_WORKER_FLAGS]));
    expect(fresh.requests).toBeGreaterThan(0);
  });
});

describe.each(balances)('HTTPS in two proxy workers (%s)', (balance) => {
  beforeAll(async () => {
    dp = await startDataplaneProcess(2, balance);
  });
  afterAll(async () => {
    await dp.stop();
  });

  it('every worker serves the certificates sent, and a replaced worker has them before it listens', async () => {
    const { host } = await routedApp();
    const cert = parseBundle(bundlePem(await makeSelfSigned([host])), 'the test certificate');
    const index = new TlsIndex(cert);
    index.replace(new Map([[host, cert]]), cert, new Map());
    expect(await dp.client.serveTls({ index, tokens: new ChallengeTokens() })).toBe(dp.httpsPort);
    // New connections reach both workers: each shows the certificate, and the app answers.
    const serials = async () => new Set(await Promise.all(Array.from({ length: 12 }, () => peerCert(dp.httpsPort, host).then((p) => p.serial))));
    const before = await dp.workers();
    expect([...(await serials())]).toEqual([cert.serial]);
    const bodies = await Promise.all(Array.from({ length: 20 }, () => httpsGet(dp.httpsPort, host).then((r) => r.body)));
    expect(bodies).toEqual(Array(20).fill('a'));
    // Each worker answers over a connection that trusts only this certificate.
    const trusted = async () => expect((await httpsGet(dp.httpsPort, host, '/', { ca: cert.chain })).body).toBe('a');
    expect((await servedByEach(() => dp.workers(), before, trusted)).every((n) => n > 0)).toBe(true);

    const [victim] = before;
    process.kill(victim!.pid!, 'SIGKILL');
    await waitFor(async () => {
      const w = (await dp.workers())[0]!;
      return w.pid !== victim!.pid && w.state === 'serving';
    }, 5000, 'a new worker 1');
    expect([...(await serials())]).toEqual([cert.serial]);
    const fresh = await dp.workers();
    expect((await Promise.all(Array.from({ length: 20 }, () => httpsGet(dp.httpsPort, host).then((r) => r.body))))).toEqual(Array(20).fill('a'));
    expect((await servedByEach(() => dp.workers(), fresh, trusted)).every((n) => n > 0)).toBe(true);
  });

  it('a client resumes its TLS session on either worker, and every resumption brings a new ticket', async () => {
    const { host } = await routedApp();
    const cert = parseBundle(bundlePem(await makeSelfSigned([host])), 'the test certificate');
    const index = new TlsIndex(cert);
    index.replace(new Map([[host, cert]]), cert, new Map());
    await dp.client.serveTls({ index, tokens: new ChallengeTokens() });
    const before = await dp.workers();
    // Each connection offers only the ticket the one before it received, never one twice.
    let ticket: Buffer | null = null;
    const seen: boolean[] = [];
    for (let i = 0; i < 16; i++) {
      const r = await resumeWith(dp.httpsPort, host, ticket);
      expect(r.body).toBe('a');
      seen.push(r.resumed);
      expect(r.ticket).not.toBeNull();
      expect(r.ticket!.equals(ticket ?? Buffer.alloc(0))).toBe(false);
      ticket = r.ticket;
    }
    expect(seen).toEqual([false, ...Array(15).fill(true)]);
    // Both workers took part, so the tickets of one worker open sessions on the other.
    const served = (await dp.workers()).map((w, i) => w.requests! - before[i]!.requests!);
    expect(served.every((n) => n > 0)).toBe(true);

    // A ticket of another server is not ours: a full handshake, and the app answers.
    const other = tls.createServer({ key: cert.key, cert: cert.chain }, (s) => s.end('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n'));
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    const foreign = await resumeWith((other.address() as AddressInfo).port, host, null);
    other.close();
    expect(foreign.ticket).not.toBeNull();
    const r = await resumeWith(dp.httpsPort, host, foreign.ticket);
    expect(r).toMatchObject({ resumed: false, body: 'a' });
    expect(r.ticket).not.toBeNull();
  });
});

describe('one proxy worker', () => {
  let one: RunningDataplane;
  beforeAll(async () => {
    one = await startDataplaneProcess(1);
  });
  afterAll(async () => {
    await one.stop();
  });

  it('runs the proxy in the data plane process itself', async () => {
    const a = await backend('a');
    backends.push(a);
    one.client.routes.setHosts('solo', ['solo.test']);
    await one.client.routes.shiftBackends('solo', [a.port], 0);
    expect((await get(one.port, 'solo.test')).body).toBe('a');
    const [w, ...rest] = await one.workers();
    expect(rest).toEqual([]);
    expect(w).toMatchObject({ slot: 0, pid: one.child.pid, state: 'serving', requests: 1 });
  });
});
