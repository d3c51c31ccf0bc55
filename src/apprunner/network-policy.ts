import fs from 'node:fs';
import path from 'node:path';
import type { ProcessCgroups } from './cgroup-limits.js';
import type { Cidr } from './network-policy-cidr.js';
import { networkCgroup, type NetworkCgroup } from './network-policy-cgroup.js';
import { nft } from './network-policy-nft.js';
import { ALWAYS_REFUSED, ownPortCommand, resolvers, rulesetScript, type NetworkRules } from './network-policy-rules.js';
import { checkRefusal } from './network-policy-check.js';
import type { RunSpec } from './types.js';

export type NetworkMode = 'isolated' | 'shared';

/** Platform services an app may have of its own on loopback (more to come). */
export type PlatformService = 'couchdb-gateway';

/** What server:info shows. */
export interface NetworkSummary {
  mode: NetworkMode;
  /** Why apps share the host's network, when they do. */
  reason: string | null;
  /** `inet platformx_<scope>` while the policy is in force. */
  table: string | null;
  /** The cgroup v2 group every app process and build step joins (the rules pick their sockets by it). */
  cgroup: string | null;
  /** Loopback ports every app may reach (the proxy's). */
  publicPorts: number[];
  dns: string[];
  /** Ranges refused beyond loopback. */
  refused: string[];
}

/** Access to one loopback port for one app, until revoked. */
export interface PortGrant {
  revoke(): void;
}

/**
 * The network each app process and build step gets. The sandbox keeps the
 * host's network namespace (an app must listen where the proxy reaches it);
 * this decides what its sockets may connect to.
 */
export interface NetworkPolicy {
  readonly summary: NetworkSummary;
  /**
   * Puts one process under the policy: `group` (its cgroups, joined before it
   * execs) gains the app cgroup, and while it runs its app may reach
   * `spec.port`. Removing the returned groups withdraws that port.
   */
  confine(spec: RunSpec, group: ProcessCgroups): ProcessCgroups;
  /** Lets the processes of the app with `uid` reach its own `service` on loopback `port` until revoked. */
  grantService(uid: number, service: PlatformService, port: number): PortGrant;
  /** The server stops (its apps already stopped): the rules and the group go. */
  close(): Promise<void>;
}

const NO_GRANT: PortGrant = { revoke: () => {} };

/** No policy: apps reach whatever the host's network reaches. */
export function sharedNetwork(reason: string): NetworkPolicy {
  return {
    summary: { mode: 'shared', reason, table: null, cgroup: null, publicPorts: [], dns: [], refused: [] },
    confine: (_spec, group) => group,
    grantService: () => NO_GRANT,
    close: async () => {},
  };
}

/**
 * The policy another process of the same server loaded (the data plane, which
 * outlives server restarts, owns the table): the server's own build steps join
 * its app cgroup. Ports are granted only where the table is owned.
 */
export function joinNetworkPolicy(summary: NetworkSummary): NetworkPolicy {
  const { cgroup } = summary;
  if (summary.mode === 'shared' || cgroup === null) return sharedNetwork(summary.reason ?? 'no network policy');
  const owned = (): never => {
    throw new Error('app ports are granted by the process that owns the network policy (the data plane)');
  };
  return {
    summary,
    confine: (spec, group) => {
      if (spec.port !== undefined) owned();
      return { ...group, procs: [...group.procs, path.join(cgroup, 'cgroup.procs')] };
    },
    grantService: owned,
    close: async () => { /* the owner removes the table */ },
  };
}

export interface NetworkPolicyOptions {
  /** From the data folder (as cgroup-limits.ts scopes its groups), so two servers' tables differ. */
  scope: string;
  /** The proxy's public ports. */
  publicPorts: number[];
  /** --deny-egress ranges. */
  denyEgress: readonly Cidr[];
  log: (line: string) => void;
}

/**
 * Loads the policy (replacing a table a killed server left) and checks it
 * refuses; otherwise returns the shared network with the reason, leaving no
 * table behind. Called before any app starts.
 */
