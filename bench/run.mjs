// `npm run bench`: every part of issue 7 in one run on this machine, a table
// of the figures against their targets, and the same figures as JSON in
// bench/results/latest.json (plus a dated copy).
//
//   node bench/run.mjs [--only proxy,workers,tls,deploy,redeploy,footprint,restart,network] [--rounds 3] [--seconds 5]
//                      [--reps 7] [--express-reps 5] [--redeploys 20] [--apps 20]
//                      [--restart-apps 20,100] [--records 1000] [--couchdb-rate 50] [--couchdb-seconds 10]
//                      [--workers-node PATH]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { runPushToLive, STEPS } from './deploy-bench.mjs';
import { runFootprint } from './footprint-bench.mjs';
import { runNetworkBench } from './network-bench.mjs';
import { runRedeployUnderLoad } from './redeploy-bench.mjs';
import { runRestartBench } from './restart-bench.mjs';
import { runCouchdbBench } from './couchdb-bench.mjs';
import { runWorkersBench } from './workers-bench.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PARTS = ['proxy', 'workers', 'tls', 'deploy', 'redeploy', 'footprint', 'restart', 'network', 'couchdb'];

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
}
const num = (name, fallback) => Number(arg(name, fallback));
const only = arg('--only', PARTS.join(',')).split(',');
for (const p of only) if (!PARTS.includes(p)) throw new Error(`unknown part '${p}' in --only: use ${PARTS.join(',')}`);

const log = (line) => console.error(`  ${line}`);
const loadavg = () => os.loadavg().map((x) => Number(x.toFixed(2)));
let commit = null;
try {
  commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: HERE, encoding: 'utf8' }).trim();
} catch {
  /* not a git checkout */
}

const results = {
  startedAt: new Date().toISOString(),
  machine: { cpus: os.cpus().length, node: process.version, loadavgAtStart: loadavg(), commit },
};
const t0 = performance.now();

async function part(name, title, fn) {
  if (!only.includes(name)) return;
  console.error(`${title}…`);
  const started = performance.now();
  try {
    results[name] = await fn();
  } catch (err) {
    results[name] = { error: err.message };
    console.error(`  ${name} failed: ${err.stack ?? err.message}`);
  }
  results[name].seconds = Math.round((performance.now() - started) / 1000);
}

await part('proxy', '1. Proxy: direct vs platformx vs nginx', async () => {
  const file = path.join(HERE, 'proxy-bench.mjs');
  if (!fs.existsSync(file)) return { skipped: 'bench/proxy-bench.mjs is not there yet: part 1 skipped' };
  const { runProxyBench } = await import(pathToFileURL(file).href);
  return runProxyBench({ rounds: num('--rounds', 5), seconds: num('--seconds', 5), log });
});
await part('workers', '1c. Proxy workers: 1 vs 2, beside nginx 1 vs 2', () => runWorkersBench({
  rounds: num('--rounds', 5), seconds: num('--seconds', 5), node: arg('--workers-node', process.execPath), log,
}));
await part('tls', '1b. TLS: platformx vs nginx, same certificate', async () => {
  const { runTlsBench } = await import(pathToFileURL(path.join(HERE, 'tls-bench.mjs')).href);
  return runTlsBench({ rounds: num('--tls-rounds', 3), seconds: num('--seconds', 5), node: arg('--workers-node', process.execPath), log });
});
await part('deploy', '2. Push-to-live', () => runPushToLive({ reps: num('--reps', 9), expressReps: num('--express-reps', 5), log }));
await part('redeploy', '3. Redeploy under load', () => runRedeployUnderLoad({ redeploys: num('--redeploys', 20), log }));
await part('footprint', '4. Footprint', () => runFootprint({ apps: num('--apps', 20), log }));
await part('restart', '5. Server restart, cold start, release history', () => runRestartBench({
  apps: arg('--restart-apps', '20,100').split(',').map(Number), records: num('--records', 1000), log,
}));
await part('network', '6. Network policy cost', () => runNetworkBench({ rounds: num('--rounds', 5), seconds: num('--seconds', 5), log }));
await part('couchdb', '7. CouchDB data layer: replication lag, gateway overhead, failover', () => runCouchdbBench({
  rate: num('--couchdb-rate', 50), seconds: num('--couchdb-seconds', 10), log,
}));
results.machine.loadavgAtEnd = loadavg();
results.totalSeconds = Math.round((performance.now() - t0) / 1000);

