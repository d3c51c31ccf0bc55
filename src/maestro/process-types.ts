import { execSimpleCommand } from './exec-command.js';
import { AppFileError, appPathExists, readAppText } from '../apprunner/sandbox-files.js';

/** argv for each Procfile process type, plus the optional release-phase command. */
export interface ProcessTypes {
  types: Record<string, string[]>;
  release: string[] | null;
  /** How the web command was chosen, shown in the deploy output. */
  origin: string;
}

interface PackageJson {
  main?: string;
  scripts?: Record<string, string>;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

// App files are read with readAppText: the server reads them as root, and a
// symlink, FIFO or device planted by a push must not make it read or block.
export function readPackageJson(dir: string): PackageJson | null {
  const text = readAppText(dir, 'package.json');
  if (text === null) return null;
  try {
    return JSON.parse(text) as PackageJson;
  } catch (err) {
    throw new Error(`package.json is not valid JSON: ${(err as Error).message}`);
  }
}

/** Procfile lines are `type: command`; types are lowercase words as on Heroku. */
export function parseProcfile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z0-9_-]+):\s*(.+)$/.exec(line);
    if (!m) throw new Error(`Procfile line not understood: '${line}' (use 'type: command')`);
    out[m[1]] = m[2];
  }
  return out;
}

const sh = (command: string) => ['/bin/sh', '-c', command];

/**
 * Decides what runs, in the order the core issue gives: Procfile web line; npm
 * start; node on package.json main or index.js/server.js; a legacy bundle
 * (apprunner.js) as Maestro 0.3 started it.
 */
export function detectProcessTypes(dir: string, app: string): ProcessTypes {
  const procfileText = readAppText(dir, 'Procfile');
  const procfile = procfileText === null ? {} : parseProcfile(procfileText);
  const types: Record<string, string[]> = {};
  let release: string[] | null = null;
  for (const [type, command] of Object.entries(procfile)) {
    if (type === 'release') release = sh(command);
    else types[type] = sh(execSimpleCommand(command));
  }
  if (types.web) return { types, release, origin: 'Procfile web' };

  const pkg = readPackageJson(dir);
  // npm scripts run the way npm runs them (sh -c, node_modules/.bin on PATH), but
  // without npm staying resident as a wrapper around the app.
  if (pkg?.scripts?.start) {
    types.web = sh(`PATH="$PWD/node_modules/.bin:$PATH"; ${execSimpleCommand(pkg.scripts.start)}`);
    return { types, release, origin: 'npm start' };
  }
  if (appPathExists(dir, 'apprunner.js')) {
    // app names are DNS labels, safe inside the command; PORT is set per process.
    types.web = sh(`exec node apprunner.js --name ${app} --port "$PORT"`);
    return { types, release, origin: 'legacy apprunner.js' };
  }
  for (const candidate of [pkg?.main, 'index.js', 'server.js']) {
    if (typeof candidate === 'string' && candidate && mainExists(dir, candidate)) {
      types.web = ['node', candidate];
      return { types, release, origin: `node ${candidate}` };
    }
  }
  // Worker-only apps (queue consumers, bots): the Procfile's first type runs instead (Dokku does the same).
  if (Object.keys(types).length > 0) return { types, release, origin: 'Procfile, no web' };
  throw new Error(
    'no start command: add a Procfile web line, a "start" script in package.json, or an index.js/server.js',
  );
}

/** Whether package.json's main (or a default) is there; node then resolves it inside the sandbox. */
function mainExists(dir: string, main: string): boolean {
  try {
    return appPathExists(dir, main);
  } catch (err) {
    if (err instanceof AppFileError) throw new AppFileError(`package.json main: ${err.message}: name a file inside the app`);
    throw err;
  }
}

export function hasDependencies(pkg: PackageJson | null): boolean {
  return Object.keys(pkg?.dependencies ?? {}).length + Object.keys(pkg?.devDependencies ?? {}).length > 0;
}
