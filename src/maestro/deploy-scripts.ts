import type { Apprunner } from '../apprunner/apprunner.js';
import type { RunSpec } from '../apprunner/types.js';
import { readAppJson } from './health-check.js';
import type { DeployOutput } from './deploy-output.js';
import { runStep } from './run-step.js';

/** What a deploy script runs as: the release step of its release, without a command. */
export type ScriptStep = Omit<RunSpec, 'command'>;

function script(value: unknown, phase: string): string[] | null {
  if (value === undefined || value === null || value === '') return null;
  if (typeof value !== 'string') throw new Error(`app.json scripts.dokku.${phase} must be a command string`);
  return ['/bin/sh', '-c', value];
}

/**
 * Dokku's app.json deploy scripts of a new build. predeploy runs in the release
 * (/app in the sandbox) after the build and before its processes start: a
 * failure rejects the deploy, and what it writes stays in the release.
 * postdeploy runs once the release serves: a failure is reported, the release stays.
 */
export class DeployScripts {
  private constructor(
    private readonly apprunner: Apprunner,
    private readonly step: ScriptStep,
    private readonly pre: string[] | null,
    private readonly post: string[] | null,
  ) {}

  /** The release's scripts, or null when its app.json has none. */
  static read(apprunner: Apprunner, step: ScriptStep): DeployScripts | null {
    const dokku = readAppJson(step.releaseDir)?.scripts?.dokku;
    const pre = script(dokku?.predeploy, 'predeploy');
    const post = script(dokku?.postdeploy, 'postdeploy');
    return pre || post ? new DeployScripts(apprunner, step, pre, post) : null;
  }

  /** Rejects when the script fails: the deploy is refused and the serving release stays. */
  async predeploy(out: DeployOutput): Promise<void> {
    if (!this.pre) return;
    out.step('Running predeploy (app.json scripts.dokku.predeploy)');
    await runStep(this.apprunner, { ...this.step, command: this.pre }, out, 'app.json predeploy');
  }

  /** Never rejects: the switch is done, so a failure is told (output and platform log) and the release stays. */
  async postdeploy(out: DeployOutput, release: string): Promise<void> {
    if (!this.post) return;
    out.step('Running postdeploy (app.json scripts.dokku.postdeploy)');
    try {
      await runStep(this.apprunner, { ...this.step, command: this.post }, out, 'app.json postdeploy');
    } catch (err) {
      out.step(`${(err as Error).message}: ${release} stays live`);
    }
  }
}
