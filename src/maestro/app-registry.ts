import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import type { RouteControl } from '../proxy/types.js';
import { checkAppName, checkHostnameClaim, normalizeHostname } from '../state/names.js';
import type { DataPaths } from '../state/paths.js';
import type { StateStore } from '../state/store.js';
import { DEFAULT_LIMITS, type AppRecord, type TokenRecord } from '../state/types.js';
import type { AppTriggers } from './app-triggers.js';
import { findToken, newToken } from './tokens.js';
import { ErrorCode, UserError } from '../errors.js';

/** Apps, their hostnames and their deploy tokens: the records, the repos and the proxy's host table. */
export class AppRegistry {
  /** Names whose repo is being made: a second create of one meanwhile must not wipe the first one's files. */
  private readonly creating = new Set<string>();

  constructor(
    private readonly store: StateStore,
    private readonly paths: DataPaths,
    private readonly routes: RouteControl,
    private readonly baseDomain: string,
    /** Sandboxed servers give every app its own uid at creation, so uploads and builds are its own from the start. */
    private readonly ownUsers: boolean,
    private readonly triggers: AppTriggers,
  ) {}

  get(name: string): AppRecord {
    const app = this.record(name);
    if (!app) throw new UserError(`app '${name}' does not exist: create it with 'platformx apps:create ${name}'`, ErrorCode.NotFound);
    return app;
  }

  /** Own records only: a name like 'constructor' must not find Object.prototype's. */
  private record(name: string): AppRecord | undefined {
    const apps = this.store.get().apps;
    return Object.hasOwn(apps, name) ? apps[name] : undefined;
  }

