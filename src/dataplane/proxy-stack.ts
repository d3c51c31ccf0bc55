import { ChallengeTokens } from '../certs/acme-issuer.js';
import { bundlePem, parseBundle, type Certificate } from '../certs/certificate.js';
import { edgeHook } from '../certs/edge.js';
import { startHttpsListener, type HttpsListener } from '../certs/https-listener.js';
import { makeSelfSigned } from '../certs/self-signed.js';
import { SessionTickets } from '../certs/session-tickets.js';
import { TlsIndex } from '../certs/tls-index.js';
import { startProxy } from '../proxy/proxy-server.js';
import type { OpenByApp } from '../proxy/open-exchanges.js';
import type { AccessEntry, ProxySettings, RouteControl } from '../proxy/types.js';
import type { AcmeEntry, TlsMessage } from './protocol.js';

/** Where one process serves the proxy; what can cross a worker's IPC channel. */
export interface StackListen {
  host: string;
  httpPort: number;
  /** null: no HTTPS listener. */
  httpsPort: number | null;
  /** Share the ports with the other proxy workers' listeners (SO_REUSEPORT). */
  reusePort?: boolean;
}

/** What a proxy stack starts from: a new worker gets all of it before it listens. */
export interface StackState {
  settings: ProxySettings | null;
  tls: TlsMessage | null;
  /** Session-ticket keys (base64, 48 bytes) shared by every worker's HTTPS listener; null: this stack makes its own. */
  ticketKeys: string | null;
  tokens: Array<[string, NonNullable<AcmeEntry>]>;
}

export interface ProxyStack {
  port: number;
  httpsPort: number | null;
  routes: RouteControl;
  configure(settings: ProxySettings): void;
  tls(msg: TlsMessage): void;
  acmeToken(token: string, entry: AcmeEntry): void;
  /** Client connections open now, HTTP and HTTPS. */
  connections(): number;
  /** Requests and WebSockets open now per app, HTTP and HTTPS (both hand their traffic to the one proxy). */
  open(): OpenByApp;
  close(): Promise<void>;
}

/**
 * Everything one process serves of the proxy: the HTTP listener, the edge
 * (ACME answers, redirects to HTTPS) and the HTTPS listener, with the state
 * and routes (seed) applied before either listens. The data plane runs one,
 * or each proxy worker does.
 */
export async function startProxyStack(o: {
  listen: StackListen; state: StackState; onAccess: (e: AccessEntry) => void; seed?: (routes: RouteControl) => void;
}): Promise<ProxyStack> {
  const { listen, state } = o;
  const tokens = new ChallengeTokens();
  for (const [token, e] of state.tokens) tokens.add(token, e.host, e.keyAuthorization);
  // Until the server sends the certificates, a placeholder answers handshakes.
  const index = listen.httpsPort === null ? null
    : new TlsIndex(parseBundle(bundlePem(await makeSelfSigned(['localhost'])), 'the placeholder certificate'),
      new SessionTickets(state.ticketKeys === null ? undefined : Buffer.from(state.ticketKeys, 'base64')));
  // The server sends the whole set on every host change (one per app while it boots): a
  // certificate seen in the last set keeps its parsed object, so its TLS context is not made again.
  let parsed = new Map<string, Certificate>();
  const tls = (msg: TlsMessage) => {
    if (!index) return;
    const seen = new Map<string, Certificate>();
    const certs = msg.certs.map((c, i) => {
      const pem = bundlePem(c);
      const cert = parsed.get(pem) ?? seen.get(pem) ?? parseBundle(pem, `certificate ${i}`);
      seen.set(pem, cert);
      return cert;
    });
    parsed = seen;
    index.replace(new Map(msg.hosts.map(([h, i]) => [h, certs[i]!])), certs[msg.fallback]!, new Map(msg.policies));
  };
  if (state.tls) tls(state.tls);
  let https: HttpsListener | null = null;
  const proxy = await startProxy({
    host: listen.host, port: listen.httpPort, reusePort: listen.reusePort, ...(state.settings ?? {}), onAccess: o.onAccess, seed: o.seed,
    edge: index ? edgeHook({ index, tokens, httpsPort: () => https?.port ?? 443 }) : undefined,
  });
  if (index) https = await startHttpsListener({ host: listen.host, port: listen.httpsPort!, reusePort: listen.reusePort, index, proxy });
  return {
    port: proxy.port,
    httpsPort: https?.port ?? null,
    routes: proxy.routes,
    configure: (s) => proxy.configure(s),
    tls,
    acmeToken: (token, entry) => (entry ? tokens.add(token, entry.host, entry.keyAuthorization) : tokens.remove(token)),
    connections: () => proxy.connections() + (https?.connections() ?? 0),
    open: () => proxy.open(),
    close: async () => {
      await Promise.all([proxy.close(), https?.close()]);
    },
  };
}
