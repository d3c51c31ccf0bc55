import type { NetworkSummary } from '../../apprunner/network-policy.js';
import type { ProxyWorkerInfo } from '../../dataplane/protocol.js';
import { json, table, type CommandDef } from '../command-table.js';
import { uptime } from './deploys.js';
import type { CommandServices } from './services.js';

function networkRows(n: NetworkSummary): string[][] {
  if (n.mode === 'shared') return [['network:', `shared (${n.reason})`]];
  return [
    ['network:', `isolated (nftables ${n.table})`],
    ['  apps reach:', `the internet; on this machine only the proxy (port ${n.publicPorts.join(', ')}), their own ports${n.dns.length ? `, DNS at ${n.dns.join(', ')}` : ''}`],
    ['  refused:', `every other port on this machine (IPv4 and IPv6), ${n.refused.join(', ')}`],
  ];
}

export function serverInfoCommands(s: CommandServices): CommandDef[] {
  return [
    {
      name: 'server:info', usage: 'server:info [--json]', summary: 'ports, SSH host key fingerprint, isolation, network policy, proxy workers', access: 'any', maxArgs: 0, flags: { json: 'bool' },
      run: async ({ args, io }) => {
        const i = s.info();
        const proxyWorkers = await s.proxyWorkers();
        if (args.flags.json) return json(io, { ...i, proxyWorkers });
        io.stdout(table([
          ['proxy:', `${i.host}:${i.httpPort}`],
          ['https:', i.httpsPort === null ? 'off' : `${i.host}:${i.httpsPort}`],
          ['git over http:', `${i.host}:${i.gitHttpPort}`],
          ['ssh:', i.sshPort === null ? 'off' : `${i.host}:${i.sshPort}`],
          ['ssh host key:', i.sshFingerprint ?? '-'],
          ['dnode:', i.dnodePort === null ? 'off' : String(i.dnodePort)],
          ['dashboard:', i.dashboardPort === null ? 'off' : `${i.host}:${i.dashboardPort}`],
          ['base domain:', i.baseDomain],
          ['isolation:', i.isolation],
          ...networkRows(i.network),
          ['data:', i.dataDir],
        ]) + '\n' + workersTable(proxyWorkers));
      },
    },
  ];
}

/** `ps`-style: one line per process serving the proxy's port. */
function workersTable(workers: ProxyWorkerInfo[]): string {
  const n = (x: number | null) => (x === null ? '-' : String(x));
  return table([
    ['PROXY WORKER', 'PID', 'STATE', 'CONNECTIONS', 'REQUESTS', 'RESTARTS', 'UPTIME'],
    ...workers.map((w) => [
      w.slot === 0 ? 'in data plane' : `worker.${w.slot}`, n(w.pid), w.state, n(w.connections), n(w.requests), String(w.restarts),
      w.startedAt === null ? '-' : uptime(Date.now() - w.startedAt),
    ]),
  ]);
}