export async function installNetworkPolicy(o: NetworkPolicyOptions): Promise<NetworkPolicy> {
  const table = `platformx_${o.scope}`;
  let cgroup: NetworkCgroup | null = null;
  let rules: NetworkRules;
  let handle: number;
  try {
    cgroup = networkCgroup(`platformx-${o.scope}-net`);
    let resolvConf = '';
    try {
      resolvConf = fs.readFileSync('/etc/resolv.conf', 'utf8');
    } catch {
      /* no resolver configured: no DNS exception needed */
    }
    rules = {
      table, cgroup: { path: cgroup.nftPath, level: cgroup.level }, publicPorts: o.publicPorts,
      dns: resolvers(resolvConf), refused: [...ALWAYS_REFUSED, ...o.denyEgress],
    };
    // The table's handle, from nft's echo: at stop only this very table goes, never a successor's.
    const echoed = [...(await nft(rulesetScript(rules), ['--echo', '--handle'])).matchAll(/^add table inet \S+ # handle (\d+)$/gm)];
    handle = Number(echoed.at(-1)?.[1]);
    if (!Number.isInteger(handle)) throw new Error('nft did not say which table it made');
  } catch (err) {
    await nft(`delete table inet ${table}`).catch(() => { /* there was none */ });
    if (cgroup) await removeGroup(cgroup.dir);
    return sharedNetwork((err as Error).message);
  }
  const failed = await checkRefusal(cgroup.procs);
  if (failed) {
    await nft(`delete table inet ${table}`).catch(() => {});
    await removeGroup(cgroup.dir);
    return sharedNetwork(failed);
  }
  return new NftablesPolicy(rules, handle, cgroup, o.log);
}

/**
 * Removes the app cgroup once it is empty: the last app processes may take a
 * moment to die after their monitors were killed (2 s at most). Awaited, since
 * the server exits right after it stops.
 */
async function removeGroup(dir: string): Promise<void> {
  for (let attempt = 0; attempt < 40; attempt++) {
    try {
      fs.rmdirSync(dir);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * The policy as an nftables table (see rulesetScript). Each app's own ports
 * are `uid . port` elements, added when a process starts and removed when it
 * exits, in batches through one nft call at a time.
 */
class NftablesPolicy implements NetworkPolicy {
  readonly summary: NetworkSummary;
  /** How many live grants hold each `uid . port` pair (two processes may share one, in turn). */
  private readonly holders = new Map<string, number>();
  private pending: string[] = [];
  private flushing: Promise<void> | null = null;
  private closed = false;

  constructor(
    private readonly rules: NetworkRules,
    private readonly handle: number,
    private readonly cgroup: NetworkCgroup,
    private readonly log: (line: string) => void,
  ) {
    this.summary = {
      mode: 'isolated', reason: null, table: `inet ${rules.table}`, cgroup: cgroup.dir, publicPorts: rules.publicPorts,
      dns: rules.dns, refused: rules.refused.map((c) => c.text),
    };
  }

  confine(spec: RunSpec, group: ProcessCgroups): ProcessCgroups {
    const grant = spec.uid !== null && spec.port !== undefined ? this.allow(spec.uid, spec.port) : NO_GRANT;
    return {
      ...group,
      procs: [...group.procs, this.cgroup.procs],
      remove: () => {
        group.remove();
        grant.revoke();
      },
    };
  }

  grantService(uid: number, _service: PlatformService, port: number): PortGrant {
    return this.allow(uid, port);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.flushing;
    await nft(`delete table inet handle ${this.handle}`).catch((err: Error) => this.log(`network: could not remove the rules: ${err.message}`));
    await removeGroup(this.cgroup.dir);
  }

  private allow(uid: number, port: number): PortGrant {
    const key = `${uid} . ${port}`;
    const n = this.holders.get(key) ?? 0;
    this.holders.set(key, n + 1);
    if (n === 0) this.update(ownPortCommand(this.rules.table, 'add', uid, port));
    let held = true;
    return {
      revoke: () => {
        if (!held) return;
        held = false;
        const left = (this.holders.get(key) ?? 1) - 1;
        if (left > 0) return void this.holders.set(key, left);
        this.holders.delete(key);
        this.update(ownPortCommand(this.rules.table, 'delete', uid, port));
      },
    };
  }

  /**
   * Queues a change; changes made while nft runs go together in the next call.
   * The add is queued before the process is spawned, so it lands long before
   * node has booted far enough to connect anywhere.
   */
  private update(command: string): void {
    if (this.closed) return;
    this.pending.push(command);
    this.flushing ??= this.flush();
  }

  private async flush(): Promise<void> {
    while (this.pending.length && !this.closed) {
      const batch = this.pending.splice(0);
      await nft(batch.join('\n') + '\n').catch((err: Error) => this.log(`network: could not update the app ports allowed: ${err.message}`));
    }
    this.flushing = null;
  }
}
