import type { ChildProcess } from 'node:child_process';
import type { Writable } from 'node:stream';

// How an app's environment (config vars included) reaches its process without
// passing through any root process of the start chain and without ever being an
// argv word (every user on the host can read every process's argv): the server
// writes it on an inherited socket, and the last step of the chain (inside the
// sandbox, already the app's user with no privileges) reads it, replaces its own
// environment with it and execs the app's command. In the sandbox that step also
// makes sure the sandbox cannot outlive the server (see death-signal.ts, point 3).

/** `<byte length>\n` then `NAME=value\0` for each variable. */
export function encodeEnvironment(env: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (name === '' || /[=\0]/.test(name)) throw new Error(`environment variable name ${JSON.stringify(name)} cannot be passed to a process`);
    if (value.includes('\0')) throw new Error(`environment variable ${name} holds a NUL byte, which no process environment can`);
    parts.push(Buffer.from(`${name}=${value}\0`));
  }
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from(`${body.length}\n`), body]);
}

// perl because the step must exec with an environment of any names and values: dash
// cannot read NUL-separated records, bash refuses names it keeps read-only (UID,
// PPID…), and node cannot exec.
const LOADER = String.raw`
use Fcntl;
my ($fd, $monitor) = splice(@ARGV, 0, 2); shift @ARGV;
sub gone { print STDERR "platformx: the server stopped before the process started\n"; exit 125 }
open(my $in, '<&=', $fd) or die "platformx: no environment on fd $fd: $!\n";
my $buf = '';
sub more { sysread($in, $buf, 65536, length $buf) or gone() }
more() until $buf =~ /\n/;
my ($len) = $buf =~ /\A(\d+)\n/ or die "platformx: garbled environment\n";
substr($buf, 0, length($len) + 1) = '';
more() while length($buf) < $len;
close $in;
if ($monitor ne '-') {
  my ($r, $w) = split /,/, $monitor;
  # bwrap closes the write end in the sandbox; should one be here, this step would count as the monitor.
  { open(my $x, '>&=', $w) and close($x) }
  # bubblewrap's pid 1 arms its death signal, then applies its seccomp filter.
  for (1 .. 10000) {
    open(my $s, '<', '/proc/1/status') or last;
    local $/;
    last if <$s> =~ /^Seccomp:\s*[12]/m;
    select(undef, undef, undef, 0.001);
  }
  # pid 1 is armed: if the monitor has not begun to exit, its death will take this sandbox.
  open(my $m, '<&=', $r) or gone();
  fcntl($m, F_SETFL, O_NONBLOCK);
  for (;;) { my $n = sysread($m, my $chunk, 4096); gone() if defined $n && $n == 0; last unless defined $n; }
  close $m;
  $SIG{PIPE} = 'DEFAULT';
}
%ENV = ();
for (split /\0/, substr($buf, 0, $len)) { my ($k, $v) = split /=/, $_, 2; $ENV{$k} = $v; }
exec { $ARGV[0] } @ARGV;
print STDERR "platformx: cannot run $ARGV[0]: $!\n";
exit 127;
`;

/**
 * argv of the step that loads the environment from `fd` and execs what follows. With
 * `monitor` (the pipe death-signal.ts opens), it first waits until the sandbox's pid 1
 * has armed its death signal, then checks bubblewrap's monitor still lives.
 */
export function loadEnvironmentArgv(perl: string, fd: number, monitor: { read: number; write: number } | null): string[] {
  return [perl, '-e', LOADER, String(fd), monitor ? `${monitor.read},${monitor.write}` : '-', '--'];
}

/** Writes each payload to the child's inherited fd (a 'pipe' in its stdio) and closes it. */
export function feedChild(child: ChildProcess, feeds: ReadonlyArray<readonly [number, string | Buffer]>): void {
  for (const [fd, data] of feeds) {
    const stream = (child.stdio as readonly unknown[])[fd] as Writable | null | undefined;
    if (!stream) continue;
    stream.on('error', () => { /* the chain failed before reading it: its exit says why */ });
    stream.end(data);
  }
}
