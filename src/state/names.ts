// Validation of the names users give us. Every check returns a one-line error
// that says what was wrong and what to do, so the CLI can print it as is.

import net from 'node:net';
import { ErrorCode, UserError } from '../errors.js';

// A DNS label (RFC 1123) that starts with a letter; '--' in 3rd and 4th place
// marks an IDNA A-label (xn--…), which browsers show as Unicode: an app name
// like xn--pple-43d would read as another app's name spelt in Cyrillic.
const APP_NAME = /^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export function checkAppName(name: unknown): string {
  if (typeof name !== 'string' || !APP_NAME.test(name) || name.slice(2, 4) === '--') {
    throw new UserError(
      `invalid app name '${String(name)}': use a lowercase DNS label: a letter, then up to 62 letters, digits or '-', not ending in '-' and without '--' in 3rd-4th place`,
    );
  }
  return name;
}

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** Lower-cases and validates a hostname; a trailing dot and port are not allowed. */
export function normalizeHostname(host: unknown): string {
  if (typeof host !== 'string') throw new UserError('hostname missing: give a hostname like www.example.com');
  const h = host.trim().toLowerCase();
  if (net.isIPv6(h.replace(/^\[(.*)\]$/, '$1'))) throw ipAddress(host);
  if (h.length === 0 || h.length > 253 || !h.split('.').every((l) => LABEL.test(l))) {
    throw new UserError(`invalid hostname '${host}': use letters, digits, '-' and dots, like www.example.com`);
  }
  return h;
}

function ipAddress(host: string): UserError {
  return new UserError(`hostname '${host}' is an IP address: an app is reached by a hostname of its own, like www.example.com`);
}

/** What a hostname claim is checked against. */
export interface HostClaimContext {
  /** Apps get APP.BASE_DOMAIN; the base domain and everything under it belongs to the platform. */
  baseDomain: string;
  /** Names this machine resolves to itself (its hostname, /etc/hosts entries of its addresses). */
  machineNames: ReadonlySet<string>;
  /** The hostnames of every app but the claiming one. */
  others: ReadonlyArray<{ app: string; hosts: readonly string[] }>;
  /** Whether the claimer may learn that an app exists (a tenant may not, for apps outside its key). */
  canSee(app: string): boolean;
}

/**
 * The one check every hostname claim passes (apps:create --domain, domains:add,
 * register_app, restart_app): `host` (normalized) may not be an IP literal, a
 * name of this machine, the base domain or above it, another app's hostname or
 * under or above one (either side could set cookies the other receives), nor
 * under the base domain unless under forApp's own APP.BASE_DOMAIN.
 */
export function checkHostnameClaim(host: string, forApp: string, c: HostClaimContext): void {
  // The WHATWG URL parser (every browser) reads a host whose last label is a number
  // (0x7f.1, 2130706433, 127.1) as an IPv4 address.
  if (/(^|\.)(\d+|0x[0-9a-f]*)$/.test(host)) throw ipAddress(host);
  const base = c.baseDomain;
  if (host === base) throw new UserError(`hostname '${host}' is the platform's base domain: apps get APP.${base}; give a hostname of your own`);
  if (base.endsWith(`.${host}`)) {
    throw new UserError(`hostname '${host}' is above the platform's base domain ${base} (it could set cookies for every app): give a hostname of your own`);
  }
  for (const { app, hosts } of c.others) {
    const seen = c.canSee(app);
    const whose = seen ? `app '${app}'` : 'another app';
    const todo = seen ? `remove it from '${app}' first` : 'register a hostname of your own';
    for (const theirs of hosts) {
      if (host === theirs) throw new UserError(`hostname '${host}' already belongs to ${whose}${seen ? '' : `: ${todo}`}`, ErrorCode.Conflict);
      if (host.endsWith(`.${theirs}`)) throw new UserError(`hostname '${host}' is under '${theirs}', a hostname of ${whose}: ${todo}`, ErrorCode.Conflict);
      if (theirs.endsWith(`.${host}`)) throw new UserError(`hostname '${host}' is above '${theirs}', a hostname of ${whose}: ${todo}`, ErrorCode.Conflict);
    }
  }
  const own = `${forApp}.${base}`;
  if (host === own || host.endsWith(`.${own}`)) return;
  if (host.endsWith(`.${base}`)) {
    const labels = host.slice(0, -base.length - 1).split('.');
    const app = labels[labels.length - 1]!;
    throw new UserError(`hostname '${host}' is reserved for app '${app}' (names under ${app}.${base} are its own): use ${own} or a hostname of your own`);
  }
  // RFC 6761: localhost and every name under it are this machine.
  if (host === 'localhost' || host.endsWith('.localhost') || c.machineNames.has(host)) {
    throw new UserError(`hostname '${host}' names this server itself: give the app a hostname of its own, like www.example.com`);
  }
}

const CONFIG_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Names every JavaScript object already has: as keys of a plain object they read or set the prototype. */
const OBJECT_MEMBERS = new Set([...Object.getOwnPropertyNames(Object.prototype), 'prototype']);

/** A config key's syntax: what `config:unset` accepts, so a variable set before a rule existed can still go. */
export function checkConfigKey(key: string): string {
  if (!CONFIG_KEY.test(key)) {
    throw new UserError(`invalid config key '${key}': use letters, digits and '_', not starting with a digit`);
  }
  if (OBJECT_MEMBERS.has(key)) throw new UserError(`config key '${key}' is not allowed (a name every JavaScript object has): pick another name`);
  return key;
}

/**
 * Variables the platform sets itself for app processes and build steps:
 * appEnvironment (src/apprunner/apprunner.ts: PATH, HOME, LANG), the restart
 * pipeline (PORT, DYNO), the build (npm's cache and notifier) and the shell (PWD).
 * NODE_ENV is left to the app, as on Heroku.
 */
const PLATFORM_VARS = ['PATH', 'HOME', 'LANG', 'PWD', 'PORT', 'DYNO', 'NPM_CONFIG_CACHE', 'NPM_CONFIG_UPDATE_NOTIFIER'];
/**
 * Variables that make glibc or a shell load code or read and write files of
 * the caller's choosing (glibc drops them for setuid programs): LD_* and these.
 */
const LOADER_VARS = ['GCONV_PATH', 'GETCONF_DIR', 'GLIBC_TUNABLES', 'HOSTALIASES', 'LOCPATH', 'MALLOC_TRACE', 'NIS_PATH', 'NLSPATH', 'RESOLV_HOST_CONF', 'BASH_ENV'];

/** A key `config:set` may set. Names are compared in any case: npm reads its variables so. */
export function checkSettableConfigKey(key: string): string {
  checkConfigKey(key);
  const upper = key.toUpperCase();
  if (PLATFORM_VARS.includes(upper)) throw new UserError(`config key '${key}' is reserved: the platform sets it for each process`);
  if (upper.startsWith('LD_') || LOADER_VARS.includes(upper)) {
    throw new UserError(`config key '${key}' is not allowed: it makes the dynamic loader, libc or the shell load files, which the platform does not let apps do`);
  }
  return key;
}