// ------------------------------------------------------------------ table

const f = (x, d = 0) => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(d) : '-');
const met = (ok) => (ok === undefined || ok === null ? '' : ok ? 'met' : 'MISSED');
const rows = [['part', 'measure', 'value', 'target', '']];
const note = (p, text) => rows.push([p, text, '', '', '']);

const proxy = results.proxy;
if (proxy?.skipped || proxy?.error) note('1 proxy', proxy.skipped ?? `failed: ${proxy.error}`);
else if (proxy) {
  for (const [name, t] of Object.entries(proxy.targets)) {
    rows.push(['1 proxy', `${name}: req/s, p50/p99 ms, CPU µs/req, RSS MB`,
      `${f(t.rps)}, ${f(t.p50Ms, 2)}/${f(t.p99Ms, 2)}, ${f(t.cpuUsPerReq, 1)}, ${f(t.rssMb, 1)}`, '', '']);
  }
  const n = proxy.ratios.platformxToNginx;
  const d = proxy.ratios.platformxToDirect;
  if (n) {
    rows.push(['1 proxy', 'throughput platformx/nginx', `${f(n.rps, 2)}x`, '>= 0.6x', met(proxy.targetsMet.throughput)]);
    rows.push(['1 proxy', 'p99 platformx/nginx', `${f(n.p99, 2)}x`, '<= 2x', met(proxy.targetsMet.p99)]);
  } else note('1 proxy', 'nginx not installed: compared against direct only');
  rows.push(['1 proxy', 'throughput, p99 platformx/direct', `${f(d.rps, 2)}x, ${f(d.p99, 2)}x`, '', '']);
}

const tlsr = results.tls;
if (tlsr?.error) note('1b tls', `failed: ${tlsr.error}`);
else if (tlsr) {
  for (const [name, t] of Object.entries(tlsr.targets)) {
    rows.push(['1b tls', `${name}: per s, p50/p99 ms, CPU µs each`, `${f(t.perSecond)}, ${f(t.p50Ms, 2)}/${f(t.p99Ms, 2)}, ${f(t.cpuUsPerReq, 1)}`, '', '']);
  }
  const r = tlsr.ratios;
  if (r) {
    const dp = `data plane (${tlsr.config.dataplane.proxyWorkers} workers, node ${tlsr.config.dataplane.node})`;
    rows.push(['1b tls', `keep-alive req/s ${dp}/nginx (p99 ratio)`, `${f(r.keepAlive.rps, 2)}x (${f(r.keepAlive.p99, 2)}x)`, '>= 0.6x', met(tlsr.targetsMet.keepAlive)]);
    rows.push(['1b tls', `handshakes/s ${dp}/nginx (p99 ratio)`, `${f(r.handshakes.rps, 2)}x (${f(r.handshakes.p99, 2)}x)`, '>= 0.5x', met(tlsr.targetsMet.handshakes)]);
    rows.push(['1b tls', 'one process/nginx: keep-alive, handshakes', `${f(r.oneProcess.keepAlive.rps, 2)}x, ${f(r.oneProcess.handshakes.rps, 2)}x`, '', '']);
  } else note('1b tls', 'nginx not installed: platformx measured alone');
}

