// Issue 15, the data layer: two real PouchDB Servers on loopback stand for the
// local primary and the remote replica; the platform's gateway in front.
//   - replication lag p50/p99 under a steady write load through the gateway
//   - gateway overhead: requests/s and p99 of document reads, gateway vs the primary directly
//   - failover: kill -9 of the primary under writes, time to the first successful
//     write (target <= 5 s), and documents lost once it is back (target 0)
//
//   npx tsc -p . && node bench/couchdb-bench.mjs [--rate 50] [--seconds 10]
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { BenchServer, parseWrk, ROOT, sleep } from './bench-platform.mjs';

const dist = (file) => import(pathToFileURL(path.join(ROOT, 'dist', 'couchdb', file)).href);
const { installPouchdbServer, POUCHDB_SERVER_VERSION } = await dist('embedded-install.js');
const { freePort, pouchdbServerArgs } = await dist('embedded-server.js');
// The same shared install as the tests'.
const INSTALL = path.join(os.tmpdir(), `platformx-pouchdb-server-${POUCHDB_SERVER_VERSION}`);

/** One JSON request; `url` may carry credentials. Resolves { status, body }, or { status: 0 } when nothing answered. */
function request(method, url, body, agent = false) {
  const u = new URL(url);
  const headers = { accept: 'application/json' };
  if (u.username) headers.authorization = basic(u);
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  if (payload) headers['content-type'] = 'application/json';
  return new Promise((resolve) => {
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method, headers, agent }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode, body: JSON.parse(text) });
        } catch {
          resolve({ status: res.statusCode, body: text });
        }
      });
    });
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve({ status: 0 }));
    req.end(payload);
  });
}

const basic = (u) => `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}`;

class Pouch {
  static async start() {
    const p = new Pouch(fs.mkdtempSync(path.join(os.tmpdir(), 'pxbench-db-')), await freePort());
    await p.boot();
    return p;
  }

  constructor(dir, port) {
    this.dir = dir;
    this.port = port;
    this.url = `http://127.0.0.1:${port}`;
  }

  async boot() {
    this.child = spawn(process.execPath, [...pouchdbServerArgs(INSTALL, this.port, this.dir), '--no-stdout-logs'], { cwd: this.dir, stdio: 'ignore' });
    const deadline = Date.now() + 30_000;
    while ((await request('GET', `${this.url}/`)).status !== 200) {
      if (Date.now() > deadline) throw new Error('PouchDB Server did not answer');
      await sleep(50);
    }
  }

  async kill9() {
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGKILL');
    await exited;
  }

  async destroy() {
    if (this.child.exitCode === null && this.child.signalCode === null) await this.kill9();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

function percentile(values, p) {
  const v = [...values].sort((a, b) => a - b);
  if (!v.length) return NaN;
  return v[Math.min(v.length - 1, Math.floor((p / 100) * v.length))];
}

/** Arrival times of documents on a server, from its continuous changes feed. */
function followChanges(dbUrl) {
  const arrived = new Map();
  const u = new URL(`${dbUrl}/_changes?feed=continuous&since=now&heartbeat=1000`);
  const req = http.get({ host: u.hostname, port: u.port, path: u.pathname + u.search, agent: false }, (res) => {
    let buf = '';
    res.setEncoding('utf8');
    res.on('data', (c) => {
      buf += c;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        try {
          const ch = JSON.parse(line);
          if (ch.id && !arrived.has(ch.id)) arrived.set(ch.id, performance.now());
        } catch {
          /* heartbeat or partial */
        }
      }
    });
  });
  req.on('error', () => {});
  return { arrived, stop: () => req.destroy() };
}

/** Writes one document every 1000/rate ms for `seconds`; records when each was acknowledged. */
async function steadyWrites(dbUrl, prefix, rate, seconds, agent) {
  const acked = new Map();
  const failures = [];
  const end = performance.now() + seconds * 1000;
  let n = 0;
  const inflight = [];
  while (performance.now() < end) {
    const id = `${prefix}-${n++}`;
    const sent = performance.now();
    inflight.push(request('PUT', `${dbUrl}/${id}`, { sent: Date.now() }, agent).then((r) => {
      if (r.status === 201) acked.set(id, { sent, acked: performance.now() });
      else failures.push(r.status);
    }));
    await sleep(Math.max(0, 1000 / rate - (performance.now() - sent)));
  }
  await Promise.all(inflight);
  return { acked, failures, sent: n };
}

/** wrk (like every other part of the bench) at 10 connections against one URL. */
function cannon(url, authorization, seconds) {
  const args = ['-t2', '-c10', `-d${seconds}s`, '--latency', ...(authorization ? ['-H', `authorization: ${authorization}`] : []), url];
  return new Promise((resolve, reject) => {
    execFile('wrk', args, { timeout: (seconds + 30) * 1000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`wrk failed: ${stderr || err.message}`));
      const r = parseWrk(stdout);
      resolve({ rps: r.rps, p50Ms: r.p50, p99Ms: r.p99, non2xx: r.non2xx, errors: r.socketErrors });
    });
  });
}

