// Starts the real `platformx server` as a process on free ports in a temp
// folder, and runs the real CLI against it.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = path.join(ROOT, 'bin', 'platformx');

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 110_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    child.stdin.on('error', () => {}); // a command that does not read its input closes it early
    child.stdin.end(opts.input ?? '');
  });
}

export interface ServerJson {
  httpPort: number;
  httpsPort: number | null;
  gitHttpPort: number;
  sshPort: number | null;
  dnodePort: number | null;
  dashboardPort: number | null;
  pid: number;
}

export class Platform {
  child: ChildProcess | null = null;
  info!: ServerJson;
  output = '';
  /** Extra environment for the next boot (e.g. PLATFORMX_CRASH_AT). */
  env: Record<string, string> = {};
  /** SIGTERM leaves the apps and the proxy serving (the server's default); tests stop everything unless they ask. */
  keepApps = false;

  constructor(readonly data: string, readonly extraArgs: string[] = []) {}

  static async start(extraArgs: string[] = []): Promise<Platform> {
    const data = fs.mkdtempSync(path.join(os.tmpdir(), 'pxt-'));
    const p = new Platform(data, extraArgs);
    await p.boot();
    return p;
  }

  /** Starts (or restarts) the server process on the same data folder. */
  async boot(): Promise<void> {
    fs.rmSync(path.join(this.data, 'server.json'), { force: true });
    const args = [BIN, 'server', '--data', this.data, '--host', '127.0.0.1', '--http-port', '0', '--git-http-port', '0',
      '--ssh-port', 'off', '--dnode-port', 'off', '--https-port', '0', '--dashboard-port', '0', '--drain-timeout', '5', ...(this.keepApps ? [] : ['--stop-apps']), ...this.extraArgs];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...this.env } });
    this.child = child;
    this.output += '\n--- boot ---\n';
    child.stdout!.on('data', (d) => (this.output += d));
    child.stderr!.on('data', (d) => (this.output += d));
    const deadline = Date.now() + 60_000;
    const from = this.output.length;
    while (!/ready:/.test(this.output.slice(from))) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`server exited: ${this.output}`);
      if (Date.now() > deadline) throw new Error(`server did not start: ${this.output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    this.info = JSON.parse(fs.readFileSync(path.join(this.data, 'server.json'), 'utf8')) as ServerJson;
  }

  /** The app's release records as stored (apps/APP/releases.json), oldest first. */
  releases(app: string): Array<{ version: number; status: string; commit: string | null; description: string; build: string }> {
    try {
      return JSON.parse(fs.readFileSync(path.join(this.data, 'apps', app, 'releases.json'), 'utf8')).records;
    } catch {
      return [];
    }
  }

  cli(args: string[], input?: string): Promise<RunResult> {
    return run(process.execPath, [BIN, '--data', this.data, ...args], { input });
  }

  /** Runs a CLI command that must succeed; returns its stdout. */
  async ok(args: string[], input?: string): Promise<string> {
    const r = await this.cli(args, input);
    if (r.code !== 0) throw new Error(`platformx ${args.join(' ')} failed (${r.code}): ${r.stderr}${r.stdout}`);
    return r.stdout;
  }

  async createApp(name: string): Promise<string> {
    await this.ok(['apps:create', name]);
    return (await this.ok(['tokens:create', name])).trim();
  }

  gitUrl(app: string, token: string): string {
    return `http://x:${token}@127.0.0.1:${this.info.gitHttpPort}/${app}.git`;
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(t);
  }

  /** Resolves once the server process has exited (a crash point killed it). */
  async exited(timeoutMs = 60_000): Promise<number | null> {
    const child = this.child;
    if (!child) return null;
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    await new Promise((r) => child.once('exit', r));
    clearTimeout(t);
    return child.exitCode;
  }

  async kill9(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  /** The data plane's pid (it outlives the server), or null. */
  dataplanePid(): number | null {
    const m = /data plane (?:started \(pid|pid) (\d+)/.exec(this.output.slice(this.output.lastIndexOf('--- boot ---')));
    return m ? Number(m[1]) : null;
  }

  async destroy(): Promise<void> {
    await this.stop();
    // A server killed with SIGKILL leaves its data plane (and apps) running: stop it too.
    const dp = this.dataplanePid();
    if (dp !== null && alive(dp)) {
      process.kill(dp, 'SIGTERM');
      const deadline = Date.now() + 15_000;
      while (alive(dp) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      if (alive(dp)) process.kill(dp, 'SIGKILL');
    }
    fs.rmSync(this.data, { recursive: true, force: true });
  }
}

/** Running, not a zombie (this machine's pid 1 does not reap orphans). */
export function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}