const wk = results.workers;
if (wk?.skipped || wk?.error) note('1c workers', wk.skipped ?? `failed: ${wk.error}`);
else if (wk) {
  const per = (t) => (t.workerUsPerReq?.length > 1 ? ` (per worker ${t.workerUsPerReq.map((u) => f(u, 1)).join(' / ')}, primary ${f(t.primaryUsPerReq, 1)})` : '');
  for (const [name, t] of Object.entries(wk.keepAlive)) {
    rows.push(['1c workers', `${name}: req/s, p99 ms, CPU µs/req`, `${f(t.rps)}, ${f(t.p99Ms, 2)}, ${f(t.cpuUsPerReq, 1)}${per(t)}`, '', '']);
  }
  const r = wk.ratios;
  rows.push(['1c workers', 'platformx 2 workers / 1: throughput, p99', `${f(r.twoWorkersToOne.rps, 2)}x, ${f(r.twoWorkersToOne.p99, 2)}x`, '', '']);
  if (r.nginxTwoToOne) rows.push(['1c workers', 'nginx 2 workers / 1: throughput, p99', `${f(r.nginxTwoToOne.rps, 2)}x, ${f(r.nginxTwoToOne.p99, 2)}x`, '', '']);
  for (const [name, t] of Object.entries(wk.newConnections)) {
    rows.push(['1c workers', `new connection per request, ${name}: req/s, CPU µs/req`, `${f(t.rps)}, ${f(t.cpuUsPerReq, 1)}${per(t)}`, '', '']);
  }
  if (wk.reusePort !== 'measured') note('1c workers', `reuseport: ${wk.reusePort}`);
  for (const [name, d] of Object.entries(wk.workerDeaths ?? {})) {
    rows.push(['1c workers', `${name}: ${d.kills} worker SIGKILLs under new connections, failed (hung)`, `${d.failed} (${d.hung}) of ${d.ok + d.failed}`, '', '']);
  }
}

const dep = results.deploy;
if (dep?.error) note('2 deploy', `failed: ${dep.error}`);
else if (dep) {
  const steps = (s) => STEPS.map((k) => `${k} ${f(s.steps[k])}`).join(' · ');
  rows.push(['2 deploy', 'no dependencies: push-to-live median ms', `${f(dep.noDependencies.medianMs)} (${f(dep.noDependencies.minMs)}–${f(dep.noDependencies.maxMs)})`, '<= 1500', met(dep.targetsMet.noDependencies)]);
  rows.push(['2 deploy', '  steps, median ms', steps(dep.noDependencies), '', '']);
  rows.push(['2 deploy', '  git push returns (all traffic moved; slow start when polled >= 50/s), median ms', f(dep.noDependencies.pushMedianMs), '', '']);
  const cpu = dep.noDependencies.cpuPerDeploy;
  if (cpu) rows.push(['2 deploy', '  CPU per deploy, ms', `server ${f(cpu.serverMs)} · its children ${f(cpu.serverChildrenMs)} · git client ${f(cpu.gitClientMs)}`, '', '']);
  rows.push(['2 deploy', 'Express, npm ci on warm cache: median ms', `${f(dep.expressNpmCi.medianMs)} (${f(dep.expressNpmCi.minMs)}–${f(dep.expressNpmCi.maxMs)})`, '<= 4000', met(dep.targetsMet.express)]);
  rows.push(['2 deploy', '  steps, median ms', steps(dep.expressNpmCi), '', '']);
  rows.push(['2 deploy', '  git push returns, median ms', f(dep.expressNpmCi.pushMedianMs), '', '']);
  rows.push(['2 deploy', 'Express, code change (node_modules reused): median ms', `${f(dep.expressCodeChange.medianMs)} (${f(dep.expressCodeChange.minMs)}–${f(dep.expressCodeChange.maxMs)})`, '', '']);
  rows.push(['2 deploy', '  steps, median ms', steps(dep.expressCodeChange), '', '']);
  rows.push(['2 deploy', 'Express, first deploy (cold npm cache) ms', f(dep.expressNpmCi.coldCacheMs), '', '']);
}

