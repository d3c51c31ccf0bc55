import fs from 'node:fs';
import { checkConfigKey, checkSettableConfigKey } from '../../state/names.js';
import { json, table, type CommandDef } from '../command-table.js';
import { startingProcesses, toStdout, type CommandServices } from './services.js';
import { UserError } from '../../errors.js';

function parseVersion(text: string): number {
  const m = /^v?(\d+)$/.exec(text);
  if (!m) throw new UserError(`'${text}' is not a release: use the form v3`);
  return Number(m[1]);
}

/** An app's config as a map without a prototype: a key like 'toString' finds only what was set. */
function configMap(config: Record<string, string>): Record<string, string> {
  return Object.assign(Object.create(null) as Record<string, string>, config);
}

/** Characters that would break a one-variable-per-line listing or fool a terminal: controls, line and paragraph separators, bidi overrides. */
const UNPRINTABLE = /[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

/**
 * A value as bash reads it back, always on one line: bare when plain, else in
 * single quotes, and as $'…' with escapes when it holds an unprintable
 * character, so a newline cannot look like the start of another variable.
 */
function shellQuote(value: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(value)) return value;
  if (!UNPRINTABLE.test(value)) return `'${value.replaceAll("'", `'\\''`)}'`;
  const named: Record<string, string> = { '\n': '\\n', '\t': '\\t', '\r': '\\r', '\\': '\\\\', "'": "\\'" };
  const escaped = [...value].map((c) => {
    if (named[c]) return named[c];
    if (!UNPRINTABLE.test(c)) return c;
    const code = c.charCodeAt(0);
    return code < 0x80 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
  return `$'${escaped.join('')}'`;
}

export function releaseCommands(s: CommandServices): CommandDef[] {
  const { maestro } = s;
  return [
    {
      name: 'releases', usage: 'releases APP [--json]', summary: "list an app's releases", access: 'app', minArgs: 1, maxArgs: 1, flags: { json: 'bool' },
      run: ({ args, io }) => {
        const app = maestro.apps.get(args.positional[0]!);
        const rows = [...maestro.releases.list(app.name)].reverse().map((r) => ({
          version: `v${r.version}`, current: r.version === app.current, source: r.source, commit: r.commit?.slice(0, 7) ?? null,
          description: r.description, by: r.by, status: r.status, createdAt: r.createdAt,
        }));
        if (args.flags.json) return json(io, rows);
        io.stdout(table([['VERSION', 'STATUS', 'SOURCE', 'COMMIT', 'BY', 'CREATED', 'DESCRIPTION'],
          ...rows.map((r) => [`${r.version}${r.current ? '*' : ''}`, r.status, r.source, r.commit ?? '-', r.by, r.createdAt, r.description])]));
      },
    },
    {
      name: 'releases:output', usage: 'releases:output APP vN', summary: "a release's build and deploy log", access: 'app', minArgs: 2, maxArgs: 2,
      run: ({ args, io }) => {
        const app = maestro.apps.get(args.positional[0]!);
        const version = parseVersion(args.positional[1]!);
        if (!maestro.releases.get(app, version)) throw new UserError(`app '${app.name}' has no release v${version}`);
        try {
          io.stdout(fs.readFileSync(maestro.buildLogPath(app.name, version), 'utf8'));
        } catch {
          throw new UserError(`no output was recorded for v${version}`);
        }
      },
    },
    {
      name: 'rollback', usage: 'rollback APP [vN]', summary: 'switch back to an earlier release, without rebuilding', access: 'app', minArgs: 1, maxArgs: 2,
      run: async ({ args, io, caller }) => {
        const version = args.positional[1] === undefined ? null : parseVersion(args.positional[1]);
        const v = await startingProcesses(args.positional[0]!, maestro.rollback(args.positional[0]!, version, caller.name, [toStdout(io)]));
        io.stdout(`Rolled back: v${v} is live\n`);
      },
    },
    {
      name: 'config', usage: 'config APP [--json]', summary: "show an app's config vars", access: 'app', minArgs: 1, maxArgs: 1, flags: { json: 'bool' },
      run: ({ args, io }) => {
        const config = configMap(maestro.apps.get(args.positional[0]!).config);
        if (args.flags.json) return json(io, config);
        io.stdout(Object.entries(config).map(([k, v]) => `${k}=${shellQuote(v)}\n`).join(''));
      },
    },
    {
      name: 'config:get', usage: 'config:get APP KEY', summary: 'print one config var', access: 'app', minArgs: 2, maxArgs: 2,
      run: ({ args, io }) => {
        const config = configMap(maestro.apps.get(args.positional[0]!).config);
        const key = args.positional[1]!;
        if (!Object.hasOwn(config, key)) throw new UserError(`'${key}' is not set for '${args.positional[0]}'`);
        io.stdout(`${config[key]}\n`);
      },
    },
    {
      name: 'config:set', usage: 'config:set APP KEY=VALUE… [--no-restart]', summary: 'set config vars (zero-downtime restart)', access: 'app', minArgs: 2, flags: { 'no-restart': 'bool' },
      run: async ({ args, io, caller }) => {
        const set: Record<string, string> = Object.create(null);
        for (const pair of args.positional.slice(1)) {
          const eq = pair.indexOf('=');
          if (eq <= 0) throw new UserError(`'${pair.split('=')[0]}' has no value: use KEY=VALUE`);
          set[checkSettableConfigKey(pair.slice(0, eq))] = pair.slice(eq + 1);
        }
        const v = await startingProcesses(args.positional[0]!, maestro.setConfig(args.positional[0]!, set, [], !args.flags['no-restart'], caller.name, [toStdout(io)]));
        io.stdout(`Set ${Object.keys(set).join(', ')}${v === null ? '' : `: v${v} is live`}\n`);
      },
    },
    {
      name: 'config:unset', usage: 'config:unset APP KEY… [--no-restart]', summary: 'remove config vars', access: 'app', minArgs: 2, flags: { 'no-restart': 'bool' },
      run: async ({ args, io, caller }) => {
        const keys = args.positional.slice(1).map(checkConfigKey);
        const v = await startingProcesses(args.positional[0]!, maestro.setConfig(args.positional[0]!, {}, keys, !args.flags['no-restart'], caller.name, [toStdout(io)]));
        io.stdout(`Unset ${keys.join(', ')}${v === null ? '' : `: v${v} is live`}\n`);
      },
    },
    {
      name: 'ps:scale', usage: 'ps:scale APP TYPE=N…', summary: 'run N processes of each type (web is load-balanced)', access: 'app', minArgs: 2,
      run: async ({ args, io }) => {
        const app = maestro.apps.get(args.positional[0]!);
        const formation = { ...app.formation };
        for (const pair of args.positional.slice(1)) {
          const m = /^([a-z][a-z0-9_-]*)=(\d+)$/.exec(pair);
          if (!m || Number(m[2]) > 32) throw new UserError(`'${pair}' is not TYPE=N (N from 0 to 32)`);
          formation[m[1]!] = Number(m[2]);
        }
        if (!formation.web) throw new UserError('web must run at least 1 process (the proxy routes to it)');
        await startingProcesses(app.name, maestro.restart(app.name, [toStdout(io)], { formation }));
        io.stdout(`Scaled ${app.name} to ${Object.entries(formation).map(([t, n]) => `${t}=${n}`).join(' ')}\n`);
      },
    },
  ];
}
