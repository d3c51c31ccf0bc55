// The npm a build gets when its runtime brings none: the first `npm` on the
// apps' PATH after the runtime's bin/ (the server's own). Its package.json says
// which Node it runs on, so a runtime it does not fit gets an npm of its own.
import fs from 'node:fs';
import path from 'node:path';
import { APP_PATH } from '../apprunner/apprunner.js';

export interface NpmPackage {
  version: string;
  engines?: { node?: string };
}

/** Walks up from npm-cli.js to npm's package.json. */
function npmPackageOf(bin: string): NpmPackage | null {
  let dir = path.dirname(fs.realpathSync(bin));
  for (let i = 0; i < 4; i++, dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as NpmPackage & { name?: string };
      if (pkg.name === 'npm' && typeof pkg.version === 'string') return { version: pkg.version, engines: pkg.engines };
    } catch {
      /* not here: one folder up */
    }
  }
  return null;
}

/** The server's npm, or null when there is none on the apps' PATH. Read each time: npm may be upgraded under a running server. */
export function serverNpm(): NpmPackage | null {
  for (const dir of APP_PATH.split(':')) {
    const bin = path.join(dir, 'npm');
    if (!fs.existsSync(bin)) continue;
    try {
      return npmPackageOf(bin);
    } catch {
      return null;
    }
  }
  return null;
}
