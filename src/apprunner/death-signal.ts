// Every process either runner starts dies with the server, even on kill -9, and none
// can start after the server is gone:
//
// 1. setpriv arms a parent-death signal (SIGKILL) and execs the guard below in the
//    same process. A server that died before setpriv armed it would never send it, so
//    the guard checks that its parent is still the server; from then on the server's
//    death kills this process (in the sandbox: bubblewrap's monitor, which it becomes).
// 2. The guard moves itself into the process's cgroups before it execs anything that
//    could fork, so no descendant is ever outside them (the start-up sweep finds all).
// 3. In the sandbox, bubblewrap's pid 1 arms its own death signal (on the monitor) only
//    once it has set the sandbox up, so a monitor killed meanwhile would leave it
//    running. The guard opens a pipe whose write end only the monitor keeps (bwrap's
//    --json-status-fd); the last step inside waits until pid 1 is armed and then checks
//    that end is still open, that is, the monitor has not begun to exit (see
//    env-handoff.ts). An open pipe cannot tell that of the server itself: node's other
//    threads hold its files for a while after the thread that forked has died.
//
// perl (perl-base, in every Debian) because dash cannot make a pipe for a later step.
// It runs with HELPER_ENV only; its arguments are our pids, paths and argv words.

/** Where the guard puts the monitor pipe: the last step reads 7, bwrap's monitor writes 8. */
export const MONITOR_FDS = { read: 7, write: 8 } as const;

const GUARD = String.raw`
my ($server, $monitor) = splice(@ARGV, 0, 2);
exit 125 if getppid() != $server;
while (@ARGV && $ARGV[0] ne '--') {
  my ($procs, $g) = (shift @ARGV);
  open($g, '>', $procs) && print($g "$$\n") && close($g) or do { print STDERR "platformx: cannot join $procs: $!\n"; exit 126 };
}
shift @ARGV;
# Not in the block below: a handle going out of scope would close its fd before the exec.
my ($pr, $pw);
if ($monitor ne '-') {
  my ($r, $w) = split /,/, $monitor;
  # fds 0 to 6 are the chain's (stdio, identity, seccomp, environment), so with r and w
  # closed the pipe gets exactly those two, left open across exec ($^F).
  for ($r, $w) { open(my $x, '<&=', $_) and close($x) }
  $^F = $w;
  pipe($pr, $pw) && fileno($pr) == $r && fileno($pw) == $w or do { print STDERR "platformx: no monitor pipe at fds $monitor\n"; exit 126 };
  # The monitor writes its exit status there after the reader has gone: EPIPE, not death.
  $SIG{PIPE} = 'IGNORE';
}
exec { $ARGV[0] } @ARGV;
print STDERR "platformx: cannot run $ARGV[0]: $!\n";
exit 127;
`;

export interface GuardPrograms {
  setpriv: string;
  perl: string;
}

/**
 * argv that runs `command` bound to this server's life, in the cgroups whose
 * cgroup.procs files are given; with `monitorPipe`, the pipe of (3) is opened at MONITOR_FDS.
 */
export function deathGuardedArgv(p: GuardPrograms, cgroupProcs: readonly string[], command: readonly string[], monitorPipe = false): string[] {
  const monitor = monitorPipe ? `${MONITOR_FDS.read},${MONITOR_FDS.write}` : '-';
  return [p.setpriv, '--pdeathsig', 'KILL', '--', p.perl, '-e', GUARD, String(process.pid), monitor, ...cgroupProcs, '--', ...command];
}
