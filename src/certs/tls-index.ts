// What the HTTPS listener and the proxy's edge hook read on every handshake and
// request: SNI name → TLS context, and host → redirect/HSTS policy. Rebuilt
// whole and swapped in one assignment, so a new certificate applies to the
// next handshake and open connections keep the context they started with.
import tls from 'node:tls';
import { hostname } from '../proxy/route-table.js';
import type { Certificate } from './certificate.js';
import type { SessionTickets } from './session-tickets.js';

export interface HostPolicy {
  /** Plain HTTP gets 308 to HTTPS. */
  redirect: boolean;
  /** HTTPS answers carry Strict-Transport-Security. */
  hsts: boolean;
}

export interface TlsState {
  certs: ReadonlyMap<string, Certificate>;
  fallback: Certificate;
  policies: ReadonlyMap<string, HostPolicy>;
}

export class TlsIndex {
  private contexts = new Map<string, tls.SecureContext>();
  private policies = new Map<string, HostPolicy>();
  private fallbackCert: Certificate;
  private fallback: tls.SecureContext;
  private readonly cache = new WeakMap<Certificate, tls.SecureContext>();
  /** Told when the certificate for clients without SNI changes (the listener's own context). */
  onFallbackChange: ((cert: Certificate) => void) | null = null;
  /** Told of every new set of certificates and policies (the server forwards them to the data plane). */
  onReplace: ((state: TlsState) => void) | null = null;
  private last: TlsState;

  /** tickets: the listener's session-ticket keys, given to every context made here (none where no listener serves). */
  constructor(fallback: Certificate, readonly tickets: SessionTickets | null = null) {
    this.fallbackCert = fallback;
    this.fallback = this.context(fallback);
    this.last = { certs: new Map(), fallback, policies: new Map() };
  }

  /** What the index serves now. */
  get state(): TlsState {
    return this.last;
  }

  /** The context for an SNI name: the host's certificate, else the default one. */
  contextFor(servername: string): tls.SecureContext {
    return this.contexts.get(servername) ?? this.contexts.get(servername.toLowerCase()) ?? this.fallback;
  }

  /** For clients that send no SNI (an IP address in the URL). */
  get fallbackCertificate(): Certificate {
    return this.fallbackCert;
  }

  /** The host's policy for a Host header as sent (any case, optional port); undefined for most hosts. */
  policy(hostHeader: string): HostPolicy | undefined {
    const p = this.policies;
    if (p.size === 0) return undefined;
    return p.get(hostHeader) ?? p.get(hostname(hostHeader).toLowerCase());
  }

  replace(certs: ReadonlyMap<string, Certificate>, fallback: Certificate, policies: Map<string, HostPolicy>): void {
    this.last = { certs, fallback, policies };
    this.onReplace?.(this.last);
    const contexts = new Map<string, tls.SecureContext>();
    for (const [host, cert] of certs) contexts.set(host, this.context(cert));
    this.contexts = contexts;
    this.policies = policies;
    if (fallback !== this.fallbackCert) {
      this.fallbackCert = fallback;
      this.fallback = this.context(fallback);
      this.onFallbackChange?.(fallback);
    }
  }

  private context(cert: Certificate): tls.SecureContext {
    let ctx = this.cache.get(cert);
    if (!ctx) {
      ctx = tls.createSecureContext({ key: cert.key, cert: cert.chain });
      this.tickets?.attach(ctx);
      this.cache.set(cert, ctx);
    }
    return ctx;
  }
}
