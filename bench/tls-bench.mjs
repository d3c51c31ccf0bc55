// TLS benchmark (issue 13): new-connection handshakes per second and
// keep-alive requests per second over HTTPS, through platformx and through
// nginx (worker_processes auto), all with the same ECDSA P-256 certificate, in
// alternating rounds with wrk. platformx is measured twice: as deployed (the
// real data plane with the server's default proxy workers, one per core, on
// the Node given by --node) and as its HTTPS listener and proxy in one
// process. The targets apply to the first. Ratios are medians of per-round
// ratios so that machine drift cancels.
//
//   npx tsc -p . && node bench/tls-bench.mjs [--rounds 3] [--seconds 5] [--node PATH] [--json]
//
// Started as a child with `tls-proxy UPSTREAM_PORT CERT KEY` it is the
// platformx side: the real proxy, edge hook and HTTPS listener in one process.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { median } from './bench-platform.mjs';
import { HOST, UPSTREAM_BODY, accessWriter, cpuSeconds, processTree, startChild, startNginx, stop, which, wrk } from './proxy-bench.mjs';
import { startPlatformx } from './workers-bench.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const CONNECTIONS = 50;
const dist = (p) => pathToFileURL(path.join(ROOT, 'dist', p)).href;

// ---------------------------------------------------------------- platformx child

async function runTlsProxy(upstreamPort, certFile, keyFile) {
  const { startProxy } = await import(dist('proxy/proxy-server.js'));
  const { startHttpsListener } = await import(dist('certs/https-listener.js'));
  const { edgeHook } = await import(dist('certs/edge.js'));
  const { TlsIndex } = await import(dist('certs/tls-index.js'));
  const { SessionTickets } = await import(dist('certs/session-tickets.js'));
  const { ChallengeTokens } = await import(dist('certs/acme-issuer.js'));
  const { parseBundle } = await import(dist('certs/certificate.js'));
  const { AppLogs } = await import(dist('logs/app-log.js'));
  const cert = parseBundle(fs.readFileSync(certFile, 'utf8') + fs.readFileSync(keyFile, 'utf8'), 'the bench certificate');
  // As the data plane's proxy stack makes it: with shared, renewed session tickets.
  const index = new TlsIndex(cert, new SessionTickets());
  index.replace(new Map([[HOST, cert]]), cert, new Map());
  // The access line as the server writes it, into the real batched app log.
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pxbench-tls-log-'));
  const logs = new AppLogs(() => logDir);
  const onAccess = (e) => {
    if (!e.app) return;
    logs.get(e.app).write('router', `host_header=${e.host} target_port=${e.targetPort ?? '-'} source_ip=${e.sourceIp} method=${e.method} path=${JSON.stringify(e.path)} status=${e.status} ms=${e.ms}`);
  };
  let httpsPort = 0;
  const edge = edgeHook({ index, tokens: new ChallengeTokens(), httpsPort: () => httpsPort });
  const proxy = await startProxy({ host: '127.0.0.1', port: 0, onAccess, edge });
  proxy.routes.setHosts('bench', [HOST]);
  proxy.routes.setBackends('bench', [upstreamPort]);
  const listener = await startHttpsListener({ host: '127.0.0.1', port: 0, index, proxy });
  httpsPort = listener.port;
  console.log(`port ${listener.port}`);
  process.on('SIGTERM', async () => {
    await Promise.all([listener.close(), proxy.close()]);
    fs.rmSync(logDir, { recursive: true, force: true });
    process.exit(0);
  });
}

// ---------------------------------------------------------------- helpers

function makeCertificate(dir) {
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert,
    '-days', '2', '-subj', `/CN=${HOST}`, '-addext', `subjectAltName=DNS:${HOST}`], { stdio: 'ignore' });
  return { cert, key };
}

/** wrk over HTTPS; handshakes: every request on a new connection (Connection: close), so each is a TLS handshake. */
const tlsWrk = (port, seconds, handshakes) => wrk(port, seconds, { scheme: 'https', headers: handshakes ? ['Connection: close'] : [] });

