// A command's flags as the dispatcher reads them (local CLI and SSH alike).
import { describe, expect, it } from 'vitest';
import { createDispatcher, parseArgs, type CommandDef } from '../src/control/command-table.js';
import type { Caller } from '../src/control/types.js';
import { dispatchCaptured } from './support/dispatch.js';

const spec = { json: 'bool', confirm: 'string', domain: 'list', n: 'string', f: 'bool', 'no-restart': 'bool' } as const;
const parse = (argv: string[]) => parseArgs(argv, spec, 'demo APP [--json]');

describe('command flags', () => {
  it('reads bool, string and list flags, short one-letter flags, and positionals after --', () => {
    expect(parse(['app', '--json', '--confirm', 'app', '--domain', 'a.example', '--domain=b.example', '-n', '5', '-f', '--no-restart']))
      .toEqual({ positional: ['app'], flags: { json: true, confirm: 'app', domain: ['a.example', 'b.example'], n: '5', f: true, 'no-restart': true } });
    expect(parse(['--n=3', '--confirm=', 'x', '-', '--', '--json', '-z'])).toEqual({ positional: ['x', '-', '--json', '-z'], flags: { n: '3', confirm: '' } });
    // A string flag takes the next argument whatever it looks like.
    expect(parse(['--confirm', '--json']).flags).toEqual({ confirm: '--json' });
  });

  it('refuses a value given to a bool flag: --json=false does not mean on', () => {
    expect(() => parse(['app', '--json=false'])).toThrow("option '--json' takes no value: give '--json' for on, leave it out for off (not '--json=false'): usage: demo APP [--json]");
    expect(() => parse(['--json=true'])).toThrow("option '--json' takes no value");
    expect(() => parse(['--f='])).toThrow("option '--f' takes no value");
  });

  it('refuses unknown flags and a value flag without its value, naming the usage', () => {
    expect(() => parse(['--nope=1'])).toThrow("unknown option '--nope=1': usage: demo APP [--json]");
    expect(() => parse(['-x'])).toThrow("unknown option '-x'");
    expect(() => parse(['--constructor'])).toThrow("unknown option '--constructor'");
    expect(() => parse(['--confirm'])).toThrow("option '--confirm' needs a value: usage: demo APP [--json]");
    expect(() => parse(['-n'])).toThrow("option '-n' needs a value");
  });

  it('a refused flag is a one-line error and exit 1 from the dispatcher', async () => {
    const cmd: CommandDef = {
      name: 'demo', usage: 'demo [--json]', summary: 'demo', access: 'any', maxArgs: 0, flags: { json: 'bool' },
      run: ({ args, io }) => void io.stdout(`${args.flags.json === true}\n`),
    };
    const caller: Caller = { kind: 'local', name: 'local', admin: true, apps: [] };
    const dispatch = createDispatcher([cmd]);
    expect(await dispatchCaptured(dispatch, ['demo', '--json'], caller)).toEqual({ code: 0, stdout: 'true\n', stderr: '' });
    const r = await dispatchCaptured(dispatch, ['demo', '--json=false'], caller);
    expect([r.code, r.stdout, r.stderr]).toEqual([1, '', "error: option '--json' takes no value: give '--json' for on, leave it out for off (not '--json=false'): usage: demo [--json]\n"]);
  });
});
