import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { helperFailure } from '../helper-failure.js';

/** The one PouchDB Server release the embedded CouchDB is checked with (it runs on Node 20). */
export const POUCHDB_SERVER_VERSION = '4.2.0';

/** About 350 packages take a minute or more; an install still going after this is stuck (or the network is). */
const INSTALL_TIMEOUT_MS = 20 * 60_000;

/** Whether `dir` holds a complete install of the pinned PouchDB Server. */
export function isInstalled(dir: string): boolean {
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'node_modules', 'pouchdb-server', 'package.json'), 'utf8'));
    return pkg.version === POUCHDB_SERVER_VERSION;
  } catch {
    return false;
  }
}

/**
 * Installs PouchDB Server into `dir` on first use (about 350 packages, so not
 * on the platform's own `npm install` path). npm works in a sibling folder that
 * is renamed into place when complete, so a killed install never looks done;
 * a lock folder beside it makes a second installer (test workers sharing one
 * cache folder) wait for the first. The folder is the server's (root's): no app
 * may write it.
 */
export async function installPouchdbServer(dir: string, log: (line: string) => void): Promise<void> {
  if (isInstalled(dir)) return;
  fs.mkdirSync(path.dirname(dir), { recursive: true, mode: 0o755 });
  const unlock = await lock(`${dir}.lock`, () => isInstalled(dir));
  if (!unlock) return;
  try {
    if (!isInstalled(dir)) await install(dir, log);
  } finally {
    unlock();
  }
}

/**
 * One installer at a time (test workers sharing a cache folder): waits while
 * another live process holds the lock. Resolves to the unlock function, or null
 * when `done()` turned true meanwhile.
 */
async function lock(file: string, done: () => boolean): Promise<(() => void) | null> {
  for (;;) {
    try {
      fs.mkdirSync(file);
      fs.writeFileSync(path.join(file, 'pid'), String(process.pid));
      return () => fs.rmSync(file, { recursive: true, force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    if (done()) return null;
    if (stale(file)) fs.rmSync(file, { recursive: true, force: true });
    else await new Promise((r) => setTimeout(r, 500));
  }
}

function stale(file: string): boolean {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(path.join(file, 'pid'), 'utf8'));
  } catch {
    // No pid yet: its owner is between mkdir and write, unless that was long ago.
    const st = fs.statSync(file, { throwIfNoEntry: false });
    return !st || Date.now() - st.mtimeMs > 60_000;
  }
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

async function install(dir: string, log: (line: string) => void): Promise<void> {
  const work = `${dir}.installing-${process.pid}`;
  fs.rmSync(work, { recursive: true, force: true });
  fs.mkdirSync(work, { mode: 0o755 });
  log(`installing the embedded CouchDB (pouchdb-server@${POUCHDB_SERVER_VERSION} from npm) into ${dir}: first use only, this takes a minute or more`);
  const npm = path.join(path.dirname(process.execPath), 'npm');
  try {
    const npmInstall = await execa(fs.existsSync(npm) ? npm : 'npm', [
      'install', '--prefix', work, '--no-audit', '--no-fund', '--loglevel=error', `pouchdb-server@${POUCHDB_SERVER_VERSION}`,
    ], { cwd: work, stdin: 'ignore', stdout: 'ignore', reject: false, timeout: INSTALL_TIMEOUT_MS });
    if (npmInstall.failed) throw new Error(`npm install pouchdb-server@${POUCHDB_SERVER_VERSION} failed: ${helperFailure(npmInstall)}`);
    try {
      fs.renameSync(work, dir);
    } catch (err) {
      // Another installer finished first: keep its install.
      if (!isInstalled(dir)) throw err;
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  if (!isInstalled(dir)) throw new Error(`the install of pouchdb-server in ${dir} is incomplete: remove the folder and try again`);
  log(`installed the embedded CouchDB into ${dir}`);
}
