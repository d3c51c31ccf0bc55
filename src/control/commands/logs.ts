
import { formatLine, type LogLine } from '../../logs/app-log.js';
import type { CommandDef } from '../command-table.js';
import type { CommandServices } from './services.js';
import { UserError } from '../../errors.js';

const SOURCES: Record<string, (tag: string) => boolean> = {
  app: (tag) => tag.startsWith('app['),
  platform: (tag) => tag.startsWith('platform[') || tag.startsWith('router'),
};

export function logsCommands(s: CommandServices): CommandDef[] {
  return [
    {
      name: 'logs', usage: 'logs APP [-n N] [-f] [--source app|platform]', summary: "show (and follow) an app's logs",
      access: 'app', minArgs: 1, maxArgs: 1, flags: { n: 'string', num: 'string', f: 'bool', tail: 'bool', source: 'string' },
      run: async ({ args, io }) => {
        const app = s.maestro.apps.get(args.positional[0]!);
        const nText = (args.flags.n ?? args.flags.num ?? '100') as string;
        const n = Number(nText);
        if (!Number.isInteger(n) || n < 0) throw new UserError(`-n takes a whole number of lines, not '${nText}'`);
        const source = args.flags.source as string | undefined;
        if (source !== undefined && !SOURCES[source]) throw new UserError(`--source takes 'app' or 'platform', not '${source}'`);
        const keep = source ? SOURCES[source]! : () => true;
        const log = s.logs.get(app.name);
        const tagOf = (line: string) => line.split(' ', 2)[1] ?? '';
        for (const line of await log.tail(n, (l) => keep(tagOf(l)))) io.stdout(line + '\n');
        if (!args.flags.f && !args.flags.tail) return;
        // Follow until the client goes away.
        await new Promise<void>((resolve) => {
          const onLine = (l: LogLine) => {
            if (keep(l.tag)) io.stdout(formatLine(l) + '\n');
          };
          log.on('line', onLine);
          const stop = () => {
            log.off('line', onLine);
            resolve();
          };
          if (io.signal.aborted) stop();
          else io.signal.addEventListener('abort', stop, { once: true });
        });
      },
    },
  ];
}
