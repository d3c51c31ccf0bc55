// Builds small real apps in git work trees and pushes them with the real git client.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import { run, type Platform, type RunResult } from './platform.js';

const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: 'Test', GIT_AUTHOR_EMAIL: 'test@example.com',
  GIT_COMMITTER_NAME: 'Test', GIT_COMMITTER_EMAIL: 'test@example.com',
  GIT_TERMINAL_PROMPT: '0',
};

/** A no-dependency app answering `body` on every path; optional extra files. */
export function serverSource(body: string, opts: { delayListenMs?: number } = {}): string {
  return `const http = require('http');
const server = http.createServer((req, res) => {
  if (req.url === '/env') { res.end(JSON.stringify(process.env)); return; }
  if (req.url.startsWith('/slow')) { setTimeout(() => res.end(${JSON.stringify(body)}), 300); return; }
  res.end(${JSON.stringify(body)});
});
setTimeout(() => server.listen(process.env.PORT), ${opts.delayListenMs ?? 0});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
`;
}

export class AppRepo {
  readonly dir: string;
  constructor() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pxa-'));
  }

  static async create(files: Record<string, string>): Promise<AppRepo> {
    const repo = new AppRepo();
    await repo.git(['init', '-q', '-b', 'main']);
    await repo.commit(files, 'initial');
    return repo;
  }

  async git(args: string[]): Promise<RunResult> {
    return run('git', args, { cwd: this.dir, env: GIT_ENV });
  }

  async commit(files: Record<string, string | null>, message: string): Promise<void> {
    for (const [name, content] of Object.entries(files)) {
      const file = path.join(this.dir, name);
      if (content === null) fs.rmSync(file, { force: true });
      else {
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, content);
      }
    }
    await this.git(['add', '-A']);
    const r = await this.git(['commit', '-q', '--allow-empty', '-m', message]);
    if (r.code !== 0) throw new Error(r.stderr);
  }

  push(url: string, ref = 'main'): Promise<RunResult> {
    return this.git(['push', url, ref]);
  }

  remove(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Creates `app` and pushes `files` to it with the real git client; throws unless the push succeeds. */
export async function pushNewApp(px: Platform, app: string, files: Record<string, string>): Promise<{ repo: AppRepo; push: RunResult }> {
  const token = await px.createApp(app);
  const repo = await AppRepo.create(files);
  const push = await repo.push(px.gitUrl(app, token));
  if (push.code !== 0) throw new Error(`pushing ${app} failed (${push.code}):\n${push.stderr}`);
  return { repo, push };
}

export function nodeApp(body: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    'package.json': JSON.stringify({ name: 'app', version: '1.0.0', scripts: { start: 'node server.js' } }),
    'server.js': serverSource(body),
    ...extra,
  };
}

export interface HttpResult {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
}

export function get(port: number, host: string, urlPath = '/', agent: http.Agent | false = false): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, headers: { host }, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** Sends requests back to back over keep-alive connections until stopped; counts failures. */
export function load(port: number, host: string, connections = 4) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  let running = true;
  const bodies = new Map<string, number>();
  let ok = 0;
  const failures: string[] = [];
  const loops = Array.from({ length: connections }, async () => {
    while (running) {
      try {
        const r = await get(port, host, '/', agent);
        if (r.status === 200) {
          ok++;
          bodies.set(r.body, (bodies.get(r.body) ?? 0) + 1);
        } else failures.push(`${r.status} ${r.body.slice(0, 80)}`);
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
  });
  return {
    bodies,
    get ok() { return ok; },
    failures,
    async stop() {
      running = false;
      await Promise.all(loops);
      agent.destroy();
    },
  };
}

export async function waitFor<T>(fn: () => Promise<T | undefined | false>, timeoutMs = 30_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
