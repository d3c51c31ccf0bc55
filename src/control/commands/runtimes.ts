import { json, table, type CommandDef } from '../command-table.js';
import type { CommandServices } from './services.js';

const size = (bytes: number) => `${Math.round(bytes / (1024 * 1024))} MB`;

export function runtimeCommands(s: CommandServices): CommandDef[] {
  const { maestro } = s;
  return [
    {
      name: 'runtimes', usage: 'runtimes [--json]', summary: 'installed Node runtimes and the apps on each', access: 'admin', maxArgs: 0, flags: { json: 'bool' },
      run: ({ args, io }) => {
        const installed = maestro.runtimes.list();
        const onServer = maestro.apps.list().filter((a) => a.current !== null && maestro.runtimes.nodeOf(a).server).map((a) => a.name);
        if (args.flags.json) return json(io, { server: { node: process.versions.node, apps: onServer }, installed });
        io.stdout(table([
          ['NODE', 'NPM', 'SIZE', 'APPS', 'KEPT BUILDS OF'],
          ...installed.map((r) => [r.node, r.npm ?? "server's", size(r.bytes), r.apps.join(', ') || '-', r.builds.join(', ') || '-']),
          [`${process.versions.node} (server's own)`, "server's", '-', onServer.join(', ') || '-', '-'],
        ]));
      },
    },
    {
      name: 'runtimes:prune', usage: 'runtimes:prune', summary: 'remove Node runtimes no app or kept build uses', access: 'admin', maxArgs: 0,
      run: ({ io }) => {
        const removed = maestro.runtimes.prune();
        if (removed.length === 0) io.stdout('No unused runtimes: every installed Node runs an app or a kept build\n');
        for (const r of removed) io.stdout(`Removed Node ${r.node} (${size(r.bytes)})\n`);
      },
    },
  ];
}
