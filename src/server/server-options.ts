import { CidrError, parseCidr, type Cidr } from '../apprunner/network-policy-cidr.js';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseCouchUrl, type CouchEndpoint } from '../couchdb/couch-url.js';

import { parseLogFormat, type LogFormat } from './server-log.js';
import { UserError } from '../errors.js';

export interface ServerOptions {
  data: string;
  host: string;
  httpPort: number;
  gitHttpPort: number;
  sshPort: number | null;
  dnodePort: number | null;
  dnodeHost: string;
  dnodeAllow: string[];
  /** The dashboard and /metrics, on host; null = off. */
  dashboardPort: number | null;
  logFormat: LogFormat;
  baseDomain: string;
  keep: number;
  /** Release records kept per app (older ones go to its archive file). */
  keepReleases: number;
  drainTimeoutMs: number;
  bootTimeoutMs: number;
  slowStartMs: number;
  /** Processes serving the proxy's ports (1: the proxy runs in the data plane's own process). */
  proxyWorkers: number;
  requestTimeoutMs: number;
  idleTimeoutMs: number;
  /** Longest an idle connection to an app is kept for the next request (the app's Keep-Alive hint less 1 s wins when shorter). */
  upstreamIdleTimeoutMs: number;
  /** SIGTERM stops the apps and the data plane too (otherwise they serve on for the next server). */
  stopApps: boolean;
  /** Ranges apps may not reach, beyond loopback and link-local (see network-policy.ts). */
  denyEgress: Cidr[];
  /** null: no HTTPS listener. */
  httpsPort: number | null;
  acme: AcmeOptions;
  /** The data layer (CouchDB per app), or null with --couchdb off. */
  couchdb: CouchOptions | null;
}

export interface CouchOptions {
  /** --couchdb URL, or null for the embedded server. */
  primary: CouchEndpoint | null;
  replica: CouchEndpoint | null;
  /** The port apps reach their database on (COUCHDB_URL); 0: kept from before, or free the first time. */
  gatewayPort: number;
  /** An existing PouchDB Server install, instead of DATA/couchdb/server. */
  pouchdbServerDir: string | null;
}

export interface AcmeOptions {
  directoryUrl: string;
  /** Extra CA certificates (PEM file) trusted for the directory's TLS: a private or test CA. */
  caFile: string | null;
  email: string | null;
}

export const LETS_ENCRYPT = 'https://acme-v02.api.letsencrypt.org/directory';
export const LETS_ENCRYPT_STAGING = 'https://acme-staging-v02.api.letsencrypt.org/directory';

/** Each option: flag, environment variable, default. Port 0 picks a free port; "off" disables a listener. */
const SPEC = {
  data: ['--data', 'PLATFORMX_DATA', './.platformx'],
  host: ['--host', 'PLATFORMX_HOST', '0.0.0.0'],
  httpPort: ['--http-port', 'PLATFORMX_HTTP_PORT', '8000'],
  gitHttpPort: ['--git-http-port', 'PLATFORMX_GIT_HTTP_PORT', '8001'],
  sshPort: ['--ssh-port', 'PLATFORMX_SSH_PORT', '2222'],
  dnodePort: ['--dnode-port', 'PLATFORMX_DNODE_PORT', '7272'],
  dnodeHost: ['--dnode-host', 'PLATFORMX_DNODE_HOST', '127.0.0.1'],
  dnodeAllow: ['--dnode-allow', 'PLATFORMX_DNODE_ALLOW', ''],
  dashboardPort: ['--dashboard-port', 'PLATFORMX_DASHBOARD_PORT', '8002'],
  logFormat: ['--log-format', 'PLATFORMX_LOG_FORMAT', 'text'],
  baseDomain: ['--base-domain', 'PLATFORMX_BASE_DOMAIN', 'localhost'],
  keep: ['--keep', 'PLATFORMX_KEEP', '5'],
  keepReleases: ['--keep-releases', 'PLATFORMX_KEEP_RELEASES', '100'],
  drainTimeout: ['--drain-timeout', 'PLATFORMX_DRAIN_TIMEOUT', '30'],
  bootTimeout: ['--boot-timeout', 'PLATFORMX_BOOT_TIMEOUT', '60'],
  slowStart: ['--slow-start', 'PLATFORMX_SLOW_START', '2'],
  proxyWorkers: ['--proxy-workers', 'PLATFORMX_PROXY_WORKERS', String(os.availableParallelism())],
  requestTimeout: ['--request-timeout', 'PLATFORMX_REQUEST_TIMEOUT', '30'],
  idleTimeout: ['--idle-timeout', 'PLATFORMX_IDLE_TIMEOUT', '60'],
  upstreamIdleTimeout: ['--upstream-idle-timeout', 'PLATFORMX_UPSTREAM_IDLE_TIMEOUT', '30'],
  stopApps: ['--stop-apps', 'PLATFORMX_STOP_APPS', ''],
  // Repeatable; the variable takes a comma-separated list.
  denyEgress: ['--deny-egress', 'PLATFORMX_DENY_EGRESS', ''],
  httpsPort: ['--https-port', 'PLATFORMX_HTTPS_PORT', '8443'],
  acmeDirectory: ['--acme-directory', 'PLATFORMX_ACME_DIRECTORY', LETS_ENCRYPT],
  acmeStaging: ['--acme-staging', 'PLATFORMX_ACME_STAGING', ''],
  acmeCa: ['--acme-ca', 'PLATFORMX_ACME_CA', ''],
  acmeEmail: ['--acme-email', 'PLATFORMX_ACME_EMAIL', ''],
  // URLs hold admin passwords: give them in the environment, not on a command line every user can list.
  couchdb: ['--couchdb', 'PLATFORMX_COUCHDB', 'embedded'],
  couchdbReplica: ['--couchdb-replica', 'PLATFORMX_COUCHDB_REPLICA', ''],
  couchdbGatewayPort: ['--couchdb-gateway-port', 'PLATFORMX_COUCHDB_GATEWAY_PORT', '0'],
  pouchdbServer: ['--pouchdb-server', 'PLATFORMX_POUCHDB_SERVER', ''],
} as const;

