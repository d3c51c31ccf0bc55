import crypto from 'node:crypto';
import type { Apprunner } from '../apprunner/apprunner.js';
import { readAppFile, writeAppFile } from '../apprunner/sandbox-files.js';
import type { AppRecord } from '../state/types.js';
import type { DeployOutput } from './deploy-output.js';
import { runStep } from './run-step.js';

// A push that changes code but not dependencies need not run npm ci again: its
// node_modules would come out the same as the serving build's. Like a Docker
// layer cached on package*.json, the install is keyed on everything that
// decides it, and the previous build's node_modules is copied when the key matches.

/** Written into node_modules after a clean install: the key it was made for. */
const STAMP = '.platformx-install-key';
const LOCKFILES = ['package-lock.json', 'npm-shrinkwrap.json'];
/** Root scripts npm ci runs, which may read any file of the app: an install with them is never reused. */
const INSTALL_SCRIPTS = ['preinstall', 'install', 'postinstall', 'prepublish', 'preprepare', 'prepare', 'postprepare'];

/** An app file, or null when missing or not a plain file (a planted symlink, FIFO or device). */
function readOrNull(dir: string, rel: string): Buffer | null {
  try {
    return readAppFile(dir, rel);
  } catch {
    return null;
  }
}

/**
 * What decides node_modules: node's version and platform, package.json, the
 * lockfile, .npmrc, npm_config_* config vars and the install flags. Null when
 * the install cannot be reused: no lockfile, or root install scripts.
 */
export function installKey(dir: string, config: Record<string, string>, flags: string[], node = process.version): string | null {
  const lock = LOCKFILES.map((f) => readOrNull(dir, f)).find((b) => b !== null);
  const pkg = readOrNull(dir, 'package.json');
  if (!lock || !pkg) return null;
  let scripts: Record<string, unknown> = {};
  try {
    scripts = (JSON.parse(pkg.toString('utf8')) as { scripts?: Record<string, unknown> }).scripts ?? {};
  } catch {
    return null;
  }
  if (INSTALL_SCRIPTS.some((s) => s in scripts)) return null;
  const hash = crypto.createHash('sha256');
  const part = (label: string, data: string | Buffer) => hash.update(`${label}:${data.length}:`).update(data);
  part('node', `${node} ${process.platform} ${process.arch}`);
  part('flags', flags.join(' '));
  part('package.json', pkg);
  part('lock', lock);
  part('npmrc', readOrNull(dir, '.npmrc') ?? '');
  for (const k of Object.keys(config).filter((k) => /^npm_config_/i.test(k)).sort()) part(k, config[k]!);
  return hash.digest('hex');
}

/** Marks a fresh install as made for key. */
export function stampInstall(dir: string, key: string): void {
  // Never through a symlink the build may have planted: root would write where it points.
  try {
    writeAppFile(dir, `node_modules/${STAMP}`, key + '\n');
  } catch {
    /* not stamped: the next deploy runs npm ci */
  }
}

/** True when previousDir holds an install made for key. */
export function canReuse(previousDir: string, key: string): boolean {
  return readOrNull(previousDir, `node_modules/${STAMP}`)?.toString('utf8').trim() === key;
}

/** What runs the copy: the app's own runner, user and limits. */
export interface CopyContext {
  apprunner: Apprunner;
  app: AppRecord;
  out: DeployOutput;
}

// The serving release can change its node_modules while it is copied (swap a folder the
// copy already took for a folder with a link into another app's release), so the copy
// runs as the app's own user in its sandbox, the serving build mounted read-only: a swap
// reaches at most what the app itself can read. A committed node_modules goes first, as
// npm ci would remove it; a half copy goes too, so npm ci starts clean.
const COPY = 'rm -rf node_modules && cp -a --reflink=auto -- "$1/node_modules" node_modules || { rm -rf node_modules; exit 1; }';

/** Copies previousDir's node_modules into dir (reflinks where the file system has them). */
export async function copyInstall(ctx: CopyContext, previousDir: string, dir: string): Promise<void> {
  await runStep(ctx.apprunner, {
    app: ctx.app.name, kind: 'build', command: ['/bin/sh', '-c', COPY, 'copy-install', previousDir],
    releaseDir: dir, env: {}, limits: ctx.app.limits, uid: ctx.app.uid, readOnly: [previousDir],
  }, ctx.out, 'cp');
}
