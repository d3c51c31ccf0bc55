// The shared runtimes folder (DATA/runtimes): one read-only folder per Node
// version, laid out as Node's own distribution is (bin/node; bin/npm and
// lib/node_modules/npm when the runtime brings its own npm). A runtime is made
// in a staging folder and renamed into place whole, so a crash leaves it
// complete or absent, never half there.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import semver from 'semver';

/** What an installed runtime holds; written into it last, so its presence means complete. */
export interface RuntimeInfo {
  node: string;
  /** The npm the runtime brings for builds; null: builds use the server's npm. */
  npm: string | null;
  integrity: string;
  bytes: number;
  installedAt: string;
}

const MARKER = '.platformx-runtime.json';
const STAGING = '.staging-';
const REMOVING = '.removing-';

/** Files and folders below dir, without following links: each runtime's size. */
function treeBytes(dir: string): number {
  let bytes = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) bytes += treeBytes(p);
    else if (entry.isFile()) bytes += fs.lstatSync(p).size;
  }
  return bytes;
}

/**
 * Read-only for everyone (a runtime is shared by apps), or writable again by the
 * owner (to add npm, or so a server that is not root can delete it). Links are not followed.
 */
function setWritable(dir: string, writable: boolean): void {
  const mode = (m: number, isDir: boolean) => {
    const exec = isDir || (m & 0o111) !== 0;
    return (exec ? 0o555 : 0o444) | (writable ? 0o200 : 0);
  };
  // A folder is made writable before its entries are walked, and read-only after.
  const walk = (p: string) => {
    const st = fs.lstatSync(p);
    if (st.isSymbolicLink()) return;
    if (!st.isDirectory()) return fs.chmodSync(p, mode(st.mode, false));
    if (writable) fs.chmodSync(p, mode(st.mode, true));
    for (const name of fs.readdirSync(p)) walk(path.join(p, name));
    if (!writable) fs.chmodSync(p, mode(st.mode, true));
  };
  walk(dir);
}

function removeTree(dir: string): void {
  try {
    setWritable(dir, true);
  } catch {
    /* root needs no write bits; what cannot be made writable fails below */
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

export class RuntimeStore {
  /** One install per version at a time: concurrent deploys of the same line share it. */
  private readonly installing = new Map<string, Promise<RuntimeInfo>>();

  constructor(readonly dir: string) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
    // Left by a server stopped mid-install or mid-removal.
    for (const name of fs.readdirSync(dir)) {
      if (name.startsWith(STAGING) || name.startsWith(REMOVING)) removeTree(path.join(dir, name));
    }
  }

  /** The runtime's folder: its bin/ goes first on PATH. */
  nodeDir(version: string): string {
    if (semver.valid(version) !== version) throw new Error(`not a Node version: ${version}`);
    return path.join(this.dir, version);
  }

  info(version: string): RuntimeInfo | null {
    try {
      const info = JSON.parse(fs.readFileSync(path.join(this.nodeDir(version), MARKER), 'utf8')) as RuntimeInfo;
      return info.node === version ? info : null;
    } catch {
      return null;
    }
  }

  /** Installed runtimes, newest first. */
  list(): RuntimeInfo[] {
    return fs.readdirSync(this.dir)
      .filter((name) => semver.valid(name) === name)
      .map((v) => this.info(v))
      .filter((i): i is RuntimeInfo => i !== null)
      .sort((a, b) => semver.rcompare(a.node, b.node));
  }

  /**
   * Makes the runtime once: fill() puts node (and npm) into a staging folder,
   * which is then made read-only and renamed into place. Deploys asking for a
   * version already being installed wait for that install.
   */
  install(version: string, fill: (staging: string) => Promise<Pick<RuntimeInfo, 'npm' | 'integrity'>>): Promise<RuntimeInfo> {
    const existing = this.info(version);
    if (existing) return Promise.resolve(existing);
    let pending = this.installing.get(version);
    if (!pending) {
      pending = this.stage(version, fill).finally(() => this.installing.delete(version));
      this.installing.set(version, pending);
    }
    return pending;
  }

  private async stage(version: string, fill: (staging: string) => Promise<Pick<RuntimeInfo, 'npm' | 'integrity'>>): Promise<RuntimeInfo> {
    const target = this.nodeDir(version);
    const staging = path.join(this.dir, `${STAGING}${version}-${randomBytes(4).toString('hex')}`);
    fs.mkdirSync(staging, { mode: 0o755 });
    try {
      const made = await fill(staging);
      const info: RuntimeInfo = { node: version, ...made, bytes: treeBytes(staging), installedAt: new Date().toISOString() };
      fs.writeFileSync(path.join(staging, MARKER), JSON.stringify(info, null, 1) + '\n', { mode: 0o644 });
      setWritable(staging, false);
      // A folder of that name without a marker is a leftover nobody uses: replace it.
      if (fs.existsSync(target)) removeTree(target);
      fs.renameSync(staging, target);
      return info;
    } catch (err) {
      removeTree(staging);
      throw err;
    }
  }

  /**
   * Gives an installed runtime its own npm (the server's npm changed and no longer
   * runs on it). fill() unpacks npm into the folder it is given and names its version.
   */
  async addNpm(version: string, fill: (npmDir: string) => Promise<string>): Promise<RuntimeInfo> {
    const info = this.info(version);
    if (!info) throw new Error(`Node ${version} is not installed`);
    if (info.npm) return info;
    const dir = this.nodeDir(version);
    const lib = path.join(dir, 'lib', 'node_modules');
    const staging = path.join(lib, `${STAGING}npm`);
    setWritable(dir, true);
    try {
      fs.mkdirSync(lib, { recursive: true });
      fs.rmSync(staging, { recursive: true, force: true });
      const npm = await fill(staging);
      fs.renameSync(staging, path.join(lib, 'npm'));
      linkNpmBins(dir);
      const next: RuntimeInfo = { ...info, npm, bytes: treeBytes(dir) };
      fs.writeFileSync(path.join(dir, MARKER), JSON.stringify(next, null, 1) + '\n', { mode: 0o644 });
      return next;
    } finally {
      fs.rmSync(staging, { recursive: true, force: true });
      setWritable(dir, false);
    }
  }

  /** Renames the runtime aside, then deletes it: gone at once for new processes; running ones keep their open files. */
  remove(version: string): void {
    const aside = path.join(this.dir, `${REMOVING}${version}-${randomBytes(4).toString('hex')}`);
    fs.renameSync(this.nodeDir(version), aside);
    removeTree(aside);
  }
}

/** bin/npm and bin/npx, as in Node's own distribution. */
export function linkNpmBins(runtimeDir: string): void {
  const bin = path.join(runtimeDir, 'bin');
  fs.mkdirSync(bin, { recursive: true });
  for (const [name, target] of [['npm', 'npm-cli.js'], ['npx', 'npx-cli.js']] as const) {
    const link = path.join(bin, name);
    fs.rmSync(link, { force: true });
    fs.symlinkSync(path.join('..', 'lib', 'node_modules', 'npm', 'bin', target), link);
  }
}