const REPEATABLE = new Set(['denyEgress']);

/** Flags that take no value: present means on. */
const SWITCHES = new Set(['--stop-apps', '--acme-staging']);

export const SERVER_USAGE = `platformx server ${Object.values(SPEC).map(([flag, , def]) => (SWITCHES.has(flag) ? `[${flag}]` : `[${flag} ${def || '…'}]`)).join(' ')}`;

function port(name: string, text: string, allowOff: boolean): number | null {
  if (allowOff && text === 'off') return null;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    throw new UserError(`${name} must be a port number 0-65535${allowOff ? " or 'off'" : ''}, not '${text}'`);
  }
  return n;
}

function seconds(name: string, text: string, allowZero = false): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n < 0 || (n === 0 && !allowZero)) {
    throw new UserError(`${name} must be a number of seconds${allowZero ? ' (0 or more)' : ''}, not '${text}'`);
  }
  return n * 1000;
}

function cidrs(text: string): Cidr[] {
  return text.split(',').map((s) => s.trim()).filter(Boolean).map((s) => {
    try {
      return parseCidr(s);
    } catch (err) {
      if (err instanceof CidrError) throw new UserError(`--deny-egress ${err.message}`);
      throw err;
    }
  });
}

export function parseServerOptions(argv: string[], env: NodeJS.ProcessEnv = process.env): ServerOptions {
  const raw: Record<string, string> = {};
  for (const [key, [, envName, def]] of Object.entries(SPEC)) raw[key] = env[envName] ?? def;
  const keyOf = new Map<string, string>(Object.entries(SPEC).map(([key, [flag]]) => [flag.slice(2), key]));
  const options = Object.fromEntries([...keyOf.keys()].map((name) => [name, { type: SWITCHES.has(`--${name}`) ? 'boolean' as const : 'string' as const }]));
  // Not strict: its errors name no usage, and a switch may take a value (--stop-apps=no), as its variable does.
  const { tokens } = parseArgs({ args: argv, options, strict: false, allowPositionals: true, tokens: true });
  const fromArgv = new Set<string>();
  for (const token of tokens) {
    const key = token.kind === 'option' && token.rawName.startsWith('--') ? keyOf.get(token.name) : undefined;
    if (token.kind !== 'option' || !key) throw new UserError(`unknown server option '${argv[token.index]}': usage: ${SERVER_USAGE}`);
    const flag = token.rawName;
    const value = SWITCHES.has(flag) ? (token.value ?? 'true') : token.value;
    if (value === undefined) throw new UserError(`${flag} needs a value`);
    // Flags given on the command line replace the variable's list instead of adding to it.
    if (REPEATABLE.has(key) && fromArgv.has(key)) raw[key] += `,${value}`;
    else raw[key] = value;
    fromArgv.add(key);
  }
  const keep = Number(raw.keep);
  if (!Number.isInteger(keep) || keep < 1) throw new UserError(`--keep must be a whole number of builds, 1 or more, not '${raw.keep}'`);
  const keepReleases = Number(raw.keepReleases);
  if (!Number.isInteger(keepReleases) || keepReleases < keep) {
    throw new UserError(`--keep-releases must be a whole number of release records, at least --keep (${keep}), not '${raw.keepReleases}'`);
  }
  const proxyWorkers = Number(raw.proxyWorkers);
  if (!Number.isInteger(proxyWorkers) || proxyWorkers < 1) {
    throw new UserError(`--proxy-workers must be a whole number of processes, 1 or more (default: the number of cores), not '${raw.proxyWorkers}'`);
  }
  if (!/^[a-z0-9.-]+$/i.test(raw.baseDomain!)) throw new UserError(`--base-domain must be a hostname, not '${raw.baseDomain}'`);
  const staging = /^(1|true|yes)$/i.test(raw.acmeStaging!);
  if (staging && raw.acmeDirectory !== LETS_ENCRYPT) throw new UserError('--acme-staging and --acme-directory both name the ACME directory: give one of them');
  const directoryUrl = staging ? LETS_ENCRYPT_STAGING : raw.acmeDirectory!;
  if (!/^https:\/\/[^\s/]+/.test(directoryUrl)) throw new UserError(`--acme-directory must be an https:// URL, not '${directoryUrl}'`);
  if (raw.acmeEmail && !/^[^\s@]+@[^\s@]+$/.test(raw.acmeEmail)) throw new UserError(`--acme-email must be an email address, not '${raw.acmeEmail}'`);
  return {
    data: raw.data!,
    host: raw.host!,
    httpPort: port('--http-port', raw.httpPort!, false)!,
    gitHttpPort: port('--git-http-port', raw.gitHttpPort!, false)!,
    sshPort: port('--ssh-port', raw.sshPort!, true),
    dnodePort: port('--dnode-port', raw.dnodePort!, true),
    dnodeHost: raw.dnodeHost!,
    dnodeAllow: raw.dnodeAllow ? raw.dnodeAllow.split(',').map((s) => s.trim()).filter(Boolean) : [],
    dashboardPort: port('--dashboard-port', raw.dashboardPort!, true),
    logFormat: parseLogFormat(raw.logFormat!),
    baseDomain: raw.baseDomain!.toLowerCase(),
    keep,
    keepReleases,
    drainTimeoutMs: seconds('--drain-timeout', raw.drainTimeout!),
    bootTimeoutMs: seconds('--boot-timeout', raw.bootTimeout!),
    slowStartMs: seconds('--slow-start', raw.slowStart!, true),
    proxyWorkers,
    requestTimeoutMs: seconds('--request-timeout', raw.requestTimeout!),
    idleTimeoutMs: seconds('--idle-timeout', raw.idleTimeout!),
    upstreamIdleTimeoutMs: seconds('--upstream-idle-timeout', raw.upstreamIdleTimeout!),
    stopApps: ['yes', 'true', '1'].includes(raw.stopApps!.toLowerCase()),
    denyEgress: cidrs(raw.denyEgress!),
    httpsPort: port('--https-port', raw.httpsPort!, true),
    acme: { directoryUrl, caFile: raw.acmeCa || null, email: raw.acmeEmail || null },
    couchdb: couchOptions(raw),
  };
}

function primaryUrl(text: string): CouchEndpoint {
  if (!/^https?:\/\//i.test(text)) throw new UserError("--couchdb must be 'embedded', 'off' or a URL like http://admin:PASSWORD@127.0.0.1:5984");
  return parseCouchUrl('--couchdb', text);
}

function couchOptions(raw: Record<string, string>): CouchOptions | null {
  const replica = raw.couchdbReplica ? parseCouchUrl('--couchdb-replica', raw.couchdbReplica) : null;
  if (raw.couchdb === 'off') {
    if (replica) throw new UserError('--couchdb-replica needs a primary: drop --couchdb off, or the replica');
    return null;
  }
  return {
    primary: raw.couchdb === 'embedded' ? null : primaryUrl(raw.couchdb!),
    replica,
    gatewayPort: port('--couchdb-gateway-port', raw.couchdbGatewayPort!, false)!,
    pouchdbServerDir: raw.pouchdbServer ? path.resolve(raw.pouchdbServer) : null,
  };
}
