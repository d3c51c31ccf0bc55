// Every certificate the server serves, and the schedule that keeps the
// automatic ones fresh. Serving never waits on the CA: certificates are read
// from DATA/certs at start, and a failed issuance only records its error and
// a later retry; whatever answered before keeps answering.
import fs from 'node:fs';
import type { AppLogs } from '../logs/app-log.js';
import type { RouteControl } from '../proxy/types.js';

import type { StateStore } from '../state/store.js';
import type { CertSettings } from '../state/types.js';
import type { AcmeOptions } from '../server/server-options.js';
import { AcmeFailure, AcmeIssuer, ChallengeTokens, type AcmeFailureCode } from './acme-issuer.js';
import { covers, isCurrent, parseBundle, type Certificate, type CertSource } from './certificate.js';
import { CertStore } from './cert-store.js';
import { CHECK_EVERY_MS, backoffMs, rateLimitBackoffMs, renewAt } from './renewal-policy.js';
import { makeSelfSigned, selfSignedHosts } from './self-signed.js';
import { TlsIndex, type HostPolicy } from './tls-index.js';
import { UserError } from '../errors.js';

export const DEFAULT_SETTINGS: CertSettings = { auto: false, redirect: true, hsts: false };

/** The last attempt's outcome for one automatic certificate; kept in certs/status.json across restarts. */
export interface AttemptStatus {
  failures: number;
  lastError: string | null;
  lastErrorAt: string | null;
  code: AcmeFailureCode | null;
  /** ISO time before which no new attempt is made (backoff), or null. */
  nextAttempt: string | null;
}

export interface CertView {
  hosts: string[];
  issuer: string | null;
  notAfter: string | null;
  serial: string | null;
  source: CertSource;
  /** Auto certificates: when renewal is due. */
  renewAt?: string | null;
  lastError?: string | null;
  lastErrorAt?: string | null;
  nextAttempt?: string | null;
}

export interface CertsOptions {
  dir: string;
  store: StateStore;
  logs: AppLogs;
  baseDomain: string;
  acme: AcmeOptions;
  log: (line: string) => void;
}

/** The ACME names and their auto-certificate, per app and host. */
type AutoCerts = Map<string, Map<string, Certificate>>;

export class Certs {
  readonly tokens = new ChallengeTokens();
  readonly index: TlsIndex;
  private readonly files: CertStore;
  private readonly hosts = new Map<string, readonly string[]>();
  private readonly manual = new Map<string, Certificate>();
  private readonly auto: AutoCerts = new Map();
  private status: Record<string, AttemptStatus>;
  private operatorDefault: Certificate | null;
  private issuerInstance: AcmeIssuer | null = null;
  private timer: NodeJS.Timeout | null = null;
  private expiryTimer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private started = false;
  private closed = false;

  private constructor(
    private readonly o: CertsOptions,
    files: CertStore,
    private selfSigned: Certificate,
    private readonly caPem: string | null,
  ) {
    this.files = files;
    const read = (file: string) => files.read(file, (why) => o.log(`certs: ignoring an unusable certificate file: ${why}`));
    this.operatorDefault = read(files.defaultFile);
    this.status = readStatus(files);
    const known = new Set(Object.keys(o.store.get().apps));
    for (const k of Object.keys(this.status)) if (!known.has(k.split(' ')[0]!)) delete this.status[k];
    for (const app of files.apps()) {
      // Destroyed while the server was down: its keys go too.
      if (!known.has(app)) {
        files.removeApp(app);
        continue;
      }
      const m = read(files.manualFile(app));
      if (m) this.manual.set(app, m);
      for (const host of files.autoHosts(app)) {
        const c = read(files.autoFile(app, host));
        if (c) this.autoOf(app).set(host, c);
      }
    }
    this.index = new TlsIndex(this.operatorDefault ?? selfSigned);
  }

