// Every process either runner starts dies with the server, even on kill -9: setpriv
// arms a parent-death signal (SIGKILL) and execs everything else in the same process.
// A server that dies before setpriv has armed it would never send it, so the shell
// setpriv execs checks that its parent is still the server; from that check on, the
// server's death kills the process. The shell also moves itself into the process's
// cgroups before it execs anything that could fork, so no descendant is ever outside them.

// Only our paths, pids and argv words reach it as arguments, never text a client sent.
const GUARD = 'server=$1; shift; [ "$PPID" = "$server" ] || exit 125; '
  + 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 126; shift; done; shift; exec "$@"';

/** argv that runs `command` bound to this server's life, in the cgroups whose cgroup.procs files are given. */
export function deathGuardedArgv(setpriv: string, cgroupProcs: readonly string[], command: readonly string[]): string[] {
  return [setpriv, '--pdeathsig', 'KILL', '--', '/bin/sh', '-c', GUARD, 'platformx-start', String(process.pid), ...cgroupProcs, '--', ...command];
}