function fetchBody(port) {
  return new Promise((resolve, reject) => {
    https.get({ host: '127.0.0.1', port, path: '/', servername: HOST, headers: { host: HOST }, rejectUnauthorized: false, agent: false, ALPNProtocols: ['http/1.1'] }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ body, alpn: res.socket.alpnProtocol }));
    }).on('error', reject);
  });
}

// ---------------------------------------------------------------- bench

const MODES = { keepAlive: false, handshakes: true };

/** Measures platformx and nginx over HTTPS in `rounds` alternating rounds of `seconds` per mode. */
export async function runTlsBench({ rounds = 3, seconds = 5, node = process.execPath, log = () => {} } = {}) {
  if (!which('wrk')) throw new Error('wrk is not installed: apt-get install wrk');
  if (!which('openssl')) throw new Error('openssl is not installed: apt-get install openssl');
  if (!fs.existsSync(path.join(ROOT, 'dist/certs/https-listener.js'))) throw new Error('dist/certs/https-listener.js is missing: run `npx tsc -p .` first');
  const nginxBin = which('nginx');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pxbench-tls-'));
  const started = [];
  let dp = null;
  const cleanup = [() => fs.rmSync(dir, { recursive: true, force: true })];
  try {
    const cert = makeCertificate(dir);
    const upstream = await startChild(['upstream'], path.join(HERE, 'proxy-bench.mjs'));
    started.push(upstream.child);
    // The V8 flags the data plane gives its proxy workers, where TLS is terminated.
    const { PROXY_WORKER_FLAGS } = await import(pathToFileURL(path.join(ROOT, 'dist/dataplane/worker-flags.js')).href);
    const px = await startChild(['tls-proxy', String(upstream.port), cert.cert, cert.key], fileURLToPath(import.meta.url), PROXY_WORKER_FLAGS);
    started.push(px.child);
    // As deployed: the server's default --proxy-workers, and the data plane's default balance on that Node.
    const workers = os.availableParallelism();
    const writer = await accessWriter();
    cleanup.push(writer.remove);
    dp = await startPlatformx({ node, workers, upstreamPort: upstream.port, onAccess: writer.onAccess, tls: cert });
    const dpNode = execFileSync(node, ['-p', 'process.version'], { encoding: 'utf8' }).trim();
    const targets = [
      { name: 'dataplane', port: dp.httpsPort, root: dp.child.pid },
      { name: 'platformx', port: px.port, pids: [px.child.pid] },
    ];
    if (nginxBin) {
      const ngx = await startNginx(nginxBin, upstream.port, cert);
      started.push(ngx.child);
      cleanup.push(() => fs.rmSync(ngx.dir, { recursive: true, force: true }));
      targets.push({ name: 'nginx', port: ngx.port, root: ngx.child.pid });
    }
    for (const t of targets) {
      const r = await fetchBody(t.port);
      if (r.body !== UPSTREAM_BODY) throw new Error(`${t.name} on port ${t.port} did not serve the app: ${JSON.stringify(r.body.slice(0, 200))}`);
      if (r.alpn !== 'http/1.1') throw new Error(`${t.name}: an HTTP/1.1 client got ALPN ${r.alpn}`);
    }
    for (const t of targets) for (const h of Object.values(MODES)) await tlsWrk(t.port, 1, h);
    for (const t of targets) if (t.root) t.pids = processTree(t.root);

    const runs = {};
    for (const mode of Object.keys(MODES)) for (const t of targets) runs[`${t.name}.${mode}`] = [];
    for (let r = 0; r < rounds; r++) {
      const order = targets.map((_, i) => targets[(i + r) % targets.length]);
      for (const [mode, handshakes] of Object.entries(MODES)) {
        for (const t of order) {
          const cpu0 = cpuSeconds(t.pids);
          const res = await tlsWrk(t.port, seconds, handshakes);
          const cpu = cpuSeconds(t.pids) - cpu0;
          const run = { ...res, cpuUsPerReq: res.total ? (cpu * 1e6) / res.total : null };
          runs[`${t.name}.${mode}`].push(run);
          log(`round ${r + 1}/${rounds} ${mode.padEnd(10)} ${t.name.padEnd(9)} ${Math.round(run.rps)} /s p99 ${run.p99.toFixed(2)} ms errors ${run.non2xx + run.socketErrors}`);
        }
      }
    }
    const summary = {};
    for (const [k, list] of Object.entries(runs)) {
      summary[k] = {
        perSecond: median(list.map((x) => x.rps)), p50Ms: median(list.map((x) => x.p50)), p99Ms: median(list.map((x) => x.p99)),
        cpuUsPerReq: median(list.map((x) => x.cpuUsPerReq)), errors: list.reduce((a, x) => a + x.non2xx + x.socketErrors, 0),
      };
    }
    const ratio = (name, mode, key) => median(runs[`${name}.${mode}`].map((x, i) => x[key] / runs[`nginx.${mode}`][i][key]));
    const ratiosOf = (name) => ({
      keepAlive: { rps: ratio(name, 'keepAlive', 'rps'), p99: ratio(name, 'keepAlive', 'p99') },
      handshakes: { rps: ratio(name, 'handshakes', 'rps'), p99: ratio(name, 'handshakes', 'p99') },
    });
    // keepAlive, handshakes: the data plane as deployed; oneProcess: listener and proxy in one process.
    const ratios = nginxBin ? { ...ratiosOf('dataplane'), oneProcess: ratiosOf('platformx') } : null;
    return {
      config: {
        rounds, seconds, connections: CONNECTIONS, loadGenerator: 'wrk -t2 (HTTP/1.1 over TLS; handshakes: Connection: close)', certificate: 'ECDSA P-256',
        cpus: os.cpus().length, node: process.version, dataplane: { node: dpNode, proxyWorkers: workers },
      },
      nginx: nginxBin ? 'present' : 'missing: platformx measured alone',
      targets: summary,
      ratios,
      targetsMet: ratios ? { keepAlive: ratios.keepAlive.rps >= 0.6, handshakes: ratios.handshakes.rps >= 0.5 } : null,
      runs,
    };
  } finally {
    await dp?.close();
    for (const c of started.reverse()) await stop(c);
    for (const f of cleanup) f();
  }
}