const re = results.redeploy;
if (re?.skipped || re?.error) note('3 redeploy', re.skipped ?? `failed: ${re.error}`);
else if (re) {
  rows.push(['3 redeploy', `failed requests over ${re.config.redeploys} redeploys (non-2xx + socket errors)`, `${re.failedRequests} (${re.during.non2xx} + ${re.during.socketErrors}) of ${re.during.total}`, '0', met(re.targetsMet.noFailedRequests)]);
  const workers = re.config.proxyWorkers ?? 1;
  rows.push(['3 redeploy', `p99 during redeploys / at rest (${workers} proxy worker${workers > 1 ? 's' : ''})`, `${f(re.p99Ratio, 2)}x (${f(re.during.p99, 1)} / ${f(re.rest.p99, 1)} ms)`, workers > 1 ? '<= 1.5x' : '<= 3x', met(re.targetsMet.p99)]);
  rows.push(['3 redeploy', 'req/s during / at rest', `${f(re.during.rps)} / ${f(re.rest.rps)}`, '', '']);
  rows.push(['3 redeploy', 'git push under load, median ms (deploy work yields to traffic)', f(re.pushMsMedian), '', '']);
  const c = (x) => (x.coresUsed ? `${f(x.coresUsed.machine, 2)} (server ${f(x.coresUsed.server, 2)})` : '-');
  rows.push(['3 redeploy', 'cores busy during / at rest', `${c(re.during)} / ${c(re.rest)}`, '', '']);
}

const fp = results.footprint;
if (fp?.error) note('4 footprint', `failed: ${fp.error}`);
else if (fp) {
  rows.push(['4 footprint', 'server RSS idle, 0 apps', `${f(fp.serverIdleRssMb, 1)} MB`, '', '']);
  rows.push(['4 footprint', `server RSS with ${fp.apps} running apps`, `${f(fp.serverRssMbWithApps, 1)} MB (peak ${f(fp.serverPeakRssMbWithApps, 1)})`, '<= 120 MB', met(fp.targetsMet.rss)]);
  if (fp.proxyWorkers?.count) rows.push(['4 footprint', `${fp.proxyWorkers.count} proxy worker processes: RSS, PSS`, `${f(fp.proxyWorkers.rssMb, 1)} MB, ${f(fp.proxyWorkers.pssMb, 1)} MB`, '', '']);
  rows.push(['4 footprint', `resident processes per app beyond the app (${fp.isolation}), their PSS`, `${fp.extraProcessesPerApp}, ${f(fp.wrapperPssMbPerApp, 2)} MB (other server children: ${fp.otherServerChildren})`, '0', met(fp.targetsMet.noWrapper)]);
  const un = fp.unconfined;
  if (un && !un.error) {
    rows.push(['4 footprint', `unconfined (server as nobody): RSS with ${un.apps} apps; processes per app beyond the app`,
      `${f(un.serverRssMbWithApps, 1)} MB; ${un.extraProcessesPerApp} (other server children: ${un.otherServerChildren})`, '0', met(un.targetsMet.noWrapper)]);
  }
}

const rs = results.restart;
if (rs?.error) note('5 restart', `failed: ${rs.error}`);
else if (rs) {
  for (const [n, r] of Object.entries(rs.restart)) {
    rows.push(['5 restart', `${n} apps, SIGTERM + start: failed requests, longest gap`, `${r.failed} of ${r.ok + r.failed}, ${f(r.maxGapMs)} ms`, '0, < 50 ms', met(r.failed === 0 && r.maxGapMs < 50)]);
  }
  if (rs.coldStart) rows.push(['5 restart', `cold start of ${rs.coldStart.apps} apps: server ready, all answer`, `${f(rs.coldStart.readyMs)} ms, ${f(rs.coldStart.allAnswerMs)} ms`, '', '']);
  const h = rs.history;
  if (h) {
    const [one, many] = Object.keys(h).map(Number).sort((a, b) => a - b);
    rows.push(['5 restart', `config:set median ms, ${one} vs ${many} release records`, `${f(h[one].configSetMedianMs)} vs ${f(h[many].configSetMedianMs)}`, 'same', '']);
    rows.push(['5 restart', `push median ms, ${one} vs ${many} release records`, `${f(h[one].pushMedianMs)} vs ${f(h[many].pushMedianMs)}`, 'same', '']);
  }
}

