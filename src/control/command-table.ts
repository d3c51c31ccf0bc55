import type { Readable } from 'node:stream';
import { UserError } from '../state/names.js';
import { canReach, type Caller, type CommandIO, type Dispatch } from './types.js';

export type FlagKind = 'bool' | 'string' | 'list';

export interface ParsedArgs {
  positional: string[];
  flags: Record<string, boolean | string | string[] | undefined>;
}

export interface CommandContext {
  args: ParsedArgs;
  caller: Caller;
  io: CommandIO;
}

/** One CLI command, Dokku-plugin style: every command has the same shape. */
export interface CommandDef {
  name: string;
  usage: string;
  summary: string;
  flags?: Record<string, FlagKind>;
  /** 'admin': admin keys and the local CLI only; 'app': the first argument is an app the caller must reach. */
  access: 'admin' | 'app' | 'any';
  /** Fewest positional arguments; fewer is a usage error. */
  minArgs?: number;
  maxArgs?: number;
  run(ctx: CommandContext): Promise<number | void> | number | void;
}

export function parseArgs(argv: string[], spec: Record<string, FlagKind>, usage: string): ParsedArgs {
  const positional: string[] = [];
  const flags: ParsedArgs['flags'] = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positional.push(arg);
      continue;
    }
    const body = arg.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq >= 0 ? body.slice(0, eq) : body;
    const kind = spec[name];
    if (!kind) throw new UserError(`unknown option '${arg}': usage: ${usage}`);
    if (kind === 'bool') {
      flags[name] = true;
      continue;
    }
    const value = eq >= 0 ? body.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new UserError(`option '${arg}' needs a value: usage: ${usage}`);
    if (kind === 'list') flags[name] = [...((flags[name] as string[] | undefined) ?? []), value];
    else flags[name] = value;
  }
  return { positional, flags };
}

/** Builds the dispatcher shared by the local CLI, SSH commands and tests. */
export function createDispatcher(commands: CommandDef[]): Dispatch {
  const byName = new Map(commands.map((c) => [c.name, c]));
  return async (argv: string[], caller: Caller, io: CommandIO): Promise<number> => {
    const [name, ...rest] = argv;
    if (!name || name === 'help' || name === '--help') {
      const visible = commands.filter((c) => caller.admin || c.access !== 'admin');
      io.stdout(`Usage: platformx COMMAND [ARGS]\n\n${visible.map((c) => `  ${c.usage.padEnd(48)} ${c.summary}`).join('\n')}\n`);
      return 0;
    }
    const cmd = byName.get(name);
    if (!cmd) {
      io.stderr(`error: unknown command '${name}': run 'platformx help' for the list\n`);
      return 1;
    }
    try {
      if (cmd.access === 'admin' && !caller.admin) {
        throw new UserError(`'${name}' needs an admin key: this key may only use its own apps`);
      }
      const args = parseArgs(rest, cmd.flags ?? {}, cmd.usage);
      if (args.positional.length < (cmd.minArgs ?? 0) || args.positional.length > (cmd.maxArgs ?? Infinity)) {
        throw new UserError(`wrong number of arguments: usage: platformx ${cmd.usage}`);
      }
      // An app outside the caller's scope answers exactly as one that does not exist.
      if (cmd.access === 'app' && !canReach(caller, args.positional[0]!)) {
        throw new UserError(`app '${args.positional[0]}' does not exist`);
      }
      return (await cmd.run({ args, caller, io })) ?? 0;
    } catch (err) {
      if (err instanceof UserError) {
        io.stderr(`error: ${err.message}\n`);
        return 1;
      }
      io.stderr(`error: internal error in '${name}': ${(err as Error).message}\n`);
      return 2;
    }
  };
}

/** Plain aligned columns, as `heroku apps` prints them. */
export function table(rows: string[][]): string {
  if (rows.length === 0) return '';
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}

export function json(io: CommandIO, value: unknown): void {
  io.stdout(JSON.stringify(value, null, 2) + '\n');
}

/** A command's whole stdin as text; more than maxBytes is a UserError saying tooLong. */
export async function readInput(stream: Readable | undefined, maxBytes: number, tooLong: string): Promise<string> {
  if (!stream) return '';
  let text = '';
  for await (const chunk of stream) {
    text += typeof chunk === 'string' ? chunk : (chunk as Buffer).toString('utf8');
    if (text.length > maxBytes) throw new UserError(tooLong);
  }
  return text;
}