function argValue(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.argv[2] === 'tls-proxy') await runTlsProxy(Number(process.argv[3]), process.argv[4], process.argv[5]);
  else {
    const i = process.argv.indexOf('--node');
    const node = i > 0 ? process.argv[i + 1] : process.execPath;
    const result = await runTlsBench({ rounds: argValue('--rounds', 3), seconds: argValue('--seconds', 5), node, log: (line) => console.error(line) });
    if (process.argv.includes('--json')) console.log(JSON.stringify(result, null, 2));
    else {
      const f = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '-');
      for (const [k, t] of Object.entries(result.targets)) console.log(`${k.padEnd(22)} ${f(t.perSecond).padStart(7)}/s  p50 ${f(t.p50Ms, 2)} ms  p99 ${f(t.p99Ms, 2)} ms  CPU ${f(t.cpuUsPerReq, 1)} µs/req  errors ${t.errors}`);
      const r = result.ratios;
      if (r) {
        const { node: v, proxyWorkers } = result.config.dataplane;
        console.log(`data plane (${proxyWorkers} proxy workers, node ${v})/nginx keep-alive: ${f(r.keepAlive.rps, 2)}x req/s (target >= 0.6), p99 ${f(r.keepAlive.p99, 2)}x`);
        console.log(`data plane (${proxyWorkers} proxy workers, node ${v})/nginx handshakes: ${f(r.handshakes.rps, 2)}x per s (target >= 0.5), p99 ${f(r.handshakes.p99, 2)}x`);
        console.log(`one process/nginx: keep-alive ${f(r.oneProcess.keepAlive.rps, 2)}x, handshakes ${f(r.oneProcess.handshakes.rps, 2)}x`);
      }
    }
  }
}
