// Proxy overhead benchmark (issue 7, part 1; issue 12): one tiny upstream app
// measured direct, through platformx's proxy with its hand-written forwarder,
// through the same proxy with undici's Pool/dispatch as the forwarder
// (bench/undici-forwarder.mjs), and through nginx, in alternating rounds with
// wrk at 50 connections. Ratios are medians of per-round ratios so that
// machine drift cancels.
//
//   npx tsc -p . && node bench/proxy-bench.mjs [--rounds 5] [--seconds 3] [--json]
//
// The same file is also the upstream app and the proxy host when started as
// a child with `upstream` or `proxy <upstreamPort> [hand-written|undici]`:
// each runs in its own process so its CPU time and RSS can be read from /proc.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseWrk } from './bench-platform.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
export const HOST = 'bench.example.com';
const CONNECTIONS = 50;
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

// ---------------------------------------------------------------- children

export const UPSTREAM_BODY = 'Hello from the tiny app\n';

function runUpstream() {
  const body = UPSTREAM_BODY;
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
    res.end(body);
  });
  server.listen(0, '127.0.0.1', () => console.log(`port ${server.address().port}`));
}

/**
 * The access line as the server writes it (src/server/server.ts), into the real
 * batched app log in a temp folder: the proxy is measured with its logging, as deployed.
 */
export async function accessWriter() {
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pxbench-log-'));
  const { AppLogs } = await import(pathToFileURL(path.join(ROOT, 'dist/logs/app-log.js')).href);
  const logs = new AppLogs(() => logDir);
  const onAccess = (e) => {
    if (!e.app) return;
    logs.get(e.app).write(
      'router',
      `host_header=${e.host} target_port=${e.targetPort ?? '-'} source_ip=${e.sourceIp} method=${e.method} path=${JSON.stringify(e.path)} status=${e.status} ms=${e.ms}`,
    );
  };
  return { onAccess, remove: () => fs.rmSync(logDir, { recursive: true, force: true }) };
}

async function runProxy(upstreamPort, forwarderName = 'hand-written') {
  const { startProxy } = await import(pathToFileURL(path.join(ROOT, 'dist/proxy/proxy-server.js')).href);
  const { onAccess, remove } = await accessWriter();
  // The server's defaults: 30 s request timeout, 60 s idle.
  const timeouts = { requestMs: 30_000, idleMs: 60_000 };
  const forwarder =
    forwarderName === 'undici' ? new (await import('./undici-forwarder.mjs')).UndiciForwarder(timeouts) : undefined;
  const proxy = await startProxy({
    host: '127.0.0.1', port: 0, forwarder, requestTimeoutMs: timeouts.requestMs, idleTimeoutMs: timeouts.idleMs,
    onAccess: process.env.PXBENCH_NO_LOG ? undefined : onAccess,
  });
  proxy.routes.setHosts('bench', [HOST]);
  proxy.routes.setBackends('bench', [upstreamPort]);
  console.log(`port ${proxy.port}`);
  process.on('SIGTERM', async () => {
    await proxy.close();
    remove();
    process.exit(0);
  });
}

// ---------------------------------------------------------------- helpers

/** Runs `file` (this one by default) as a child with args and node `flags`; resolves once it prints "port N". */
export function startChild(args, file = fileURLToPath(import.meta.url), flags = []) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...flags, file, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d) => {
      out += d;
      const m = /port (\d+)/.exec(out);
      if (m) resolve({ child, port: Number(m[1]) });
    });
    child.on('exit', (code) => reject(new Error(`bench child ${args[0]} exited with ${code} before listening`)));
  });
}

export function fetchBody(port) {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/', headers: { host: HOST }, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

export function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export function waitForPort(port, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve();
      });
      s.once('error', () => {
        s.destroy();
        if (Date.now() > deadline) reject(new Error(`nothing listens on port ${port}`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

export function which(cmd) {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin'])) {
    const p = path.join(dir, cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return null;
}

/** The pid and every descendant (nginx's workers). */
export function processTree(pid) {
  const pids = [pid];
  const parents = new Map();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parents.set(Number(entry), ppid);
    } catch {
      /* gone */
    }
  }
  for (let i = 0; i < pids.length; i++) for (const [p, pp] of parents) if (pp === pids[i]) pids.push(p);
  return pids;
}

/** CPU seconds (user+system) of a process tree. */
export function cpuSeconds(pids) {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]); // utime, stime
    } catch {
      /* gone */
    }
  }
  return ticks / CLK_TCK;
}

/** Resident set size in MB of a process tree. */
export function rssMb(pids) {
  let kb = 0;
  for (const pid of pids) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) kb += Number(m[1]);
    } catch {
      /* gone */
    }
  }
  return kb / 1024;
}

