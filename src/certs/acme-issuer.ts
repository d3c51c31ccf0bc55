// Certificates from an ACME CA (Let's Encrypt by default) with HTTP-01: the
// proxy answers the CA's request on its HTTP port from ChallengeTokens.
// One account per server, its key in DATA/certs/account-key.pem (0600).
import https from 'node:https';
import { createRequire } from 'node:module';
import tls from 'node:tls';
import acme from 'acme-client';
import type { AxiosAdapter } from 'axios';
import type { CertStore } from './cert-store.js';

export type AcmeFailureCode = 'rate-limited' | 'unreachable' | 'failed';

/** An issuance that did not succeed; the scheduler backs off by its code. */
export class AcmeFailure extends Error {
  /** The CA answered accountDoesNotExist. */
  accountGone = false;

  constructor(readonly code: AcmeFailureCode, message: string, readonly retryAfterMs: number | null = null) {
    super(message);
    this.name = 'AcmeFailure';
  }
}

/** The HTTP-01 answers currently expected by the CA: token → host and key authorization. */
export class ChallengeTokens {
  private readonly tokens = new Map<string, { host: string; keyAuthorization: string }>();
  /**
   * Told of each change (the server forwards tokens to the data plane, whose proxy answers
   * them); resolves once every proxy process has it.
   */
  onChange: ((token: string, entry: { host: string; keyAuthorization: string } | null) => void | Promise<void>) | null = null;

  /** Resolves once the token is answered: the CA is told to check only after that. */
  add(token: string, host: string, keyAuthorization: string): void | Promise<void> {
    this.tokens.set(token, { host, keyAuthorization });
    return this.onChange?.(token, { host, keyAuthorization });
  }

  remove(token: string): void | Promise<void> {
    this.tokens.delete(token);
    return this.onChange?.(token, null);
  }

  /** The key authorization for token when it was issued for host, else null. */
  answer(token: string, host: string): string | null {
    const t = this.tokens.get(token);
    return t && t.host === host ? t.keyAuthorization : null;
  }
}

export interface AcmeIssuerOptions {
  directoryUrl: string;
  /** Extra PEM CA certificates trusted for the directory's TLS. */
  caPem: string | null;
  email: string | null;
  store: CertStore;
  tokens: ChallengeTokens;
}

interface AccountRecord {
  directoryUrl: string;
  url: string;
}

const REQUEST_TIMEOUT_MS = 30_000;

export class AcmeIssuer {
  /** No request goes to the CA before this time after it answered with a rate limit. */
  private blockedUntil = 0;

  constructor(private readonly o: AcmeIssuerOptions) {
    this.configureHttp();
  }

  /** A new key and a certificate for host, PEM; throws AcmeFailure. */
  async issue(host: string): Promise<{ key: string; chain: string }> {
    try {
      return await this.order(host, this.accountUrl());
    } catch (err) {
      // The CA no longer knows the stored account (a test CA restarted, an
      // account deactivated): register the same key again, once.
      if (!(err instanceof AcmeFailure && err.accountGone)) throw err;
      return this.order(host, null);
    }
  }

  private async order(host: string, accountUrl: string | null): Promise<{ key: string; chain: string }> {
    if (Date.now() < this.blockedUntil) throw this.rateLimited(this.blockedUntil - Date.now(), 'the CA asked to wait');
    const client = new acme.Client({
      directoryUrl: this.o.directoryUrl,
      accountKey: await this.accountKey(),
      accountUrl: accountUrl ?? undefined,
      // Polls the order every 1 s growing to 10 s, about a minute in all.
      backoffAttempts: 10, backoffMin: 1000, backoffMax: 10_000,
    });
    const key = (await acme.crypto.createPrivateEcdsaKey('P-256')).toString();
    const [, csr] = await acme.crypto.createCsr({ commonName: host, altNames: [host] }, key);
    try {
      const chain = await client.auto({
        csr,
        email: this.o.email ?? undefined,
        termsOfServiceAgreed: true,
        // Its own pre-check would dial the domain from here first: the CA's check is the one that counts.
        skipChallengeVerification: true,
        challengePriority: ['http-01'],
        // Awaited: with proxy workers the CA's request may reach any of them, and each must have the token first.
        challengeCreateFn: async (_authz, challenge, keyAuthorization) => {
          try {
            await this.o.tokens.add(challenge.token, host, keyAuthorization);
          } catch (err) {
            throw new AcmeFailure('failed', `the proxy could not take the challenge token: ${oneLine((err as Error).message)}`);
          }
        },
        challengeRemoveFn: async (_authz, challenge) => this.o.tokens.remove(challenge.token),
      });
      this.saveAccountUrl(client.getAccountUrl());
      return { key, chain };
    } catch (err) {
      if (err instanceof AcmeFailure) throw err;
      throw new AcmeFailure('failed', oneLine((err as Error).message) || 'the CA refused the order');
    }
  }

