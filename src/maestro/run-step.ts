import readline from 'node:readline';
import type { Apprunner } from '../apprunner/apprunner.js';
import type { RunSpec } from '../apprunner/types.js';
import type { DeployOutput } from './deploy-output.js';
import { AppStartError } from '../errors.js';


/** Runs one build or release step through Apprunner, below serving traffic, streaming its output; rejects on a non-zero exit. */
export function runStep(apprunner: Apprunner, spec: RunSpec, out: DeployOutput, label: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = apprunner.spawn({ ...spec, background: true });
    for (const stream of [child.stdout, child.stderr]) {
      if (stream) readline.createInterface({ input: stream }).on('line', (l) => out.line(l));
    }
    child.once('error', (err) => reject(new Error(`${label} could not start: ${err.message}`)));
    child.once('close', (code, signal) => {
      if (code === 0) resolve();
      // The app's own step failed: its fault (exit 1 for the caller), not the server's.
      else reject(new AppStartError(`${label} failed (${signal ? `killed by ${signal}` : `exit code ${code}`})`));
    });
  });
}