/** wrk at 50 connections; `scheme` https and `headers` for the TLS bench. */
export function wrk(port, seconds, { scheme = 'http', headers = [] } = {}) {
  return new Promise((resolve, reject) => {
    const args = ['-t2', `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency', '-H', `Host: ${HOST}`, ...headers.flatMap((h) => ['-H', h]), `${scheme}://127.0.0.1:${port}/`];
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(parseWrk(out)) : reject(new Error(`wrk failed (${code}): ${out}`))));
  });
}

/**
 * nginx in front of the upstream; with tls ({ cert, key }) it listens with TLS and HTTP/2 offered over ALPN, as platformx does;
 * `workers`: its worker_processes ('auto': one per core).
 */
export async function startNginx(nginxBin, upstreamPort, tls = null, workers = 'auto') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pxbench-nginx-'));
  const port = await freePort();
  for (const d of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) fs.mkdirSync(path.join(dir, d));
  // Comparable to platformx: keep-alive to the upstream, X-Forwarded-* set,
  // an access line per request into a buffered log file.
  fs.writeFileSync(
    path.join(dir, 'nginx.conf'),
    `daemon off;
worker_processes ${workers};
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log ${dir}/access.log combined buffer=64k flush=1s;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream app { server 127.0.0.1:${upstreamPort}; keepalive 64; }
  server {
    listen 127.0.0.1:${port}${tls ? ' ssl http2' : ''};${tls ? `
    ssl_certificate ${tls.cert};
    ssl_certificate_key ${tls.key};
    # Debian 12's nginx 1.22 offers only up to TLS 1.2 unless told (1.23.4 made 1.3 the default); platformx speaks 1.3.
    ssl_protocols TLSv1.2 TLSv1.3;` : ''}
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $http_host;${tls ? `
      proxy_set_header X-Forwarded-Port $server_port;` : ''}
    }
  }
}
`,
  );
  const child = spawn(nginxBin, ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-e', path.join(dir, 'error.log')], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  await waitForPort(port);
  return { child, port, dir };
}

export function stop(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 3000).unref();
  });
}

export const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

// ---------------------------------------------------------------- bench

/**
 * Measures direct / platformx / nginx in `rounds` alternating rounds of
 * `seconds` each; returns per-target medians and the median per-round ratios.
 */
