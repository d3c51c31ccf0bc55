// What the deploy and footprint benchmarks share: the real `platformx server`
// on free ports in a temp folder, app work trees pushed with the real git
// client, a poller that sees when a new body is served, wrk, and /proc readers.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'bin', 'platformx');

const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: 'Bench', GIT_AUTHOR_EMAIL: 'bench@example.com',
  GIT_COMMITTER_NAME: 'Bench', GIT_COMMITTER_EMAIL: 'bench@example.com',
  GIT_TERMINAL_PROMPT: '0',
};

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function median(values) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/** Runs a command to its end; stderr lines are timestamped (ms since start) as they arrive. */
export function run(cmd, args, { cwd, env, input } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { cwd, env: env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let partial = '';
    const lines = [];
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => {
      const at = performance.now() - t0;
      stderr += d;
      partial += d;
      let nl;
      while ((nl = partial.indexOf('\n')) >= 0) {
        lines.push({ at, text: partial.slice(0, nl) });
        partial = partial.slice(nl + 1);
      }
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, lines, ms: performance.now() - t0 }));
    child.stdin.on('error', () => {});
    child.stdin.end(input ?? '');
  });
}

async function must(promise, what) {
  const r = await promise;
  if (r.code !== 0) throw new Error(`${what} failed (${r.code}): ${r.stderr}${r.stdout}`);
  return r;
}

/** The real server as a child process, in its own temp data folder. */
export class BenchServer {
  /** `unconfined`: as root, run the server as nobody, so its apps run without the sandbox. */
  /** `keepApps`: SIGTERM leaves the apps serving (the server's default); benches stop everything unless they ask. */
  static async start({ unconfined = false, data: reuse = null, keepApps = false, extra = [] } = {}) {
    const top = reuse ? path.dirname(reuse) : fs.mkdtempSync(path.join(os.tmpdir(), 'pxbench-data-'));
    const data = reuse ?? path.join(top, 'data');
    const s = new BenchServer(top, data);
    const args = [BIN, 'server', '--data', data, '--host', '127.0.0.1', '--http-port', '0', '--git-http-port', '0',
      '--ssh-port', 'off', '--dnode-port', 'off', '--https-port', '0', '--dashboard-port', 'off', '--drain-timeout', '5', ...(keepApps ? [] : ['--stop-apps']), ...extra];
    let argv = [process.execPath, ...args];
    if (unconfined && process.getuid?.() === 0) {
      fs.chmodSync(top, 0o777);
      argv = ['setpriv', '--reuid', '65534', '--regid', '65534', '--clear-groups', '--', ...argv];
    }
    s.child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HOME: top } });
    s.child.stdout.on('data', (d) => (s.output += d));
    s.child.stderr.on('data', (d) => (s.output += d));
    const deadline = Date.now() + 60_000;
    while (!/ready:/.test(s.output)) {
      if (s.child.exitCode !== null) throw new Error(`server exited: ${s.output}`);
      if (Date.now() > deadline) throw new Error(`server did not start: ${s.output}`);
      await sleep(20);
    }
    s.info = JSON.parse(fs.readFileSync(path.join(data, 'server.json'), 'utf8'));
    return s;
  }

  constructor(top, data) {
    this.top = top;
    this.data = data;
    this.output = '';
    this.child = null;
    this.info = null;
  }

  get pid() {
    return this.info.pid;
  }

  /** The data plane (proxy and app processes), which outlives the server. */
  get dataplanePid() {
    const m = /data plane (?:started \(pid|pid) (\d+)/.exec(this.output);
    return m ? Number(m[1]) : null;
  }

  cli(args) {
    return must(run(process.execPath, [BIN, '--data', this.data, ...args]), `platformx ${args.join(' ')}`);
  }

  /** Creates an app and a deploy token; returns its push URL. */
  async createApp(name) {
    await this.cli(['apps:create', name]);
    const token = (await this.cli(['tokens:create', name])).stdout.trim();
    return `http://x:${token}@127.0.0.1:${this.info.gitHttpPort}/${name}.git`;
  }

  async ps(app) {
    return JSON.parse((await this.cli(['ps', app, '--json'])).stdout);
  }

  /** Stops the server; `keepData` leaves the data folder for a next start on it. */
  async stop({ keepData = false } = {}) {
    const child = this.child;
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(t);
    }
    if (!keepData) fs.rmSync(this.top, { recursive: true, force: true });
  }
}

/** A git work tree of an app. */
export class AppTree {
  static async create(files) {
    const t = new AppTree(fs.mkdtempSync(path.join(os.tmpdir(), 'pxbench-app-')));
    await must(t.git(['init', '-q', '-b', 'main']), 'git init');
    await t.commit(files, 'initial');
    return t;
  }

  constructor(dir) {
    this.dir = dir;
  }

  git(args) {
    return run('git', args, { cwd: this.dir, env: GIT_ENV });
  }

