// Start commands run as `/bin/sh -c LINE`. dash forks even for a single
// command, so without `exec` every app would keep a resident shell as its
// parent (an extra process per app, and signals reach the shell first).

/** Words that start a compound command, and builtins that exec cannot replace the shell with. */
const NOT_A_PROGRAM = new Set([
  '!', '{', '}', '[[', 'case', 'do', 'done', 'elif', 'else', 'esac', 'fi', 'for', 'function', 'if', 'in', 'select',
  'then', 'time', 'until', 'while',
  '.', ':', 'alias', 'bg', 'break', 'cd', 'command', 'continue', 'eval', 'exec', 'exit', 'export', 'fg', 'getopts',
  'hash', 'jobs', 'local', 'read', 'readonly', 'return', 'set', 'shift', 'source', 'times', 'trap', 'type', 'ulimit',
  'umask', 'unalias', 'unset', 'wait',
]);

/** Control operators and grouping; also inside quotes, to stay on the safe side. */
const NOT_SIMPLE = /[;&|()\n\r{}]/;
/** Leading `NAME=value` words with plain values, then the program word. */
const SIMPLE = /^((?:[A-Za-z_][A-Za-z0-9_]*=[^\s'"\\`$]*\s+)*)(\S+)/;

/**
 * `exec`s a command line that is one simple command (`node server.js`,
 * `NODE_ENV=x node a.js`), so the shell is replaced by the program. Anything
 * else (lists, pipes, compound commands, builtins, quoted assignments) is
 * returned unchanged.
 */
export function execSimpleCommand(line: string): string {
  const trimmed = line.trim();
  const m = NOT_SIMPLE.test(trimmed) ? null : SIMPLE.exec(trimmed);
  if (!m) return line;
  const [, assignments, program] = m as unknown as [string, string, string];
  // An assignment left over (quoted value, or nothing after it) or a quoted program word: leave it to the shell.
  if (NOT_A_PROGRAM.has(program) || /^[A-Za-z_][A-Za-z0-9_]*=/.test(program) || /^['"\\]/.test(program)) return line;
  return `${assignments}exec ${trimmed.slice(assignments.length)}`;
}