  list(): AppRecord[] {
    return Object.values(this.store.get().apps).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Every hostname of the app: its domains plus APP.BASE_DOMAIN. */
  hosts(app: AppRecord): string[] {
    return [...app.domains, `${app.name}.${this.baseDomain}`];
  }

  async create(name: string, domains: string[]): Promise<AppRecord> {
    checkAppName(name);
    const hosts = domains.map(normalizeHostname);
    if (this.record(name) || this.creating.has(name)) throw new UserError(`app '${name}' already exists: pick another name`, ErrorCode.Conflict);
    for (const h of hosts) this.checkHostFree(h, name, () => true);
    if (new Set(hosts).size !== hosts.length) throw new UserError('the same domain was given twice');
    this.creating.add(name);
    try {
      // A destroy cut short by a crash leaves the old app's files: a new app of that name starts clean.
      fs.rmSync(this.paths.appDir(name), { recursive: true, force: true });
      for (const t of this.triggers.appCreated) await t(name);
      // Another app may have claimed one of these hosts while the triggers ran.
      for (const h of hosts) this.checkHostFree(h, name, () => true);
    } catch (err) {
      fs.rmSync(this.paths.appDir(name), { recursive: true, force: true });
      throw err;
    } finally {
      this.creating.delete(name);
    }
    const app = this.store.update((s) => {
      const record: AppRecord = {
        name,
        domains: hosts,
        createdAt: new Date().toISOString(),
        tokens: [],
        current: null,
        config: {},
        formation: { web: 1 },
        limits: { ...DEFAULT_LIMITS },
        uid: this.ownUsers ? s.nextUid++ : null,
      };
      s.apps[name] = record;
      return record;
    });
    this.routes.setHosts(name, this.hosts(app));
    this.routes.setBackends(name, []);
    return app;
  }

  /** Removes the record first (a crash then leaves only orphan files), then the files. */
  destroy(name: string): void {
    this.get(name);
    this.store.update((s) => {
      delete s.apps[name];
      for (const t of this.triggers.appDestroyed) t(name, s);
    });
    this.routes.removeApp(name);
    fs.rmSync(this.paths.appDir(name), { recursive: true, force: true });
  }

  /** The app a hostname belongs to, if any (domains and APP.BASE_DOMAIN). */
  ownerOf(host: string): string | null {
    for (const app of this.list()) if (this.hosts(app).includes(host)) return app.name;
    return null;
  }

  /** Refuses a hostname forApp may not take (see checkHostnameClaim). */
  private checkHostFree(host: string, forApp: string, canSee: (app: string) => boolean): void {
    const others = this.list().filter((a) => a.name !== forApp).map((a) => ({ app: a.name, hosts: this.hosts(a) }));
    checkHostnameClaim(host, forApp, { baseDomain: this.baseDomain, machineNames: machineNames(), others, canSee });
  }

  /** Adds a hostname to an app; `canSee` (default: every app) says whose names an error may show. */
  addDomain(name: string, host: string, canSee: (app: string) => boolean = () => true): string {
    this.get(name);
    const h = normalizeHostname(host);
    this.checkHostFree(h, name, canSee);
    const app = this.store.update((s) => {
      const a = s.apps[name]!;
      if (a.domains.includes(h)) throw new UserError(`app '${name}' already has domain '${h}'`, ErrorCode.Conflict);
      a.domains.push(h);
      return a;
    });
    this.routes.setHosts(name, this.hosts(app));
    return h;
  }

  removeDomain(name: string, host: string): void {
    this.get(name);
    const h = normalizeHostname(host);
    const app = this.store.update((s) => {
      const a = s.apps[name]!;
      if (!a.domains.includes(h)) throw new UserError(`app '${name}' has no domain '${h}': see 'platformx apps:info ${name}'`);
      a.domains = a.domains.filter((d) => d !== h);
      return a;
    });
    this.routes.setHosts(name, this.hosts(app));
  }

  createToken(name: string): { id: string; secret: string } {
    this.get(name);
    const { record, secret } = newToken();
    this.store.update((s) => s.apps[name]!.tokens.push(record));
    return { id: record.id, secret };
  }

  revokeToken(name: string, id: string): void {
    this.get(name);
    this.store.update((s) => {
      const a = s.apps[name]!;
      if (!a.tokens.some((t) => t.id === id)) throw new UserError(`app '${name}' has no token '${id}': see 'platformx tokens:list ${name}'`);
      a.tokens = a.tokens.filter((t) => t.id !== id);
    });
  }

  /** The token of app that secret is, or undefined. Records its use. */
  authenticate(name: string, secret: string): TokenRecord | undefined {
    const app = this.record(name);
    if (!app) return undefined;
    const token = findToken(app.tokens, secret);
    if (!token) return undefined;
    // Last use is shown to the minute, like SSH keys': at most one state write a minute
    // per token, and never on the request's own path.
    const now = Date.now();
    if (!token.lastUsed || now - Date.parse(token.lastUsed) >= 60_000) {
      setImmediate(() => this.store.update((s) => {
        const t = s.apps[name]?.tokens.find((x) => x.id === token.id);
        if (t) t.lastUsed = new Date(now).toISOString();
      }));
    }
    return token;
  }
}

/**
 * Names this machine answers to: its hostname and the /etc/hosts names of
 * loopback or its own addresses. A load balancer or a local tool sending one
 * of them as Host means the server, never an app.
 */
function machineNames(): Set<string> {
  const own = new Set(Object.values(os.networkInterfaces()).flatMap((l) => (l ?? []).map((a) => a.address)));
  const names = new Set([os.hostname().toLowerCase()]);
  let hosts = '';
  try {
    hosts = fs.readFileSync('/etc/hosts', 'utf8');
  } catch {
    /* no hosts file: the hostname alone */
  }
  for (const line of hosts.split('\n')) {
    const [address, ...aliases] = line.replace(/#.*/, '').trim().split(/\s+/);
    if (!address || !net.isIP(address)) continue;
    if (own.has(address) || address.startsWith('127.') || address === '::1') for (const a of aliases) names.add(a.toLowerCase());
  }
  return names;
}