  async commit(files, message) {
    for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(this.dir, name), content);
    await must(this.git(['add', '-A']), 'git add');
    await must(this.git(['commit', '-q', '--allow-empty', '-m', message]), 'git commit');
  }

  /**
   * Pushes main; resolves with the push's stderr lines, timestamped from the push's start.
   * The client stands in for a developer's own machine, so it runs at the lowest
   * priority here: its packing must not take CPU from the load generator beside it.
   */
  async push(url) {
    return must(run('nice', ['-n', '19', 'git', 'push', url, 'main'], { cwd: this.dir, env: GIT_ENV }), 'git push');
  }

  remove() {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The no-dependency app of the benchmarks: answers `body` on every path, stops cleanly on SIGTERM. */
export function plainApp(body) {
  return {
    'package.json': JSON.stringify({ name: 'app', version: '1.0.0', scripts: { start: 'node server.js' } }),
    'server.js': `const http = require('http');
const server = http.createServer((req, res) => res.end(${JSON.stringify(body)}));
server.listen(process.env.PORT);
process.on('SIGTERM', () => server.close(() => process.exit(0)));
`,
  };
}

const pollAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function getBody(port, host) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', headers: { host }, agent: pollAgent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve(res.statusCode === 200 ? body : null));
      res.on('error', () => resolve(null));
    });
    req.setTimeout(5000, () => req.destroy());
    req.on('error', () => resolve(null));
  });
}

/**
 * Polls the proxy every few ms from now on; `served` resolves with the time
 * (performance.now()) of the first answer with `body`. stop() ends polling.
 */
export function watchForBody(port, host, body, timeoutMs = 120_000) {
  let running = true;
  const served = (async () => {
    const deadline = performance.now() + timeoutMs;
    while (running && performance.now() < deadline) {
      const b = await getBody(port, host);
      if (b === body) return performance.now();
      await sleep(2);
    }
    return null;
  })();
  return { served, stop: () => (running = false) };
}

function toMs(value, unit) {
  const v = Number(value);
  return unit === 'us' ? v / 1000 : unit === 's' ? v * 1000 : unit === 'm' ? v * 60_000 : v;
}

export function parseWrk(out) {
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const total = Number(/(\d+) requests in/.exec(out)?.[1]);
  const pct = (p) => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(out);
    return m ? toMs(m[1], m[2]) : NaN;
  };
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const socketErrors = sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
  if (!Number.isFinite(rps)) throw new Error(`could not read wrk output:\n${out}`);
  return { rps, total, p50: pct(50), p99: pct(99), non2xx, socketErrors };
}

/**
 * Starts wrk (2 threads, `connections`) against the proxy for an app's host.
 * finish() stops it early with SIGINT (wrk then prints its figures) and parses them.
 */
export function startWrk(port, host, { connections = 50, seconds = 600 } = {}) {
  const args = ['-t2', `-c${connections}`, `-d${seconds}s`, '--latency', '-H', `Host: ${host}`, `http://127.0.0.1:${port}/`];
  const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const done = new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', () => {
      try {
        resolve(parseWrk(out));
      } catch (err) {
        reject(err);
      }
    });
  });
  return {
    done,
    finish() {
      if (child.exitCode === null) child.kill('SIGINT');
      return done;
    },
  };
}

export function hasCommand(cmd) {
  return (process.env.PATH ?? '/usr/bin:/bin').split(':').some((dir) => {
    try {
      fs.accessSync(path.join(dir, cmd), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Every process as pid → { ppid, pgid, comm }. */
export function processTable() {
  const table = new Map();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      table.set(Number(entry), { ppid: Number(f[1]), pgid: Number(f[2]), comm });
    } catch {
      /* gone */
    }
  }
  return table;
}

/** pid and all its descendants. */
export function descendants(table, pid) {
  const out = [pid];
  for (let i = 0; i < out.length; i++) for (const [p, e] of table) if (e.ppid === out[i]) out.push(p);
  return out;
}

const CLK_TCK = 100; // USER_HZ: 100 on every Linux architecture node runs on

/** CPU ms of a process (self) and of its exited, reaped children, from /proc/PID/stat. */
export function cpuMs(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
  return { self: ((f[11] + f[12]) * 1000) / CLK_TCK, children: ((f[13] + f[14]) * 1000) / CLK_TCK };
}

/** Busy CPU ms of the whole machine since boot, from /proc/stat (all but idle and iowait). */
export function machineBusyMs() {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return ((total - f[3] - f[4]) * 1000) / CLK_TCK;
}

/** VmRSS and VmHWM (peak) of a process, in MB. */
/** Proportional set size of a process in MB (shared pages split among their users), or 0 once it is gone. */
export function pssMb(pid) {
  try {
    return Number(/^Pss:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}

export function rss(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN);
  return { rssMb: kb('VmRSS') / 1024, peakMb: kb('VmHWM') / 1024 };
}