  /** Loads DATA/certs, making the self-signed certificate on first start (or when the base domain changed). */
  static async open(o: CertsOptions): Promise<Certs> {
    let caPem: string | null = null;
    if (o.acme.caFile) {
      try {
        caPem = fs.readFileSync(o.acme.caFile, 'utf8');
      } catch (err) {
        throw new UserError(`--acme-ca ${o.acme.caFile}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): give a PEM file of CA certificates`);
      }
      if (!caPem.includes('-----BEGIN CERTIFICATE-----')) throw new UserError(`--acme-ca ${o.acme.caFile} holds no PEM certificate: give the CA's certificate in PEM`);
    }
    const files = new CertStore(o.dir);
    let selfSigned = files.read(files.selfSignedFile);
    const probe = `x.${o.baseDomain}`;
    if (!selfSigned || !covers(selfSigned, probe) || renewAt(selfSigned.notBefore, selfSigned.notAfter) <= Date.now()) {
      const made = await makeSelfSigned(selfSignedHosts(o.baseDomain));
      files.write(files.selfSignedFile, made);
      selfSigned = parseBundle(made.key + made.chain, 'the self-signed certificate');
    }
    return new Certs(o, files, selfSigned, caPem);
  }

  /** RouteControl that also tells this about host changes: a new domain gets a certificate, a removed one loses it. */
  watch(routes: RouteControl): RouteControl {
    return {
      ...routes,
      setHosts: (app, hosts) => {
        routes.setHosts(app, hosts);
        this.hostsChanged(app, hosts);
      },
      removeApp: (app) => {
        routes.removeApp(app);
        this.appRemoved(app);
      },
    };
  }

  /** Begins the renewal schedule (after every app's hosts are known). */
  start(): void {
    this.started = true;
    this.kick();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
  }

  // ------------------------------------------------------------ settings

  settings(app: string): CertSettings {
    return { ...DEFAULT_SETTINGS, ...this.o.store.get().apps[app]?.certs };
  }

  private saveSettings(app: string, change: Partial<CertSettings>): void {
    this.o.store.update((s) => {
      const a = s.apps[app];
      if (!a) throw new UserError(`app '${app}' does not exist`);
      a.certs = { ...DEFAULT_SETTINGS, ...a.certs, ...change };
    });
  }

  setRedirect(app: string, on: boolean): void {
    this.saveSettings(app, { redirect: on });
    this.rebuild();
  }

  setHsts(app: string, on: boolean): void {
    this.saveSettings(app, { hsts: on });
    this.rebuild();
  }

  // ------------------------------------------------------------ operator commands

  /** certs:add APP: a manual certificate; nothing changes unless it is usable for the app. */
  addManual(app: string, pem: string): Certificate {
    if (this.settings(app).auto) throw new UserError(`app '${app}' gets certificates automatically: turn that off first with 'platformx certs:auto ${app} --off'`);
    const cert = parseBundle(pem, 'the --cert and --key files');
    this.checkCurrent(cert);
    const hosts = this.hosts.get(app) ?? [];
    if (!hosts.some((h) => covers(cert, h))) {
      throw new UserError(`the certificate covers ${cert.hosts.join(', ') || 'no DNS name'}, none of ${app}'s hosts (${hosts.join(', ')}): add the domain first with 'platformx domains:add ${app} HOST'`);
    }
    this.files.write(this.files.manualFile(app), cert);
    this.manual.set(app, cert);
    this.rebuild();
    this.o.logs.get(app).write('platform[certs]', `manual certificate added for ${cert.hosts.join(', ')} (issuer ${cert.issuer}, expires ${cert.notAfter.toISOString()})`);
    return cert;
  }

  /** certs:add --default: the operator's certificate for hosts under the base domain (a wildcard, usually). */
  addDefault(pem: string): Certificate {
    const cert = parseBundle(pem, 'the --cert and --key files');
    this.checkCurrent(cert);
    const base = this.o.baseDomain;
    if (!covers(cert, `x.${base}`) && ![...this.hosts.keys()].some((app) => covers(cert, `${app}.${base}`))) {
      throw new UserError(`the certificate covers ${cert.hosts.join(', ') || 'no DNS name'}, no host under the base domain ${base}: give a certificate for *.${base}`);
    }
    this.files.write(this.files.defaultFile, cert);
    this.operatorDefault = cert;
    this.rebuild();
    this.o.log(`certs: default certificate added for ${cert.hosts.join(', ')} (expires ${cert.notAfter.toISOString()})`);
    return cert;
  }

