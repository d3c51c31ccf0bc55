// Node runtimes for tests. Real ones are ~50 MB downloads each, so the suite
// keeps one cache folder (reused across test files and CI runs) and hard-links
// it into each server's DATA/runtimes. A loopback registry serves small
// packages for the install tests, which need no download at all.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const RUNTIMES_CACHE = process.env.PLATFORMX_TEST_RUNTIMES ?? path.join(os.tmpdir(), 'platformx-test-runtimes');
const MARKER = '.platformx-runtime.json';

const complete = (dir: string) => fs.existsSync(dir) ? fs.readdirSync(dir).filter((v) => /^\d+\.\d+\.\d+$/.test(v) && fs.existsSync(path.join(dir, v, MARKER))) : [];

function removeTree(dir: string): void {
  if (!fs.existsSync(dir)) return;
  execFileSync('chmod', ['-R', 'u+w', dir]);
  fs.rmSync(dir, { recursive: true, force: true });
}

/** Hard-links every cached runtime into DATA/runtimes, before the server starts. */
export function seedRuntimes(data: string): string[] {
  const into = path.join(data, 'runtimes');
  fs.mkdirSync(into, { recursive: true });
  const seeded = complete(RUNTIMES_CACHE);
  for (const v of seeded) execFileSync('cp', ['-al', path.join(RUNTIMES_CACHE, v), path.join(into, v)]);
  return seeded;
}

/** Hard-links the runtimes a server installed back into the cache, for the next test file or CI run. */
export function keepRuntimes(data: string): void {
  fs.mkdirSync(RUNTIMES_CACHE, { recursive: true });
  const cached = new Set(complete(RUNTIMES_CACHE));
  for (const v of complete(path.join(data, 'runtimes'))) {
    if (cached.has(v)) continue;
    const tmp = path.join(RUNTIMES_CACHE, `.tmp-${v}-${process.pid}`);
    removeTree(tmp);
    execFileSync('cp', ['-al', path.join(data, 'runtimes', v), tmp]);
    try {
      fs.renameSync(tmp, path.join(RUNTIMES_CACHE, v));
    } catch {
      removeTree(tmp); // another test file kept it first
    }
  }
}

export interface FakePackage {
  /** Files of the package (under package/ in the tarball), path → content; mode 0755 for bin/. */
  files: Record<string, string>;
  /** Lie about the sha512 the tarball has. */
  wrongIntegrity?: boolean;
  engines?: { node?: string };
}

/** A registry on loopback serving packuments and tarballs, as the npm registry does. */
export class FakeRegistry {
  private readonly packages = new Map<string, Map<string, { meta: object; tarball: Buffer }>>();
  private server: http.Server | null = null;
  readonly requests: string[] = [];
  port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}/`;
  }

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => this.answer(req.url ?? '/', res));
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  /** Packs files into package/…, as npm pack does, and lists it under name@version. */
  publish(name: string, version: string, pkg: FakePackage): void {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pxreg-'));
    try {
      for (const [rel, content] of Object.entries(pkg.files)) {
        const file = path.join(dir, 'package', rel);
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, content, { mode: rel.startsWith('bin/') ? 0o755 : 0o644 });
      }
      const tarball = execFileSync('tar', ['-c', '-z', '-f', '-', '-C', dir, 'package'], { maxBuffer: 64 * 1024 * 1024 });
      const digest = crypto.createHash('sha512').update(pkg.wrongIntegrity ? Buffer.concat([tarball, Buffer.from('x')]) : tarball).digest('base64');
      const meta = {
        name, version, engines: pkg.engines,
        dist: { tarball: `${this.url}${name}/-/${name}-${version}.tgz`, integrity: `sha512-${digest}` },
      };
      if (!this.packages.has(name)) this.packages.set(name, new Map());
      this.packages.get(name)!.set(version, { meta, tarball });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  private answer(url: string, res: http.ServerResponse): void {
    this.requests.push(url);
    const [name, dash, file] = url.slice(1).split('/');
    const versions = this.packages.get(decodeURIComponent(name ?? ''));
    if (versions && dash === undefined) {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ name, versions: Object.fromEntries([...versions].map(([v, p]) => [v, p.meta])) }));
      return;
    }
    const hit = versions && dash === '-' && [...versions.values()].find((p) => (p.meta as { dist: { tarball: string } }).dist.tarball.endsWith(`/${file}`));
    if (hit) {
      res.end(hit.tarball);
      return;
    }
    res.statusCode = 404;
    res.end('{}');
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }
}
