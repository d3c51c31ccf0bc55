
import { json, table, type CommandDef } from '../command-table.js';
import type { CommandServices } from './services.js';
import { UserError } from '../../errors.js';

export function appsCommands(s: CommandServices): CommandDef[] {
  const { maestro } = s;
  return [
    {
      name: 'apps:create', usage: 'apps:create APP [--domain HOST]…', summary: 'create an app and its git repository',
      access: 'admin', minArgs: 1, maxArgs: 1, flags: { domain: 'list' },
      run: async ({ args, io }) => {
        const app = await maestro.apps.create(args.positional[0]!, (args.flags.domain as string[] | undefined) ?? []);
        const info = s.info();
        io.stdout(`Created ${app.name}: http://${maestro.apps.hosts(app).join(', http://')}\n`);
        io.stdout(`Deploy with: git push http://x:TOKEN@${info.host === '0.0.0.0' ? '127.0.0.1' : info.host}:${info.gitHttpPort}/${app.name}.git main\n`);
        io.stdout(`(get a TOKEN with 'platformx tokens:create ${app.name}')\n`);
      },
    },
    {
      name: 'apps:list', usage: 'apps:list [--json]', summary: 'list apps', access: 'any', maxArgs: 0, flags: { json: 'bool' },
      run: ({ args, io, caller }) => {
        const apps = maestro.apps.list().filter((a) => caller.admin || caller.apps.includes(a.name));
        const rows = apps.map((a) => ({
          name: a.name, hosts: maestro.apps.hosts(a), release: a.current === null ? null : `v${a.current}`,
          processes: maestro.pipeline.liveFleet(a.name)?.processes.length ?? 0,
        }));
        if (args.flags.json) return json(io, rows);
        io.stdout(table([['NAME', 'RELEASE', 'PROCESSES', 'HOSTS'], ...rows.map((r) => [r.name, r.release ?? '-', String(r.processes), r.hosts.join(',')])]));
      },
    },
    {
      name: 'apps:info', usage: 'apps:info APP [--json]', summary: 'show an app', access: 'app', minArgs: 1, maxArgs: 1, flags: { json: 'bool' },
      run: ({ args, io }) => {
        const a = maestro.apps.get(args.positional[0]!);
        const current = maestro.releases.current(a);
        const info = {
          name: a.name,
          hosts: maestro.apps.hosts(a),
          domains: a.domains,
          release: current ? `v${current.version}` : null,
          commit: current?.commit ?? null,
          releases: maestro.releases.list(a.name).length,
          formation: a.formation,
          node: maestro.runtimes.nodeOf(a),
          configKeys: Object.keys(a.config).length,
          isolation: s.info().isolation,
          network: s.info().network.mode,
          uid: a.uid,
          limits: a.limits,
          gitUrl: `http://HOST:${s.info().gitHttpPort}/${a.name}.git`,
          createdAt: a.createdAt,
        };
        if (args.flags.json) return json(io, info);
        io.stdout(table([
          ['name:', info.name],
          ['hosts:', info.hosts.join(', ')],
          ['release:', info.release ?? 'none yet'],
          ['commit:', info.commit ?? '-'],
          ['formation:', Object.entries(info.formation).map(([t, n]) => `${t}=${n}`).join(' ')],
          ['node:', `${info.node.version}${info.node.server ? " (the server's own)" : ''}`],
          ['isolation:', info.isolation],
          ['network:', info.network],
          ['uid:', info.uid === null ? '-' : String(info.uid)],
          ['limits:', `memory=${a.limits.memoryMb}M pids=${a.limits.pids} nofile=${a.limits.nofile}`],
          ['git:', info.gitUrl],
          ['created:', info.createdAt],
        ]));
      },
    },
    {
      name: 'apps:destroy', usage: 'apps:destroy APP --confirm APP', summary: 'stop and delete an app, its repo and releases',
      access: 'admin', minArgs: 1, maxArgs: 1, flags: { confirm: 'string' },
      run: async ({ args, io }) => {
        const name = args.positional[0]!;
        maestro.apps.get(name);
        if (args.flags.confirm !== name) throw new UserError(`destroying '${name}' deletes its code and releases: repeat the name with --confirm ${name}`);
        await maestro.destroy(name);
        io.stdout(`Destroyed ${name}\n`);
      },
    },
    {
      name: 'domains:add', usage: 'domains:add APP HOST', summary: 'route a hostname to an app', access: 'admin', minArgs: 2, maxArgs: 2,
      run: ({ args, io }) => {
        const h = maestro.apps.addDomain(args.positional[0]!, args.positional[1]!);
        io.stdout(`Added ${h} to ${args.positional[0]}\n`);
      },
    },
    {
      name: 'domains:remove', usage: 'domains:remove APP HOST', summary: 'stop routing a hostname', access: 'admin', minArgs: 2, maxArgs: 2,
      run: ({ args, io }) => {
        maestro.apps.removeDomain(args.positional[0]!, args.positional[1]!);
        io.stdout(`Removed ${args.positional[1]!.toLowerCase()} from ${args.positional[0]}\n`);
      },
    },
    {
      name: 'tokens:create', usage: 'tokens:create APP', summary: 'make a deploy token (shown once)', access: 'admin', minArgs: 1, maxArgs: 1,
      run: ({ args, io }) => {
        const t = maestro.apps.createToken(args.positional[0]!);
        io.stdout(`${t.secret}\n`);
        io.stderr(`Token ${t.id} for ${args.positional[0]}: shown once, keep it secret. Push with http://x:TOKEN@HOST:${s.info().gitHttpPort}/${args.positional[0]}.git\n`);
      },
    },
    {
      name: 'tokens:list', usage: 'tokens:list APP [--json]', summary: "list an app's deploy tokens", access: 'admin', minArgs: 1, maxArgs: 1, flags: { json: 'bool' },
      run: ({ args, io }) => {
        const tokens = maestro.apps.get(args.positional[0]!).tokens.map((t) => ({ id: t.id, createdAt: t.createdAt, lastUsed: t.lastUsed }));
        if (args.flags.json) return json(io, tokens);
        io.stdout(table([['ID', 'CREATED', 'LAST USED'], ...tokens.map((t) => [t.id, t.createdAt, t.lastUsed ?? 'never'])]));
      },
    },
    {
      name: 'tokens:revoke', usage: 'tokens:revoke APP TOKEN_ID', summary: 'revoke a deploy token', access: 'admin', minArgs: 2, maxArgs: 2,
      run: ({ args, io }) => {
        maestro.apps.revokeToken(args.positional[0]!, args.positional[1]!);
        io.stdout(`Revoked ${args.positional[1]}\n`);
      },
    },
  ];
}
