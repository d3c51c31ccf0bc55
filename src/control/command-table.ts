import type { Readable } from 'node:stream';
import { parseArgs as parseArgv } from 'node:util';

import { canReach, type Caller, type CommandIO, type Dispatch } from './types.js';
import { ErrorCode, UserError } from '../errors.js';

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

/**
 * A command's arguments by its flag spec, with node:util's parser. Its tokens are
 * checked here (strict mode's errors name no usage). A one-letter flag is also its
 * own short form (`-n 5`, `-f`); a bool flag takes no value: `--json=false` is
 * refused rather than read as on.
 */
export function parseArgs(argv: string[], spec: Record<string, FlagKind>, usage: string): ParsedArgs {
  const options = Object.fromEntries(Object.entries(spec).map(([name, kind]) => [name, {
    type: kind === 'bool' ? 'boolean' as const : 'string' as const,
    ...(name.length === 1 ? { short: name } : {}),
  }]));
  const { tokens } = parseArgv({ args: argv, options, strict: false, allowPositionals: true, tokens: true });
  const positional: string[] = [];
  const flags: ParsedArgs['flags'] = {};
  for (const token of tokens) {
    if (token.kind === 'positional') positional.push(token.value);
    if (token.kind !== 'option') continue;
    const arg = argv[token.index]!;
    const kind = Object.hasOwn(spec, token.name) ? spec[token.name] : undefined;
    if (!kind) throw new UserError(`unknown option '${arg}': usage: ${usage}`);
    if (kind === 'bool') {
      if (token.inlineValue) throw new UserError(`option '${token.rawName}' takes no value: give '${token.rawName}' for on, leave it out for off (not '${arg}'): usage: ${usage}`);
      flags[token.name] = true;
      continue;
    }
    if (token.value === undefined) throw new UserError(`option '${arg}' needs a value: usage: ${usage}`);
    if (kind === 'list') flags[token.name] = [...((flags[token.name] as string[] | undefined) ?? []), token.value];
    else flags[token.name] = token.value;
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
        throw new UserError(`'${name}' needs an admin key: this key may only use its own apps`, ErrorCode.Forbidden);
      }
      const args = parseArgs(rest, cmd.flags ?? {}, cmd.usage);
      if (args.positional.length < (cmd.minArgs ?? 0) || args.positional.length > (cmd.maxArgs ?? Infinity)) {
        throw new UserError(`wrong number of arguments: usage: platformx ${cmd.usage}`);
      }
      // An app outside the caller's scope answers exactly as one that does not exist.
      if (cmd.access === 'app' && !canReach(caller, args.positional[0]!)) {
        throw new UserError(`app '${args.positional[0]}' does not exist`, ErrorCode.NotFound);
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