  private async accountKey(): Promise<string> {
    const existing = this.o.store.readText(this.o.store.accountKeyFile);
    if (existing) return existing;
    const key = (await acme.crypto.createPrivateEcdsaKey('P-256')).toString();
    this.o.store.writeText(this.o.store.accountKeyFile, key);
    return key;
  }

  /** The account's URL at this directory, when one was made there before. */
  private accountUrl(): string | null {
    const text = this.o.store.readText(this.o.store.accountFile);
    if (!text) return null;
    try {
      const rec = JSON.parse(text) as AccountRecord;
      return rec.directoryUrl === this.o.directoryUrl ? rec.url : null;
    } catch {
      return null;
    }
  }

  private saveAccountUrl(url: string): void {
    if (url === this.accountUrl()) return;
    const rec: AccountRecord = { directoryUrl: this.o.directoryUrl, url };
    this.o.store.writeText(this.o.store.accountFile, JSON.stringify(rec, null, 2) + '\n');
  }

  private rateLimited(waitMs: number, detail: string): AcmeFailure {
    return new AcmeFailure('rate-limited', `rate limited by the CA: ${detail}; next try after ${new Date(Date.now() + waitMs).toISOString()}`, waitMs);
  }

  /**
   * acme-client's HTTP client, set up once: the extra CA, a timeout, and no
   * retries of its own (it would wait out a Retry-After of hours inside one
   * call). Its transport is wrapped so that a rate limit and an unreachable CA
   * come out as AcmeFailure with their code and the cause, which the scheduler
   * backs off by.
   */
  private configureHttp(): void {
    const ax = acme.axios;
    ax.defaults.timeout = REQUEST_TIMEOUT_MS;
    ax.defaults.httpsAgent = new https.Agent({ keepAlive: true, ca: this.o.caPem ? [...tls.rootCertificates, this.o.caPem] : undefined });
    (ax.defaults as { acmeSettings?: { retryMaxAttempts: number } }).acmeSettings!.retryMaxAttempts = 0;
    const transport = httpAdapter();
    ax.defaults.adapter = async (config) => {
      if (Date.now() < this.blockedUntil) throw this.rateLimited(this.blockedUntil - Date.now(), 'the CA asked to wait');
      try {
        return await transport(config);
      } catch (err) {
        const response = (err as { response?: { status: number; data: unknown; headers: Record<string, string | undefined> } }).response;
        if (!response) {
          const e = err as NodeJS.ErrnoException;
          const hint = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(e.code ?? '') ? ' (a private CA: give its certificate with --acme-ca FILE)' : '';
          // No `config` on this error: acme-client's retry interceptor passes it through as is.
          throw new AcmeFailure('unreachable', `cannot reach the ACME CA at ${config.url}: ${e.code ?? e.message}${hint}`);
        }
        const problem = parseProblem(response.data);
        if (response.status === 429 || problem?.type === 'urn:ietf:params:acme:error:rateLimited') {
          const wait = retryAfterMs(response.headers['retry-after']);
          this.blockedUntil = Date.now() + (wait ?? 60 * 60_000);
          throw this.rateLimited(wait ?? 60 * 60_000, oneLine(problem?.detail ?? `HTTP ${response.status}`));
        }
        if (problem?.type === 'urn:ietf:params:acme:error:accountDoesNotExist') {
          const gone = new AcmeFailure('failed', `the CA does not know this server's account: ${oneLine(problem.detail ?? '')}`);
          gone.accountGone = true;
          throw gone;
        }
        throw err;
      }
    };
  }
}

/** axios's own Node transport, from the copy acme-client uses. */
function httpAdapter(): AxiosAdapter {
  const fromAcme = createRequire(createRequire(import.meta.url).resolve('acme-client'));
  const axios = fromAcme('axios') as { getAdapter(name: string): AxiosAdapter };
  return axios.getAdapter('http');
}

function parseProblem(data: unknown): { type?: string; detail?: string } | null {
  try {
    const v = typeof data === 'string' || Buffer.isBuffer(data) ? JSON.parse(data.toString()) : data;
    return v && typeof v === 'object' ? (v as { type?: string; detail?: string }) : null;
  } catch {
    return null;
  }
}

/** Retry-After as seconds or an HTTP date, in ms from now. */
export function retryAfterMs(header: string | undefined): number | null {
  if (!header) return null;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const at = Date.parse(header);
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : null;
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim().slice(0, 500);
}