  removeManual(app: string): void {
    if (!this.manual.has(app)) throw new UserError(`app '${app}' has no manual certificate: see 'platformx certs ${app}'`);
    this.files.remove(this.files.manualFile(app));
    this.manual.delete(app);
    this.rebuild();
    this.o.logs.get(app).write('platform[certs]', 'manual certificate removed');
  }

  /**
   * certs:auto APP: turns automatic certificates on and tries every missing
   * or due one now (a backoff is cut short, a CA's rate limit is not);
   * resolves once those attempts are done.
   */
  async enableAuto(app: string): Promise<string[]> {
    if (this.manual.has(app)) throw new UserError(`app '${app}' has a manual certificate: remove it first with 'platformx certs:remove ${app}'`);
    this.saveSettings(app, { auto: true });
    const targets = this.autoTargets(app);
    for (const host of targets) {
      const st = this.status[key(app, host)];
      if (st && st.code !== 'rate-limited') st.nextAttempt = null;
    }
    this.kick();
    await this.idle();
    return targets;
  }

  disableAuto(app: string): void {
    this.saveSettings(app, { auto: false });
    for (const host of [...(this.auto.get(app)?.keys() ?? []), ...this.statusHosts(app)]) this.retire(app, host);
    this.rebuild();
  }

  // ------------------------------------------------------------ views

  describe(app: string): { app: string; settings: CertSettings; certificates: CertView[]; hosts: { host: string; source: CertSource; serial: string }[] } {
    const hosts = this.hosts.get(app) ?? [];
    const certificates: CertView[] = [];
    const m = this.manual.get(app);
    if (m) certificates.push(view(m, 'manual'));
    for (const host of this.autoTargets(app)) {
      const c = this.auto.get(app)?.get(host);
      const st = this.status[key(app, host)];
      certificates.push({
        ...(c ? view(c, 'auto') : { hosts: [host], issuer: null, notAfter: null, serial: null, source: 'auto' as const }),
        renewAt: c ? new Date(renewAt(c.notBefore, c.notAfter)).toISOString() : null,
        lastError: st?.lastError ?? null, lastErrorAt: st?.lastErrorAt ?? null, nextAttempt: st?.nextAttempt ?? null,
      });
    }
    const served = hosts.map((h) => ({ host: h, ...this.certFor(app, h, Date.now()) }));
    for (const source of ['default', 'self-signed'] as const) {
      const used = served.find((s) => s.source === source);
      if (used) certificates.push(view(used.cert, source));
    }
    return { app, settings: this.settings(app), certificates, hosts: served.map((s) => ({ host: s.host, source: s.source, serial: s.cert.serial })) };
  }

  /** What each app's host is served with now, and when that certificate expires (for metrics). */
  served(): { app: string; host: string; source: CertSource; notAfter: Date }[] {
    const now = Date.now();
    return [...this.hosts].flatMap(([app, hosts]) => hosts.map((host) => {
      const { cert, source } = this.certFor(app, host, now);
      return { app, host, source, notAfter: cert.notAfter };
    }));
  }

  // ------------------------------------------------------------ hosts

  private hostsChanged(app: string, hosts: readonly string[]): void {
    this.hosts.set(app, [...hosts]);
    const keep = new Set(this.autoTargets(app));
    for (const host of [...(this.auto.get(app)?.keys() ?? []), ...this.statusHosts(app)]) if (!keep.has(host)) this.retire(app, host);
    this.rebuild();
    if (this.started) this.kick();
  }

  private appRemoved(app: string): void {
    this.hosts.delete(app);
    this.manual.delete(app);
    this.auto.delete(app);
    for (const host of this.statusHosts(app)) delete this.status[key(app, host)];
    this.files.removeApp(app);
    this.saveStatus();
    this.rebuild();
  }

