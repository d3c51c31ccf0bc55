import fs from 'node:fs';
import path from 'node:path';

// Helpers the server runs as root on an app's behalf (setpriv, prlimit, bwrap, rsync…)
// are found in root-owned system folders only, and run with this environment alone:
// never the app's PATH (its own `setpriv` first) or LD_PRELOAD (its library in every
// root process of the chain).

/** Where root-side helpers are looked up. */
export const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The whole environment of a root-side helper. */
export const HELPER_ENV: Readonly<Record<string, string>> = Object.freeze({ PATH: SYSTEM_PATH, LANG: 'C.UTF-8' });

/** The program's full path (a bare name is searched on SYSTEM_PATH), or null when it is not installed. */
export function findProgram(name: string): string | null {
  const candidates = name.includes('/') ? [name] : SYSTEM_PATH.split(':').map((d) => path.join(d, name));
  for (const c of candidates) {
    try {
      fs.accessSync(c, fs.constants.X_OK);
      if (fs.statSync(c).isFile()) return c;
    } catch {
      // not here
    }
  }
  return null;
}

/** findProgram, for a program the sandbox cannot do without. */
export function systemProgram(name: string): string {
  const found = findProgram(name);
  if (!found) throw new Error(`${name} is not installed in ${SYSTEM_PATH}: platformx starts app processes with it`);
  return found;
}