const net = results.network;
if (net?.skipped || net?.error) note('6 network', net.skipped ?? `failed: ${net.error}`);
else if (net) {
  const pr = net.perRequest;
  rows.push(['6 network', 'through the proxy with / without the policy: req/s, p99 ms', `${f(pr.withPolicy.rps)} / ${f(pr.withoutPolicy.rps)}, ${f(pr.withPolicy.p99Ms, 2)} / ${f(pr.withoutPolicy.p99Ms, 2)} (ratios ${f(pr.ratios.rps, 2)}x, ${f(pr.ratios.p99, 2)}x)`, '', '']);
  const pp = net.perPacket;
  rows.push(['6 network', "an app's loopback round trip; new allowed connection, µs with / without", `${f(pp.roundTripUs.withPolicy, 1)} / ${f(pp.roundTripUs.withoutPolicy, 1)}; ${f(pp.newConnectionUs.withPolicy)} / ${f(pp.newConnectionUs.withoutPolicy)}`, '', '']);
  rows.push(['6 network', 'per app: resident processes; nft call per process start or exit, ms; start-up ms', `${net.perApp.residentProcesses}; ${f(net.perApp.updateMedianMs, 1)}; ${f(net.startupMedianMs)}`, '0', met(net.perApp.residentProcesses === 0)]);
}

const cd = results.couchdb;
if (cd?.error) note('7 couchdb', `failed: ${cd.error}`);
else if (cd) {
  rows.push(['7 couchdb', `replication lag through the gateway at ${cd.config.rate} writes/s, p50/p99 ms`, `${f(cd.lag.p50Ms)}/${f(cd.lag.p99Ms)} (${cd.lag.arrived} of ${cd.lag.acked} arrived)`, '', '']);
  const o = cd.overhead;
  rows.push(['7 couchdb', 'document GET req/s, p99 ms: primary directly / gateway', `${f(o.direct.rps)}, ${f(o.direct.p99Ms)} / ${f(o.gateway.rps)}, ${f(o.gateway.p99Ms)}`, '', '']);
  rows.push(['7 couchdb', 'gateway/direct throughput, p99', `${f(o.rpsRatio, 2)}x, ${f(o.p99Ratio, 2)}x`, '', '']);
  const fo = cd.failover;
  rows.push(['7 couchdb', 'kill -9 of the primary: first successful write after, ms', f(fo.firstWriteAfterKillMs), '<= 5000', met(cd.targetsMet.failoverWithin5s)]);
  rows.push(['7 couchdb', 'documents lost (acknowledged writes missing on either side)', `${fo.lost} of ${fo.acknowledgedWrites}`, '0', met(cd.targetsMet.noneLost)]);
  rows.push(['7 couchdb', 'primary back: traffic on it again after, ms', f(fo.failbackMs), '', '']);
}

const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
const lines = rows.map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd());
lines.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
console.log(lines.join('\n'));
console.log(`\n${results.machine.cpus} CPUs, node ${results.machine.node}, load average ${results.machine.loadavgAtStart.join(' ')} at start, ${results.machine.loadavgAtEnd.join(' ')} at end; ${results.totalSeconds} s in all`);

const dir = path.join(HERE, 'results');
fs.mkdirSync(dir, { recursive: true });
const json = JSON.stringify(results, null, 2) + '\n';
fs.writeFileSync(path.join(dir, 'latest.json'), json);
fs.writeFileSync(path.join(dir, `${results.startedAt.replace(/[:.]/g, '-')}.json`), json);
console.log(`figures: ${path.relative(process.cwd(), path.join(dir, 'latest.json'))}`);