  /** The hosts of app that get automatic certificates: its custom domains, and APP.BASE when the base domain is public. */
  private autoTargets(app: string): string[] {
    if (!this.settings(app).auto) return [];
    const base = `${app}.${this.o.baseDomain}`;
    const def = this.operatorDefault;
    return (this.hosts.get(app) ?? []).filter((h) => {
      if (h === base && !isPublicDomain(this.o.baseDomain)) return false;
      // The operator's wildcard already covers it.
      return !(def && isCurrent(def) && covers(def, h));
    });
  }

  private retire(app: string, host: string): void {
    const had = this.auto.get(app)?.delete(host);
    this.files.remove(this.files.autoFile(app, host));
    if (this.status[key(app, host)]) {
      delete this.status[key(app, host)];
      this.saveStatus();
    }
    if (had) this.o.logs.get(app).write('platform[certs]', `certificate for ${host} retired`);
  }

  private statusHosts(app: string): string[] {
    const prefix = `${app} `;
    return Object.keys(this.status).filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length));
  }

  private autoOf(app: string): Map<string, Certificate> {
    let m = this.auto.get(app);
    if (!m) this.auto.set(app, (m = new Map()));
    return m;
  }

  // ------------------------------------------------------------ serving

  /** The certificate a host is served with, in order: the app's manual one, its auto one, the operator's default, the self-signed. */
  private certFor(app: string, host: string, now: number): { cert: Certificate; source: CertSource } {
    const candidates: [Certificate | null | undefined, CertSource][] = [
      [this.manual.get(app), 'manual'], [this.auto.get(app)?.get(host), 'auto'], [this.operatorDefault, 'default'],
    ];
    const covering = candidates.filter((c): c is [Certificate, CertSource] => !!c[0] && covers(c[0], host));
    const pick = covering.find(([c]) => isCurrent(c, now)) ?? covering[0];
    if (pick) return { cert: pick[0], source: pick[1] };
    return this.operatorDefault ? { cert: this.operatorDefault, source: 'default' } : { cert: this.selfSigned, source: 'self-signed' };
  }

  /** Recomputes what each host is served with, and redirect/HSTS for hosts with a valid certificate. */
  private rebuild(): void {
    const now = Date.now();
    const certs = new Map<string, Certificate>();
    const policies = new Map<string, HostPolicy>();
    let nextExpiry = Infinity;
    for (const [app, hosts] of this.hosts) {
      const s = this.settings(app);
      for (const host of hosts) {
        const { cert, source } = this.certFor(app, host, now);
        certs.set(host, cert);
        // A self-signed certificate is no reason to send browsers away from HTTP.
        const valid = source !== 'self-signed' && covers(cert, host) && isCurrent(cert, now);
        if (!valid) continue;
        nextExpiry = Math.min(nextExpiry, cert.notAfter.getTime());
        if (s.redirect || s.hsts) policies.set(host, { redirect: s.redirect, hsts: s.hsts });
      }
    }
    this.index.replace(certs, this.operatorDefault ?? this.selfSigned, policies);
    // At expiry a host stops redirecting, so plain HTTP keeps working.
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.expiryTimer = null;
    if (nextExpiry < Infinity && !this.closed) {
      this.expiryTimer = setTimeout(() => this.rebuild(), Math.min(CHECK_EVERY_MS, Math.max(0, nextExpiry - now) + 10)).unref();
    }
  }

  private checkCurrent(cert: Certificate): void {
    if (!isCurrent(cert)) {
      throw new UserError(`the certificate is valid from ${cert.notBefore.toISOString()} to ${cert.notAfter.toISOString()}, not now: give a current one`);
    }
  }

  // ------------------------------------------------------------ schedule

  /** Runs a pass over every automatic certificate soon; passes never overlap. */
  private kick(): void {
    if (this.closed || !this.started) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.running = this.pass().finally(() => {
      this.running = null;
      if (this.again) {
        this.again = false;
        this.kick();
      }
    });
  }

  /** Resolves once no pass is running or asked for. */
  private async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private dueAt(app: string, host: string): number {
    const c = this.auto.get(app)?.get(host);
    const next = this.status[key(app, host)]?.nextAttempt;
    return Math.max(c ? renewAt(c.notBefore, c.notAfter) : 0, next ? Date.parse(next) : 0);
  }

  private async pass(): Promise<void> {
    let wake = Date.now() + CHECK_EVERY_MS;
    for (const app of [...this.hosts.keys()]) {
      for (const host of this.autoTargets(app)) {
        if (this.closed) return;
        if (this.dueAt(app, host) <= Date.now()) await this.attempt(app, host);
        // Still wanted after the await (a domain may have gone meanwhile)?
        if (this.autoTargets(app).includes(host)) wake = Math.min(wake, this.dueAt(app, host));
      }
    }
    if (this.closed) return;
    this.timer = setTimeout(() => this.kick(), Math.max(1000, wake - Date.now())).unref();
  }

  private issuer(): AcmeIssuer {
    return (this.issuerInstance ??= new AcmeIssuer({
      directoryUrl: this.o.acme.directoryUrl, caPem: this.caPem, email: this.o.acme.email, store: this.files, tokens: this.tokens,
    }));
  }

  private async attempt(app: string, host: string): Promise<void> {
    const k = key(app, host);
    const renewing = this.auto.get(app)?.has(host) ?? false;
    try {
      const issued = await this.issuer().issue(host);
      const cert = parseBundle(issued.key + issued.chain, `the certificate the CA issued for ${host}`);
      if (!covers(cert, host)) throw new AcmeFailure('failed', `the CA issued a certificate for ${cert.hosts.join(', ')}, not ${host}`);
      if (!this.autoTargets(app).includes(host)) return;
      this.files.write(this.files.autoFile(app, host), cert);
      this.autoOf(app).set(host, cert);
      delete this.status[k];
      this.saveStatus();
      this.rebuild();
      const line = `certificate for ${host} ${renewing ? 'renewed' : 'issued'} by ${cert.issuer}, expires ${cert.notAfter.toISOString()}`;
      this.o.logs.get(app).write('platform[certs]', line);
      this.o.log(`certs: ${app}: ${line}`);
    } catch (err) {
      const failure = err instanceof AcmeFailure ? err : new AcmeFailure('failed', (err as Error).message);
      if (!this.autoTargets(app).includes(host)) return;
      const failures = (this.status[k]?.failures ?? 0) + 1;
      const wait = failure.code === 'rate-limited' ? rateLimitBackoffMs(failures, failure.retryAfterMs) : backoffMs(failures);
      const next = new Date(Date.now() + wait).toISOString();
      this.status[k] = { failures, lastError: failure.message, lastErrorAt: new Date().toISOString(), code: failure.code, nextAttempt: next };
      this.saveStatus();
      const serving = renewing ? 'the current certificate keeps serving' : 'the app keeps answering over HTTP';
      const line = `certificate for ${host} failed (${failures} in a row): ${failure.message}; next try at ${next}; ${serving}`;
      this.o.logs.get(app).write('platform[certs]', line);
      this.o.log(`certs: ${app}: ${line}`);
    }
  }

  private saveStatus(): void {
    this.files.writeText(this.files.statusFile, JSON.stringify(this.status, null, 1) + '\n');
  }
}

function key(app: string, host: string): string {
  return `${app} ${host}`;
}

function readStatus(files: CertStore): Record<string, AttemptStatus> {
  const text = files.readText(files.statusFile);
  if (!text) return {};
  try {
    return JSON.parse(text) as Record<string, AttemptStatus>;
  } catch {
    return {};
  }
}

function view(c: Certificate, source: CertSource): CertView {
  return { hosts: [...c.hosts], issuer: c.issuer, notAfter: c.notAfter.toISOString(), serial: c.serial, source };
}

const PRIVATE_SUFFIXES = ['localhost', 'local', 'test', 'example', 'invalid', 'internal', 'lan', 'home.arpa', 'localdomain'];

/** Whether a public CA can validate names under domain (it has a dot and no reserved or local suffix). */
export function isPublicDomain(domain: string): boolean {
  if (!domain.includes('.') || /^[\d.]+$/.test(domain)) return false;
  return !PRIVATE_SUFFIXES.some((s) => domain === s || domain.endsWith(`.${s}`));
}
