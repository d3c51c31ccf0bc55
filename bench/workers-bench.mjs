// Proxy workers (issue 17): the real data plane with 1 and with 2 proxy worker
// processes, beside nginx with 1 and 2 worker processes, in front of one tiny
// upstream app, in alternating rounds of wrk -t2 at 50 keep-alive connections.
// CPU is read per process from /proc: each worker's µs per request it served,
// the data plane's own (the primary: accepts under cluster, merges the access
// entries), and this process's, which writes the access lines as the server does.
// With a Node that has reusePort (>= 22.12, `--node PATH`) it also compares the
// two ways of spreading connections, cluster round-robin and SO_REUSEPORT, with
// keep-alive and with a new connection per request. Last, what a worker's death
// costs: 16 clients open a new connection per request while a worker is SIGKILLed
// 5 times; failed and hung (no answer in 3 s) requests are counted.
//
//   npx tsc -p . && node bench/workers-bench.mjs [--rounds 5] [--seconds 5] [--node PATH] [--json]
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  HOST, UPSTREAM_BODY, accessWriter, cpuSeconds, fetchBody, median, processTree, rssMb, startChild, startNginx, stop, which, wrk,
} from './proxy-bench.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');

/** Whether `node` can give each worker its own listener (the data plane's own test, asked of that binary). */
function nodeVersion(node) {
  return spawnSync(node, ['-p', 'process.versions.node'], { encoding: 'utf8' }).stdout.trim();
}
function hasReusePort(version) {
  const [major, minor] = version.split('.').map(Number);
  return process.platform === 'linux' && (major > 22 || (major === 22 && minor >= 12));
}

/**
 * The real data plane (dist/dataplane/main.js) routing HOST to the upstream, steered as the server steers it;
 * with tls ({ cert, key } files) it also serves HTTPS with that certificate for HOST (its port: httpsPort).
 */
export async function startPlatformx({ node, workers, balance, upstreamPort, onAccess, tls = null }) {
  const { DataplaneClient } = await import(pathToFileURL(path.join(ROOT, 'dist/dataplane/client.js')).href);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pxbench-dp-'));
  const socket = path.join(dir, 'dataplane.sock');
  const args = [path.join(ROOT, 'dist/dataplane/main.js'), '--data', dir, '--socket', socket, '--host', '127.0.0.1', '--http-port', '0',
    '--https-port', tls ? '0' : 'off', '--proxy-workers', String(workers), ...(balance ? ['--balance', balance] : [])];
  const child = spawn(node, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d) => {
      out += d;
      const m = /^ready (\d+)$/m.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`the data plane exited with ${code} before it served: ${out}`)));
  });
  child.stdout.resume();
  const client = await DataplaneClient.connect(socket);
  client.on('access', onAccess);
  await client.subscribe();
  client.routes.setHosts('bench', [HOST]);
  await client.routes.shiftBackends('bench', [upstreamPort], 0);
  const httpsPort = tls ? await serveCertificate(client, tls) : null;
  return {
    child, port, httpsPort, client,
    async close() {
      const gone = new Promise((r) => child.once('exit', r));
      await client.shutdown();
      await gone;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Sends the certificate for HOST as the server sends its set; resolves with the HTTPS port. */
async function serveCertificate(client, tls) {
  const mod = (p) => import(pathToFileURL(path.join(ROOT, 'dist', p)).href);
  const [{ TlsIndex }, { ChallengeTokens }, { parseBundle }] = await Promise.all([mod('certs/tls-index.js'), mod('certs/acme-issuer.js'), mod('certs/certificate.js')]);
  const cert = parseBundle(fs.readFileSync(tls.cert, 'utf8') + fs.readFileSync(tls.key, 'utf8'), 'the bench certificate');
  const index = new TlsIndex(cert);
  const served = client.serveTls({ index, tokens: new ChallengeTokens() });
  index.replace(new Map([[HOST, cert]]), cert, new Map());
  return served;
}

/** Requests served per worker pid, from the data plane's own count. */
async function servedByPid(t) {
  if (!t.client) return null;
  return new Map((await t.client.workers()).map((w) => [w.pid, w.requests]));
}

async function measure(t, seconds, headers) {
  const pids = t.client ? [t.child.pid, ...(await t.client.workers()).map((w) => w.pid).filter((p) => p !== t.child.pid)] : processTree(t.root);
  const cpu0 = new Map(pids.map((p) => [p, cpuSeconds([p])]));
  const served0 = await servedByPid(t);
  const self0 = process.cpuUsage();
  const res = await wrk(t.port, seconds, { headers });
  const self = process.cpuUsage(self0);
  const served1 = await servedByPid(t);
  const cpu = new Map(pids.map((p) => [p, cpuSeconds([p]) - cpu0.get(p)]));
  const total = [...cpu.values()].reduce((a, b) => a + b, 0);
  const run = { ...res, cpuUsPerReq: res.total ? (total * 1e6) / res.total : null, rssMb: rssMb(pids), cores: total / seconds };
  if (t.client) {
    const primary = t.child.pid;
    run.primaryUsPerReq = (cpu.get(primary) * 1e6) / res.total;
    // In-process (one worker) the primary is the worker.
    run.workers = pids.filter((p) => p !== primary || pids.length === 1).map((p) => {
      const n = served1.get(p) - (served0.get(p) ?? 0);
      return { pid: p, requests: n, share: n / res.total, usPerReq: n ? (cpu.get(p) * 1e6) / n : null };
    });
    // The server's part: writing the access lines it receives (this process here).
    run.serverUsPerReq = ((self.user + self.system) / res.total);
  }
  return run;
}

/** New connections from 16 loops while a serving worker is SIGKILLed `kills` times, 1.5 s apart. */
async function killWorkers(t, kills = 5) {
  let ok = 0, failed = 0, hung = 0, running = true;
  const get = () => new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port: t.port, headers: { host: HOST }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
    });
    req.setTimeout(3000, () => ((hung++), req.destroy()));
    req.on('error', () => resolve(false));
  });
  const loops = Array.from({ length: 16 }, async () => {
    while (running) (await get()) ? ok++ : failed++;
  });
  for (let i = 0; i < kills; i++) {
    await new Promise((r) => setTimeout(r, 1500));
    const victim = (await t.client.workers()).find((w) => w.state === 'serving');
    if (victim) process.kill(victim.pid, 'SIGKILL');
  }
  await new Promise((r) => setTimeout(r, 1500));
  running = false;
  await Promise.all(loops);
  return { kills, ok, failed, hung, failedPerKill: failed / kills };
}

