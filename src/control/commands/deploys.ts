import { resolveRevision } from '../../maestro/checkout.js';

import { json, table, type CommandDef } from '../command-table.js';
import { startingProcesses, toStdout, type CommandServices } from './services.js';
import { UserError } from '../../errors.js';

export function uptime(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s`;
  return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
}

export function deployCommands(s: CommandServices): CommandDef[] {
  const { maestro } = s;
  return [
    {
      name: 'ps', usage: 'ps APP [--json]', summary: "show an app's processes", access: 'app', minArgs: 1, maxArgs: 1, flags: { json: 'bool' },
      run: ({ args, io }) => {
        const app = maestro.apps.get(args.positional[0]!);
        const fleet = maestro.pipeline.liveFleet(app.name);
        const release = fleet ? maestro.releases.get(app, fleet.release) : undefined;
        const rows = (fleet?.processes ?? []).map((p) => ({
          process: p.name, release: `v${p.release}`, commit: release?.commit?.slice(0, 7) ?? null,
          pid: p.pid, port: p.port, state: p.describe(), restarts: p.restarts, node: maestro.runtimes.nodeOf(app, p.release).version,
          uptimeSeconds: p.pid ? Math.floor((Date.now() - p.startedAt) / 1000) : 0,
        }));
        if (args.flags.json) return json(io, rows);
        if (rows.length === 0) {
          io.stdout(`${app.name} has no running processes${app.current === null ? ' (nothing deployed yet)' : ''}\n`);
          return;
        }
        io.stdout(table([
          ['PROCESS', 'RELEASE', 'COMMIT', 'NODE', 'PID', 'PORT', 'STATE', 'RESTARTS', 'UPTIME'],
          ...rows.map((r) => [r.process, r.release, r.commit ?? '-', r.node, String(r.pid ?? '-'), String(r.port ?? '-'), r.state, String(r.restarts), uptime(r.uptimeSeconds * 1000)]),
        ]));
      },
    },
    {
      name: 'restart', usage: 'restart APP', summary: 'restart the current release with zero downtime', access: 'app', minArgs: 1, maxArgs: 1,
      run: async ({ args, io }) => {
        await startingProcesses(args.positional[0]!, maestro.restart(args.positional[0]!, [toStdout(io)]));
      },
    },
    {
      name: 'deploy', usage: 'deploy APP [REV]', summary: 'deploy the current or a given commit again, without a push', access: 'app', minArgs: 1, maxArgs: 2,
      run: async ({ args, io, caller }) => {
        const name = args.positional[0]!;
        const app = maestro.apps.get(name);
        const rev = args.positional[1] ?? maestro.releases.current(app)?.commit ?? 'main';
        const commit = await resolveRevision(maestro.repoPath(name), rev).catch((e: Error) => {
          throw new UserError(e.message);
        });
        try {
          const version = await maestro.deploy(name, {
            source: 'deploy', commit, description: `deploy ${commit.slice(0, 7)}`, by: caller.name,
            fill: maestro.gitSource(name, commit),
          }, [toStdout(io)]);
          io.stdout(`Deployed v${version}\n`);
        } catch (err) {
          io.stderr(`error: deploy failed: ${(err as Error).message}; the previous release keeps serving\n`);
          return 1;
        }
      },
    },
  ];
}

