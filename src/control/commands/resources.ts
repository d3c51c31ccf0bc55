
import type { Limits } from '../../state/types.js';
import { json, table, type CommandDef } from '../command-table.js';
import { startingProcesses, toStdout, type CommandServices } from './services.js';
import { UserError } from '../../errors.js';

const MEMORY = /^(\d+)([MG])$/i;

/** Parses `memory=512M pids=256 nofile=4096` over the current limits. */
export function parseLimits(pairs: string[], current: Limits): Limits {
  const next = { ...current };
  for (const pair of pairs) {
    const [key, value = ''] = pair.split('=', 2);
    if (key === 'memory') {
      const m = MEMORY.exec(value);
      const mb = m ? Number(m[1]) * (m[2]!.toUpperCase() === 'G' ? 1024 : 1) : NaN;
      if (!(mb >= 16 && mb <= 65536)) throw new UserError(`memory=${value} is not a size from 16M to 64G (like memory=512M)`);
      next.memoryMb = mb;
    } else if (key === 'pids' || key === 'nofile') {
      const n = Number(value);
      const [min, max] = key === 'pids' ? [8, 32768] : [64, 1048576];
      if (!Number.isInteger(n) || n < min || n > max) throw new UserError(`${key}=${value} is not a whole number from ${min} to ${max}`);
      if (key === 'pids') next.pids = n;
      else next.nofile = n;
    } else {
      throw new UserError(`unknown limit '${key}': use memory=512M, pids=256 or nofile=4096`);
    }
  }
  return next;
}

export function resourceCommands(s: CommandServices): CommandDef[] {
  const { maestro } = s;
  return [
    {
      name: 'resources', usage: 'resources APP [--json]', summary: "show an app's limits", access: 'app', minArgs: 1, maxArgs: 1, flags: { json: 'bool' },
      run: ({ args, io }) => {
        const l = maestro.apps.get(args.positional[0]!).limits;
        if (args.flags.json) return json(io, { ...l, isolation: s.info().isolation });
        io.stdout(table([['memory:', `${l.memoryMb}M`], ['pids:', String(l.pids)], ['nofile:', String(l.nofile)], ['isolation:', s.info().isolation]]));
      },
    },
    {
      name: 'resources:set', usage: 'resources:set APP memory=512M pids=256 nofile=4096', summary: 'change limits (zero-downtime restart)', access: 'admin', minArgs: 2,
      run: async ({ args, io }) => {
        const name = args.positional[0]!;
        const limits = parseLimits(args.positional.slice(1), maestro.apps.get(name).limits);
        await startingProcesses(name, maestro.setLimits(name, limits, [toStdout(io)]));
        io.stdout(`Limits of ${name}: memory=${limits.memoryMb}M pids=${limits.pids} nofile=${limits.nofile}\n`);
      },
    },
  ];
}
