import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { controlRequest } from '../control/control-client.js';
import { DataPaths } from '../state/paths.js';
import { UserError } from '../errors.js';


/** Commands whose input may come on stdin (a key), read here and sent along. */
const STDIN_COMMANDS = new Set(['keys:add', 'certs:add']);

/**
 * Each `--NAME VALUE` (or `--NAME=VALUE`) in argv, read with node:util's parser:
 * its value and the indexes of argv it spans. Not strict: the other flags are the
 * command's, which the server checks; `--NAME` takes the next argument, whatever it is.
 */
function findOption(argv: string[], name: string): Array<{ value?: string; at: number[] }> {
  const { tokens } = parseArgs({ args: argv, options: { [name]: { type: 'string' } }, strict: false, allowPositionals: true, tokens: true });
  return tokens.flatMap((t) => (t.kind === 'option' && t.name === name
    ? [{ value: t.value, at: t.value === undefined || t.inlineValue ? [t.index] : [t.index, t.index + 1] }]
    : []));
}

const without = (argv: string[], at: number[]) => argv.filter((_, i) => !at.includes(i));

/** --data DIR anywhere in argv (the last one counts), else PLATFORMX_DATA, else ./.platformx. */
function takeDataOption(argv: string[]): { data: string; rest: string[] } {
  const found = findOption(argv, 'data');
  const data = found.filter((f) => f.value !== undefined).pop()?.value ?? process.env.PLATFORMX_DATA ?? './.platformx';
  return { data, rest: without(argv, found.flatMap((f) => f.at)) };
}

async function readStdin(): Promise<string | undefined> {
  if (process.stdin.isTTY) return undefined;
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** `--NAME PATH` is read by the CLI (the path is on the user's side); its content is sent as stdin. */
function takeFileOption(argv: string[], flag: string, what: string): { argv: string[]; content?: string } {
  const [first] = findOption(argv, flag.slice(2));
  if (!first) return { argv };
  const file = first.value;
  if (!file) throw new UserError(`${flag} needs a path to ${what}`);
  let content: string;
  try {
    content = fs.readFileSync(path.resolve(file), 'utf8');
  } catch (err) {
    throw new UserError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return { argv: without(argv, first.at), content };
}

/** certs:add --cert FILE --key FILE: both read here and sent as one PEM bundle on stdin. */
function takeCertFiles(argv: string[]): { argv: string[]; content?: string } {
  const cert = takeFileOption(argv, '--cert', 'a PEM certificate (chain) file');
  const key = takeFileOption(cert.argv, '--key', 'a PEM private key file');
  if (cert.content === undefined || key.content === undefined) return { argv: key.argv, content: cert.content ?? key.content };
  return { argv: key.argv, content: `${cert.content}\n${key.content}` };
}

export async function main(argv: string[]): Promise<number> {
  try {
    // Only `server` needs the server's code; every other command just talks to the socket.
    if (argv[0] === 'server') return await (await import('./server-command.js')).runServerCommand(argv.slice(1));
    const { data, rest } = takeDataOption(argv);
    let command = rest;
    let stdin: string | undefined;
    if (STDIN_COMMANDS.has(command[0] ?? '')) {
      const f = command[0] === 'certs:add' ? takeCertFiles(command) : takeFileOption(command, '--file', 'a public key file, like ~/.ssh/id_ed25519.pub');
      command = f.argv;
      stdin = f.content ?? (await readStdin());
    }
    const paths = new DataPaths(data);
    return await controlRequest(paths.controlSocket, { type: 'command', argv: command, stdin }, {
      stdout: (t) => process.stdout.write(t),
      stderr: (t) => process.stderr.write(t),
    });
  } catch (err) {
    process.stderr.write(`error: ${(err as Error).message}\n`);
    return 1;
  }
}