export async function runCouchdbBench({ rate = 50, seconds = 10, log = () => {} } = {}) {
  await installPouchdbServer(INSTALL, log);
  const [primary, replica] = await Promise.all([Pouch.start(), Pouch.start()]);
  const server = await BenchServer.start({ extra: ['--couchdb', primary.url, '--couchdb-replica', replica.url] });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  try {
    await server.cli(['apps:create', 'bench']);
    await server.cli(['couchdb:create', 'bench']);
    const gateway = (await server.cli(['config:get', 'bench', 'COUCHDB_URL'])).stdout.trim();
    const g = new URL(gateway);
    const direct = `${primary.url}/bench`;

    // 1. Replication lag under steady writes through the gateway.
    log(`replication lag: ${rate} writes/s for ${seconds} s through the gateway`);
    const feed = followChanges(`${replica.url}/bench`);
    await sleep(300);
    const w = await steadyWrites(gateway, 'lag', rate, seconds, agent);
    const deadline = Date.now() + 30_000;
    while ([...w.acked.keys()].some((id) => !feed.arrived.has(id)) && Date.now() < deadline) await sleep(100);
    feed.stop();
    const lags = [...w.acked].filter(([id]) => feed.arrived.has(id)).map(([id, t]) => feed.arrived.get(id) - t.acked);
    const lag = {
      writes: w.sent, acked: w.acked.size, failed: w.failures.length, arrived: lags.length,
      p50Ms: percentile(lags, 50), p99Ms: percentile(lags, 99), maxMs: Math.max(...lags),
    };
    log(`  lag p50 ${lag.p50Ms.toFixed(0)} ms, p99 ${lag.p99Ms.toFixed(0)} ms (${lag.arrived}/${lag.acked} arrived)`);

    // 2. Gateway overhead: reads of one document, gateway vs the primary directly.
    await request('PUT', `${gateway}/hot`, { hot: true }, agent);
    log('gateway overhead: GET of one document, 10 connections, 5 s each');
    const viaDirect = await cannon(`${direct}/hot`, null, 5);
    const viaGateway = await cannon(`http://127.0.0.1:${g.port}${g.pathname}/hot`, basic(g), 5);
    const overhead = { direct: viaDirect, gateway: viaGateway, rpsRatio: viaGateway.rps / viaDirect.rps, p99Ratio: viaGateway.p99Ms / viaDirect.p99Ms };
    log(`  direct ${viaDirect.rps.toFixed(0)} req/s p99 ${viaDirect.p99Ms} ms; gateway ${viaGateway.rps.toFixed(0)} req/s p99 ${viaGateway.p99Ms} ms`);

    // 3. Failover: writes every 50 ms; kill -9 of the primary; back up; every acknowledged write on both sides.
    log('failover: kill -9 of the primary under writes every 50 ms');
    const acked = new Set();
    let running = true;
    let killedAt = null;
    let firstWriteAfterKillMs = null;
    let failedWrites = 0;
    const writer = (async () => {
      for (let n = 0; running; n++) {
        const id = `fo-${n}`;
        const r = await request('PUT', `${gateway}/${id}`, { n }, agent);
        if (r.status === 201) {
          acked.add(id);
          if (killedAt !== null && firstWriteAfterKillMs === null) firstWriteAfterKillMs = performance.now() - killedAt;
        } else failedWrites++;
        await sleep(50);
      }
    })();
    await sleep(2000);
    await primary.kill9();
    killedAt = performance.now();
    while (firstWriteAfterKillMs === null && performance.now() - killedAt < 30_000) await sleep(50);
    await sleep(3000);
    await primary.boot();
    const backAt = performance.now();
    let failbackMs = null;
    while (performance.now() - backAt < 60_000) {
      const info = JSON.parse((await server.cli(['couchdb:info', 'bench', '--json'])).stdout);
      if (info.failover === 'none' && info.using === 'primary') {
        failbackMs = performance.now() - backAt;
        break;
      }
      await sleep(200);
    }
    await sleep(1000);
    running = false;
    await writer;
    // Replication is continuous: give the last writes a moment to reach the replica.
    const missing = async () => {
      const out = {};
      for (const [name, p] of [['primary', primary], ['replica', replica]]) {
        const r = await request('GET', `${p.url}/bench/_all_docs`);
        const have = new Set((r.body.rows ?? []).map((row) => row.id));
        out[name] = [...acked].filter((id) => !have.has(id));
      }
      return out;
    };
    let lost = await missing();
    const settle = Date.now() + 15_000;
    while ((lost.primary.length || lost.replica.length) && Date.now() < settle) {
      await sleep(500);
      lost = await missing();
    }
    const failover = {
      acknowledgedWrites: acked.size, failedWrites, firstWriteAfterKillMs, failbackMs,
      lostOnPrimary: lost.primary.length, lostOnReplica: lost.replica.length, lost: new Set([...lost.primary, ...lost.replica]).size,
    };
    log(`  first write after the kill ${firstWriteAfterKillMs?.toFixed(0)} ms; back on the primary ${failbackMs?.toFixed(0)} ms after it returned; lost ${failover.lost} of ${acked.size}`);
    return {
      config: { rate, seconds }, lag, overhead, failover,
      targetsMet: { failoverWithin5s: firstWriteAfterKillMs !== null && firstWriteAfterKillMs <= 5000, noneLost: failover.lost === 0 },
    };
  } finally {
    agent.destroy();
    await server.stop();
    await Promise.all([primary.destroy(), replica.destroy()]);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = (name, fallback) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? Number(process.argv[i + 1]) : fallback;
  };
  const r = await runCouchdbBench({ rate: arg('--rate', 50), seconds: arg('--seconds', 10), log: (l) => console.error(l) });
  console.log(JSON.stringify(r, null, 2));
}