function summarize(list) {
  const m = (key) => median(list.map((x) => x[key]));
  const s = { rps: m('rps'), p50Ms: m('p50'), p99Ms: m('p99'), cpuUsPerReq: m('cpuUsPerReq'), cores: m('cores'),
    rssMb: Math.max(...list.map((x) => x.rssMb)), errors: list.reduce((a, x) => a + x.non2xx + x.socketErrors, 0) };
  if (list[0].workers) {
    s.primaryUsPerReq = m('primaryUsPerReq');
    s.serverUsPerReq = m('serverUsPerReq');
    s.workerUsPerReq = list[0].workers.map((_, i) => median(list.map((x) => x.workers[i]?.usPerReq)));
    s.workerShare = list[0].workers.map((_, i) => median(list.map((x) => x.workers[i]?.share)));
  }
  return s;
}

/** `rounds` alternating rounds over targets (the order rotates), wrk sending `headers` too. */
async function rounds(targets, { count, seconds, headers = [], label, log }) {
  const runs = Object.fromEntries(targets.map((t) => [t.name, []]));
  for (let r = 0; r < count; r++) {
    for (const t of targets.map((_, i) => targets[(i + r) % targets.length])) {
      const run = await measure(t, seconds, headers);
      runs[t.name].push(run);
      log(`${label} round ${r + 1}/${count} ${t.name.padEnd(22)} ${Math.round(run.rps)} req/s p99 ${run.p99.toFixed(2)} ms, ${run.cpuUsPerReq?.toFixed(1)} µs/req`);
    }
  }
  return { targets: Object.fromEntries(Object.entries(runs).map(([n, l]) => [n, summarize(l)])), runs };
}