export async function runProxyBench({ rounds = 5, seconds = 3, log = () => {} } = {}) {
  if (!which('wrk')) throw new Error('wrk is not installed: apt-get install wrk');
  if (!fs.existsSync(path.join(ROOT, 'dist/proxy/proxy-server.js'))) {
    throw new Error('dist/proxy/proxy-server.js is missing: run `npx tsc -p .` first');
  }
  const nginxBin = which('nginx');
  const started = [];
  const cleanup = [];
  try {
    const upstream = await startChild(['upstream']);
    started.push(upstream.child);
    // The proxy runs with the V8 flags the data plane gives its proxy workers.
    const { PROXY_WORKER_FLAGS } = await import(pathToFileURL(path.join(ROOT, 'dist/dataplane/worker-flags.js')).href);
    const px = await startChild(['proxy', String(upstream.port), 'hand-written'], undefined, PROXY_WORKER_FLAGS);
    started.push(px.child);
    const ux = await startChild(['proxy', String(upstream.port), 'undici'], undefined, PROXY_WORKER_FLAGS);
    started.push(ux.child);
    const targets = [
      { name: 'direct', port: upstream.port, pids: null },
      { name: 'platformx', port: px.port, pids: [px.child.pid] },
      { name: 'undici', port: ux.port, pids: [ux.child.pid] },
    ];
    if (nginxBin) {
      const ngx = await startNginx(nginxBin, upstream.port);
      started.push(ngx.child);
      cleanup.push(() => fs.rmSync(ngx.dir, { recursive: true, force: true }));
      targets.push({ name: 'nginx', port: ngx.port, pids: [ngx.child.pid], root: ngx.child.pid });
    }

    // Each target must really serve the app: a fast 404 would measure nothing.
    for (const t of targets) {
      const body = await fetchBody(t.port);
      if (body !== UPSTREAM_BODY) throw new Error(`${t.name} on port ${t.port} did not serve the app: ${JSON.stringify(body.slice(0, 200))}`);
    }

    // Warm-up: JIT, connection pools, nginx workers.
    for (const t of targets) await wrk(t.port, 1);
    // nginx's workers are its children; read them once they surely exist.
    for (const t of targets) if (t.root) t.pids = processTree(t.root);

    const runs = Object.fromEntries(targets.map((t) => [t.name, []]));
    for (let r = 0; r < rounds; r++) {
      // Rotate the order each round so no target always runs first or last.
      const order = targets.map((_, i) => targets[(i + r) % targets.length]);
      for (const t of order) {
        const cpu0 = t.pids ? cpuSeconds(t.pids) : 0;
        const res = await wrk(t.port, seconds);
        const cpu = t.pids ? cpuSeconds(t.pids) - cpu0 : NaN;
        const run = {
          ...res,
          cpuUsPerReq: t.pids && res.total ? (cpu * 1e6) / res.total : null,
          rssMb: t.pids ? rssMb(t.pids) : null,
        };
        runs[t.name].push(run);
        log(`round ${r + 1}/${rounds} ${t.name.padEnd(9)} ${Math.round(run.rps)} req/s p50 ${run.p50.toFixed(2)} ms p99 ${run.p99.toFixed(2)} ms`);
      }
    }

    const summary = {};
    for (const [name, list] of Object.entries(runs)) {
      summary[name] = {
        rps: median(list.map((x) => x.rps)),
        p50Ms: median(list.map((x) => x.p50)),
        p99Ms: median(list.map((x) => x.p99)),
        cpuUsPerReq: list[0].cpuUsPerReq === null ? null : median(list.map((x) => x.cpuUsPerReq)),
        rssMb: list[0].rssMb === null ? null : Math.max(...list.map((x) => x.rssMb)),
        errors: list.reduce((a, x) => a + x.non2xx + x.socketErrors, 0),
      };
    }
    const ratio = (a, b, key) => median(runs[a].map((x, i) => x[key] / runs[b][i][key]));
    const both = (a, b) => ({ rps: ratio(a, b, 'rps'), p99: ratio(a, b, 'p99') });
    const ratios = {
      platformxToDirect: both('platformx', 'direct'),
      platformxToNginx: nginxBin ? both('platformx', 'nginx') : null,
      // The parser decision (issue 12): the hand-written forwarder against undici's.
      platformxToUndici: both('platformx', 'undici'),
      undiciToNginx: nginxBin ? both('undici', 'nginx') : null,
    };
    return {
      config: { rounds, seconds, connections: CONNECTIONS, loadGenerator: 'wrk -t2', cpus: os.cpus().length, node: process.version },
      nginx: nginxBin ? 'present' : 'missing: compared against direct only',
      targets: summary,
      ratios,
      targetsMet: nginxBin ? { throughput: ratios.platformxToNginx.rps >= 0.6, p99: ratios.platformxToNginx.p99 <= 2 } : null,
      runs,
    };
  } finally {
    for (const c of started.reverse()) await stop(c);
    for (const f of cleanup) f();
  }
}

function printTable(result) {
  const f = (x, d = 0) => (x === null || x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(d));
  const rows = [['target', 'req/s', 'p50 ms', 'p99 ms', 'CPU µs/req', 'RSS MB', 'errors']];
  for (const [name, t] of Object.entries(result.targets)) {
    rows.push([name, f(t.rps), f(t.p50Ms, 2), f(t.p99Ms, 2), f(t.cpuUsPerReq, 1), f(t.rssMb, 1), String(t.errors)]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) console.log(r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  '));
  console.log('');
  const { platformxToDirect: d, platformxToNginx: n, platformxToUndici: u, undiciToNginx: un } = result.ratios;
  console.log(`platformx/direct: throughput ${f(d.rps, 2)}x, p99 ${f(d.p99, 2)}x`);
  console.log(`platformx/undici: throughput ${f(u.rps, 2)}x, p99 ${f(u.p99, 2)}x (hand-written forwarder vs undici Pool/dispatch)`);
  if (n) {
    console.log(`platformx/nginx:  throughput ${f(n.rps, 2)}x (target >= 0.6), p99 ${f(n.p99, 2)}x (target <= 2)`);
    console.log(`undici/nginx:     throughput ${f(un.rps, 2)}x, p99 ${f(un.p99, 2)}x`);
  } else {
    console.log('nginx: not installed, compared against direct only');
  }
  console.log(`(${result.config.rounds} rounds x ${result.config.seconds} s, ${result.config.connections} connections, medians of per-round ratios)`);
}

function argValue(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const role = process.argv[2];
  if (role === 'upstream') runUpstream();
  else if (role === 'proxy') await runProxy(Number(process.argv[3]), process.argv[4]);
  else {
    const result = await runProxyBench({
      rounds: argValue('--rounds', 5),
      seconds: argValue('--seconds', 3),
      log: (line) => console.error(line),
    });
    if (process.argv.includes('--json')) console.log(JSON.stringify(result, null, 2));
    else printTable(result);
  }
}
