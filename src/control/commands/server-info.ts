import { json, table, type CommandDef } from '../command-table.js';
import type { CommandServices } from './services.js';

export function serverInfoCommands(s: CommandServices): CommandDef[] {
  return [
    {
      name: 'server:info', usage: 'server:info [--json]', summary: 'ports, SSH host key fingerprint, isolation', access: 'any', maxArgs: 0, flags: { json: 'bool' },
      run: ({ args, io }) => {
        const i = s.info();
        if (args.flags.json) return json(io, i);
        io.stdout(table([
          ['proxy:', `${i.host}:${i.httpPort}`],
          ['git over http:', `${i.host}:${i.gitHttpPort}`],
          ['ssh:', i.sshPort === null ? 'off' : `${i.host}:${i.sshPort}`],
          ['ssh host key:', i.sshFingerprint ?? '-'],
          ['dnode:', i.dnodePort === null ? 'off' : String(i.dnodePort)],
          ['dashboard:', i.dashboardPort === null ? 'off' : `${i.host}:${i.dashboardPort}`],
          ['base domain:', i.baseDomain],
          ['isolation:', i.isolation],
          ['data:', i.dataDir],
        ]));
      },
    },
  ];
}
