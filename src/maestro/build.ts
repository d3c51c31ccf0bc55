import type { Apprunner } from '../apprunner/apprunner.js';
import { appPathExists } from '../apprunner/sandbox-files.js';
import type { RunSpec } from '../apprunner/types.js';
import type { NodeRuntime } from '../runtimes/app-runtimes.js';
import type { AppRecord } from '../state/types.js';
import type { DeployOutput } from './deploy-output.js';
import { canReuse, copyInstall, installKey, stampInstall } from './install-reuse.js';
import { hasDependencies, readPackageJson } from './process-types.js';
import { runStep } from './run-step.js';

export interface BuildContext {
  app: AppRecord;
  dir: string;
  npmCache: string;
  apprunner: Apprunner;
  out: DeployOutput;
  /** The serving release's build, whose node_modules a build with the same dependencies reuses. */
  previous?: { dir: string; version: number } | null;
  /** The Node (engines.node) the build runs on; absent: the server's own. */
  runtime?: NodeRuntime;
}

/**
 * Installs and builds a checked-out release in place, as Heroku's Node buildpack
 * does: npm ci with a lockfile, npm install without one, nothing without
 * dependencies; `npm run build` when defined; dev dependencies pruned.
 * Resolves true when the server itself wrote into the release (a reused
 * node_modules, the install stamp), which the app's user must then be given.
 */
export async function buildRelease(ctx: BuildContext): Promise<boolean> {
  const { dir, out } = ctx;
  const pkg = readPackageJson(dir);
  // Never following an app's link: whether a host path exists must not show in the output.
  const hasLock = appPathExists(dir, 'package-lock.json') || appPathExists(dir, 'npm-shrinkwrap.json');
  const buildScript = Boolean(pkg?.scripts?.build);
  const npm = (args: string[], label: string, production: boolean) =>
    runStep(ctx.apprunner, npmSpec(ctx, args, production), out, label);
  let serverWrote = false;

  if (pkg && hasDependencies(pkg)) {
    // Without a build script, dev dependencies are never needed: skip them outright.
    const omitDev = buildScript ? [] : ['--omit=dev'];
    // Only without a build step: after one, node_modules is pruned and no longer what npm ci made.
    const key = hasLock && !buildScript ? installKey(dir, ctx.app.config, ['ci', ...omitDev], ctx.runtime && `v${ctx.runtime.version}`) : null;
    const previous = ctx.previous;
    const reused = key !== null && previous != null && canReuse(previous.dir, key) && (await reuse(ctx, previous));
    serverWrote = reused;
    if (reused) {
      out.line('(package.json, lockfile, .npmrc and node unchanged)');
    } else if (hasLock) {
      out.step('Installing dependencies (npm ci)');
      await npm(['ci', ...omitDev], 'npm ci', false);
      if (key) {
        stampInstall(dir, key);
        serverWrote = true;
      }
    } else {
      out.step('Installing dependencies (npm install, no lockfile)');
      await npm(['install', ...omitDev], 'npm install', false);
    }
  } else {
    out.step('No dependencies to install');
  }
  if (buildScript) {
    out.step('Building (npm run build)');
    await npm(['run', 'build'], 'npm run build', false);
    if (pkg && hasDependencies(pkg)) {
      out.step('Pruning dev dependencies');
      await npm(['prune', '--omit=dev'], 'npm prune', true);
    }
  }
  return serverWrote;
}

/** Copies the previous build's node_modules; false (and npm ci runs) when the copy fails. */
async function reuse(ctx: BuildContext, previous: { dir: string; version: number }): Promise<boolean> {
  ctx.out.step(`Installing dependencies: reusing node_modules of v${previous.version}`);
  try {
    await copyInstall(ctx, previous.dir, ctx.dir);
    return true;
  } catch (err) {
    ctx.out.line(`copy failed (${(err as Error).message}); installing instead`);
    return false;
  }
}

function npmSpec(ctx: BuildContext, args: string[], production: boolean): RunSpec {
  return {
    app: ctx.app.name,
    kind: 'build',
    command: ['npm', ...args, '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=warn'],
    releaseDir: ctx.dir,
    env: {
      ...ctx.app.config,
      // Dev dependencies are needed for a build step; NODE_ENV=production would skip them.
      NODE_ENV: production ? 'production' : 'development',
      npm_config_cache: ctx.npmCache,
      npm_config_update_notifier: 'false',
      ...ctx.runtime?.npmEnv,
    },
    limits: ctx.app.limits,
    uid: ctx.app.uid,
    writable: [ctx.npmCache],
    runtime: ctx.runtime,
  };
}
