import net from 'node:net';
import type { Cidr } from './network-policy-cidr.js';

/**
 * Ranges no app may reach whatever the operator adds: link-local, where cloud
 * metadata services hand out the machine's credentials (169.254.169.254 on
 * AWS, GCP, Azure, …), and AWS's IPv6 metadata address.
 */
export const ALWAYS_REFUSED: readonly Cidr[] = [
  { family: 4, text: '169.254.0.0/16' },
  { family: 6, text: 'fe80::/10' },
  { family: 6, text: 'fd00:ec2::254/128' },
];

/** Everything the table says, as data: rendered by rulesetScript, shown by server:info. */
export interface NetworkRules {
  /** nft table name (family inet): `platformx_<scope>`. */
  table: string;
  /** The cgroup v2 group every app process joins, as nft's `socket cgroupv2` names it. */
  cgroup: { path: string; level: number };
  /** Loopback ports every app may reach: the proxy's public HTTP (and HTTPS) ports. */
  publicPorts: number[];
  /** Resolver addresses (from /etc/resolv.conf): port 53 there is allowed even inside a refused range. */
  dns: string[];
  /** Ranges refused beyond loopback: ALWAYS_REFUSED, then each --deny-egress. */
  refused: readonly Cidr[];
}

/** The set of `uid . port` pairs an app may reach on loopback: its own processes' ports and its services. */
export const OWN_PORTS_SET = 'own_ports';

const elements = (items: readonly string[]) => (items.length ? ` elements = { ${items.join(', ')} };` : '');

/**
 * One nft transaction that replaces the table (if any) with the policy: the
 * `table` line makes the delete safe when there is none, and the whole script
 * applies atomically, so no packet ever sees a half-built policy or none.
 *
 * Only sockets made inside the server's app cgroup are looked at (so a second
 * server on the machine, whose apps may hold the same uids, has its own). A TCP
 * packet that is not a bare SYN belongs to a connection already allowed, or
 * accepted from the proxy, so it passes without connection tracking.
 */
export function rulesetScript(r: NetworkRules): string {
  const t = `inet ${r.table}`;
  const dns4 = r.dns.filter((a) => !a.includes(':'));
  const dns6 = r.dns.filter((a) => a.includes(':'));
  const refused4 = r.refused.filter((c) => c.family === 4).map((c) => c.text);
  const refused6 = r.refused.filter((c) => c.family === 6).map((c) => c.text);
  return `table ${t}
delete table ${t}
table ${t} {
  set public_ports { type inet_service;${elements(r.publicPorts.map(String))} }
  set ${OWN_PORTS_SET} { type uid . inet_service; }
  set dns4 { type ipv4_addr;${elements(dns4)} }
  set dns6 { type ipv6_addr;${elements(dns6)} }
  set refused4 { type ipv4_addr; flags interval; auto-merge;${elements(refused4)} }
  set refused6 { type ipv6_addr; flags interval; auto-merge;${elements(refused6)} }
  chain output {
    type filter hook output priority filter; policy accept;
    socket cgroupv2 level ${r.cgroup.level} "${r.cgroup.path}" jump app
  }
  chain app {
    tcp flags & (syn | ack) != syn accept comment "packets of connections already made or accepted"
    ip daddr @dns4 meta l4proto { tcp, udp } th dport 53 accept comment "DNS"
    ip6 daddr @dns6 meta l4proto { tcp, udp } th dport 53 accept comment "DNS"
    oif lo jump loopback comment "this machine, by any of its addresses"
    ip daddr @refused4 jump refuse
    ip6 daddr @refused6 jump refuse
  }
  chain loopback {
    tcp dport @public_ports accept comment "the proxy"
    meta skuid . tcp dport @${OWN_PORTS_SET} accept comment "the app's own ports and services"
    jump refuse
  }
  chain refuse {
    meta l4proto tcp reject with tcp reset
    reject
  }
}
`;
}

/** Allows or withdraws one `uid . port` pair. */
export function ownPortCommand(table: string, op: 'add' | 'delete', uid: number, port: number): string {
  return `${op} element inet ${table} ${OWN_PORTS_SET} { ${uid} . ${port} }`;
}

/** Nameserver addresses of a resolv.conf (zone suffixes dropped: a rule matches the address alone). */
export function resolvers(resolvConf: string): string[] {
  const found: string[] = [];
  for (const line of resolvConf.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    const address = m?.[1]?.split('%')[0];
    if (address && net.isIP(address) && !found.includes(address)) found.push(address);
  }
  return found;
}
