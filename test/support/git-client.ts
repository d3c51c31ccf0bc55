// Git clients that misbehave on purpose (raw bytes over TCP), and a real git
// push that can be watched and killed mid-way.
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { AppRepo, nodeApp } from './apps.js';
import { Platform, type RunResult } from './platform.js';

/** A git client environment that never stops to ask for a password. */
export const GIT_CLIENT_ENV = { ...process.env, GIT_TERMINAL_PROMPT: '0' };

/** A fresh server with one app whose first push deployed `body`. */
export async function serverWithDeployedApp(app: string, body: string): Promise<{ px: Platform; token: string; repo: AppRepo }> {
  const px = await Platform.start();
  const token = await px.createApp(app);
  const repo = await AppRepo.create(nodeApp(body));
  const first = await repo.push(px.gitUrl(app, token));
  if (first.code !== 0) throw new Error(`the first push failed: ${first.stderr}`);
  return { px, token, repo };
}

/**
 * Sends raw bytes to 127.0.0.1:port. Resolves with everything the server sent
 * once it closes the connection, or once `hangUpAfterMs` passes and the client
 * drops the connection itself (an abandoned request).
 */
export function rawHttp(port: number, bytes: string | Buffer, hangUpAfterMs?: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(bytes));
    let got = '';
    socket.setEncoding('latin1');
    socket.on('data', (d) => (got += d));
    socket.on('error', (err) => ((err as NodeJS.ErrnoException).code === 'ECONNRESET' ? resolve(got) : reject(err)));
    socket.on('close', () => resolve(got));
    if (hangUpAfterMs !== undefined) setTimeout(() => socket.destroy(), hangUpAfterMs);
  });
}

/** One pkt-line of git's wire format. */
export const pkt = (s: string) => (s.length + 4).toString(16).padStart(4, '0') + s;

/** The request head of a POST to an app's git service, with HTTP Basic auth. */
export function postHead(app: string, service: string, token: string, headers: Record<string, string | number>): string {
  const lines = [`POST /${app}.git/${service} HTTP/1.1`, 'Host: 127.0.0.1', `Authorization: Basic ${Buffer.from(`x:${token}`).toString('base64')}`];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  return lines.join('\r\n') + '\r\n\r\n';
}

/** A git command whose stderr can be awaited line by line while it runs. */
export class WatchedGit {
  readonly child: ChildProcess;
  stderr = '';
  readonly done: Promise<RunResult>;

  constructor(args: string[], cwd: string, env: NodeJS.ProcessEnv = GIT_CLIENT_ENV) {
    // Its own process group: git runs git-remote-http and send-pack as children, and a
    // killed push is all of them.
    const child = spawn('git', args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    this.child = child;
    let stdout = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (this.stderr += d));
    this.done = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr: this.stderr })));
  }

  /** Kills git and its helpers at once, as a pusher's crash or Ctrl-C would. */
  kill(): Promise<RunResult> {
    if (this.child.pid !== undefined && this.child.exitCode === null) process.kill(-this.child.pid, 'SIGKILL');
    return this.done;
  }

  /** Resolves once git's stderr matches `pattern` (the server's output arrives as `remote:` lines). */
  async waitFor(pattern: RegExp, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(this.stderr)) {
      if (this.child.exitCode !== null || this.child.signalCode !== null) throw new Error(`git ended before ${pattern}: ${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern}: ${this.stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
