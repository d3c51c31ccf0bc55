// What an SSH exec string asks for, decided without any shell: the string is
// split into words here and never handed to sh, so only the forms below exist.

export type GitService = 'git-receive-pack' | 'git-upload-pack';

export type ExecRequest =
  | { kind: 'git'; service: GitService; app: string }
  | { kind: 'command'; argv: string[] }
  /** `rsync --server …`, for the legacy upload path; refused unless a handler is configured. */
  | { kind: 'rsync'; argv: string[] }
  | { kind: 'refused'; reason: string };

const MAX_EXEC_LENGTH = 8192;
const APP_NAME = /^[a-z][a-z0-9-]{0,62}$/;
const COMMAND_NAME = /^[a-z][a-z0-9]*(?:[:-][a-z0-9]+)*$/;
/** Characters a shell would treat specially when unquoted. */
const SHELL_SPECIAL = new Set([...';&|$`<>(){}*?[]~!#\\']);
const USAGE = 'this server runs git push/fetch and platformx commands only (try: ssh -p PORT git@HOST help)';

class Refusal extends Error {}

/**
 * Splits an exec string into words: whitespace separates, '…' is literal, "…" is
 * literal apart from \" and \\. Anything a shell would act on (; | & $ ` < > …)
 * outside single quotes is refused rather than passed on, so nobody is misled
 * into thinking it ran. rsync's own backslash escapes are allowed for rsync.
 */
function splitWords(input: string, backslashEscapes: boolean): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  for (let i = 0; i < input.length; i++) {
    const c = input[i]!;
    if (c === ' ' || c === '\t') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      continue;
    }
    inWord = true;
    if (c === "'") {
      const end = input.indexOf("'", i + 1);
      if (end < 0) throw new Refusal('unterminated quote in command');
      word += input.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < input.length && input[j] !== '"'; j++) {
        const d = input[j]!;
        if (d === '$' || d === '`') throw new Refusal(`shell syntax '${d}' is not allowed: commands run without a shell; ${USAGE}`);
        if (d === '\\' && (input[j + 1] === '"' || input[j + 1] === '\\')) j++;
        word += input[j];
      }
      if (j >= input.length) throw new Refusal('unterminated quote in command');
      i = j;
    } else if (c === '\\' && backslashEscapes && i + 1 < input.length) {
      word += input[++i];
    } else if (SHELL_SPECIAL.has(c)) {
      throw new Refusal(`shell syntax '${c}' is not allowed: commands run without a shell; ${USAGE}`);
    } else {
      word += c;
    }
  }
  if (inWord) words.push(word);
  return words;
}

/** APP, APP.git, /APP.git, APP.git/ → APP; anything else (../x.git, a/b.git, ~/x) → null. */
export function appFromRepoPath(repoPath: string): string | null {
  let p = repoPath;
  if (p.startsWith('/')) p = p.slice(1);
  if (p.endsWith('/')) p = p.slice(0, -1);
  if (p.endsWith('.git')) p = p.slice(0, -4);
  return APP_NAME.test(p) ? p : null;
}

function gitRequest(service: GitService, args: string[]): ExecRequest {
  if (args.length !== 1) return { kind: 'refused', reason: `${service} takes exactly one repository path, like '${service} 'APP.git''` };
  const app = appFromRepoPath(args[0]!);
  if (!app) {
    return { kind: 'refused', reason: `invalid repository path '${args[0]}': use APP.git, as in ssh://git@HOST:PORT/APP.git` };
  }
  return { kind: 'git', service, app };
}

/** Decides what an exec string asks for. Never throws: bad input is a `refused` request with a one-line reason. */
export function parseExecRequest(command: string): ExecRequest {
  if (typeof command !== 'string' || command.trim() === '') return { kind: 'refused', reason: `no command given: ${USAGE}` };
  if (command.length > MAX_EXEC_LENGTH) return { kind: 'refused', reason: `command too long (${command.length} characters, at most ${MAX_EXEC_LENGTH})` };
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x08\x0a-\x1f\x7f]/.test(command)) return { kind: 'refused', reason: 'control characters (newlines, NUL, …) are not allowed in a command' };

  const first = command.trim().split(/[ \t]/, 1)[0]!;
  let argv: string[];
  try {
    argv = splitWords(command, first === 'rsync');
  } catch (err) {
    if (err instanceof Refusal) return { kind: 'refused', reason: err.message };
    throw err;
  }
  if (argv.length === 0) return { kind: 'refused', reason: `no command given: ${USAGE}` };

  const [name, ...rest] = argv as [string, ...string[]];
  if (name === 'git-receive-pack' || name === 'git-upload-pack') return gitRequest(name, rest);
  if (name === 'git' && (rest[0] === 'receive-pack' || rest[0] === 'upload-pack')) return gitRequest(`git-${rest[0]}`, rest.slice(1));
  if (name === 'git-upload-archive' || (name === 'git' && rest[0] === 'upload-archive')) {
    return { kind: 'refused', reason: 'git archive is not offered: fetch or clone the repository instead' };
  }
  if (name === 'rsync') {
    if (rest[0] !== '--server') return { kind: 'refused', reason: 'only rsync in server mode (rsync --server, as the rsync client sends) is accepted' };
    return { kind: 'rsync', argv };
  }

  const cmd = name === 'platformx' ? rest : argv;
  if (cmd.length === 0) return { kind: 'command', argv: ['help'] };
  if (cmd[0] !== '--help' && !COMMAND_NAME.test(cmd[0]!)) {
    return { kind: 'refused', reason: `'${cmd[0]}' is not a platformx command: ${USAGE}` };
  }
  return { kind: 'command', argv: cmd };
}