export async function runWorkersBench({ rounds: count = 5, seconds = 5, node = process.execPath, log = () => {} } = {}) {
  if (!which('wrk')) return { skipped: 'wrk is not installed (apt-get install wrk)' };
  if (!fs.existsSync(path.join(ROOT, 'dist/dataplane/main.js'))) throw new Error('dist/dataplane/main.js is missing: run `npx tsc -p .` first');
  const nginxBin = which('nginx');
  const version = nodeVersion(node);
  const reusePort = hasReusePort(version);
  const started = [];
  const closers = [];
  try {
    const upstream = await startChild(['upstream']);
    started.push(upstream.child);
    const writer = await accessWriter();
    closers.push(writer.remove);
    const targets = [];
    const px = async (name, workers, balance) => {
      const dp = await startPlatformx({ node, workers, balance, upstreamPort: upstream.port, onAccess: writer.onAccess });
      closers.unshift(() => dp.close());
      targets.push({ name, ...dp });
    };
    await px('platformx 1 worker', 1);
    await px('platformx 2 workers', 2, 'cluster');
    await px('platformx 2 shared', 2, 'shared');
    if (reusePort) await px('platformx 2 reuseport', 2, 'reuseport');
    if (nginxBin) {
      for (const n of [1, 2]) {
        const ngx = await startNginx(nginxBin, upstream.port, null, n);
        started.push(ngx.child);
        closers.push(() => fs.rmSync(ngx.dir, { recursive: true, force: true }));
        targets.push({ name: `nginx ${n} worker${n > 1 ? 's' : ''}`, port: ngx.port, root: ngx.child.pid });
      }
    }
    for (const t of targets) {
      const body = await fetchBody(t.port);
      if (body !== UPSTREAM_BODY) throw new Error(`${t.name} did not serve the app: ${JSON.stringify(body.slice(0, 200))}`);
    }
    for (const t of targets) await wrk(t.port, 1);

    const keepAlive = await rounds(targets, { count, seconds, label: 'keep-alive', log });
    // A new connection per request: what the cluster primary's accept-and-hand-over costs against
    // workers accepting from one shared socket (and SO_REUSEPORT where this Node has it).
    const twoWorkers = (t) => /2 (workers|shared|reuseport)/.test(t.name);
    const churn = await rounds(targets.filter(twoWorkers), { count, seconds, headers: ['Connection: close'], label: 'new connections', log });
    const deaths = {};
    for (const t of targets.filter((x) => x.client && twoWorkers(x))) {
      deaths[t.name] = await killWorkers(t);
      log(`worker deaths, ${t.name}: ${deaths[t.name].failed} failed (${deaths[t.name].hung} of them hung) of ${deaths[t.name].ok + deaths[t.name].failed} over ${deaths[t.name].kills} kills`);
    }
    const k = keepAlive.targets;
    const ratio = (a, b, key) => median(keepAlive.runs[a].map((x, i) => x[key] / keepAlive.runs[b][i][key]));
    return {
      config: { rounds: count, seconds, connections: 50, loadGenerator: 'wrk -t2', cpus: os.cpus().length, node: version, reusePort },
      nginx: nginxBin ? 'present' : 'missing',
      keepAlive: keepAlive.targets,
      newConnections: churn.targets,
      reusePort: reusePort ? 'measured' : `reuseport needs Node >= 22.12 (this is ${version}): run with --node PATH`,
      ratios: {
        twoWorkersToOne: { rps: ratio('platformx 2 workers', 'platformx 1 worker', 'rps'), p99: ratio('platformx 2 workers', 'platformx 1 worker', 'p99') },
        nginxTwoToOne: nginxBin ? { rps: ratio('nginx 2 workers', 'nginx 1 worker', 'rps'), p99: ratio('nginx 2 workers', 'nginx 1 worker', 'p99') } : null,
        twoWorkersToNginxTwo: nginxBin ? { rps: ratio('platformx 2 workers', 'nginx 2 workers', 'rps'), p99: ratio('platformx 2 workers', 'nginx 2 workers', 'p99') } : null,
      },
      workerDeaths: deaths,
      cpuUsPerReq: Object.fromEntries(Object.entries(k).map(([n, t]) => [n, t.cpuUsPerReq])),
      runs: { keepAlive: keepAlive.runs, newConnections: churn.runs },
    };
  } finally {
    for (const c of closers) await c();
    for (const c of started.reverse()) await stop(c);
  }
}

function printTable(result) {
  const f = (x, d = 0) => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(d) : '-');
  const table = (title, targets) => {
    console.log(title);
    const rows = [['target', 'req/s', 'p50 ms', 'p99 ms', 'CPU µs/req', 'cores', 'per worker µs/req (share)', 'primary', 'server']];
    for (const [name, t] of Object.entries(targets)) {
      const per = t.workerUsPerReq ? t.workerUsPerReq.map((u, i) => `${f(u, 1)} (${f(t.workerShare[i] * 100)}%)`).join(', ') : '-';
      rows.push([name, f(t.rps), f(t.p50Ms, 2), f(t.p99Ms, 2), f(t.cpuUsPerReq, 1), f(t.cores, 2), per, f(t.primaryUsPerReq, 1), f(t.serverUsPerReq, 1)]);
    }
    const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
    for (const r of rows) console.log(r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  '));
    console.log('');
  };
  table('keep-alive (wrk -t2 -c50)', result.keepAlive);
  table('a new connection per request', result.newConnections);
  if (result.reusePort !== 'measured') console.log(`reuseport: ${result.reusePort}\n`);
  for (const [name, d] of Object.entries(result.workerDeaths)) {
    console.log(`${name}, ${d.kills} SIGKILLs under new connections: ${d.failed} failed (${d.hung} hung 3 s) of ${d.ok + d.failed}`);
  }
  const r = result.ratios;
  console.log(`platformx 2 workers / 1: throughput ${f(r.twoWorkersToOne.rps, 2)}x, p99 ${f(r.twoWorkersToOne.p99, 2)}x`);
  if (r.nginxTwoToOne) console.log(`nginx 2 workers / 1:     throughput ${f(r.nginxTwoToOne.rps, 2)}x, p99 ${f(r.nginxTwoToOne.p99, 2)}x`);
  if (r.twoWorkersToNginxTwo) console.log(`platformx 2 / nginx 2:   throughput ${f(r.twoWorkersToNginxTwo.rps, 2)}x, p99 ${f(r.twoWorkersToNginxTwo.p99, 2)}x`);
  console.log(`(${result.config.rounds} rounds x ${result.config.seconds} s, node ${result.config.node}, ${result.config.cpus} CPUs, medians of per-round ratios)`);
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = (name, d) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : d);
  const result = await runWorkersBench({
    rounds: Number(arg('--rounds', 5)), seconds: Number(arg('--seconds', 5)), node: arg('--node', process.execPath),
    log: (line) => console.error(line),
  });
  if (process.argv.includes('--json')) console.log(JSON.stringify(result, null, 2));
  else if (result.skipped) console.log(result.skipped);
  else printTable(result);
}
